package http_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleGridModels drives the console's grid model view in headless
// Chromium: a DSO uploads case33bw, sees its summary, the base-case
// voltage profile (one bar per bus) and Vmin at bus 17; an invalid model
// is refused with its problems listed; an FSP has no grid model tab.
func TestConsoleGridModels(t *testing.T) {
	browser := chromiumOrSkip(t)
	e := newEnv(t)
	w := newGridWorld(t, e)
	good, err := filepath.Abs(gridData(t, "pandapower", "case33bw.json"))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, ppEdit(t, w.case33, "line", func(col map[string]int, index []any, data [][]any) {
		for i, row := range data {
			if index[i].(float64) == 3 {
				row[col["r_ohm_per_km"]], row[col["x_ohm_per_km"]] = 0.0, 0.0
			}
		}
	}), 0o600); err != nil {
		t.Fatal(err)
	}

	signIn, _ := consoleSignIn(t, e, browser)

	t.Run("DSO uploads and sees the base case", func(t *testing.T) {
		ctx, done := signIn(t, w.dso1Key)
		defer done()
		var problems, bars, redBars int
		var refused, text string
		err := chromedp.Run(ctx,
			chromedp.Click(`button[data-tab="grid-models"]`),
			chromedp.WaitVisible("tbody tr"),
			chromedp.Click("tbody tr"),
			chromedp.WaitVisible("#gm-file"),
			chromedp.SetUploadFiles("#gm-file", []string{bad}),
			chromedp.Click("form.upload button"),
			chromedp.WaitVisible("ul.problems li"),
			chromedp.Text(".upload-result", &refused),
			chromedp.Evaluate(`document.querySelectorAll("ul.problems li").length`, &problems),
			chromedp.SetUploadFiles("#gm-file", []string{good}),
			chromedp.Click("form.upload button"),
			chromedp.WaitVisible(".detail figure"),
			chromedp.Evaluate(`document.querySelectorAll(".detail figure rect.bar").length`, &bars),
			chromedp.Evaluate(`document.querySelectorAll(".detail figure rect.violation").length`, &redBars),
			chromedp.Text(".detail", &text),
		)
		if err != nil {
			t.Fatal(err)
		}
		if problems != 1 || !strings.Contains(refused, `line "line3": impedance r=0 x=0 ohm/km is missing`) {
			t.Errorf("refused upload shows %d problems: %q", problems, refused)
		}
		if bars != 33 || redBars != 0 || !strings.Contains(text, "0.9131 p.u.") || !strings.Contains(text, "at bus 17") || !strings.Contains(text, "Version 1 stored") {
			t.Errorf("after the upload: %d bars (%d red): %q", bars, redBars, text)
		}
	})
	t.Run("an FSP has no grid model tab", func(t *testing.T) {
		ctx, done := signIn(t, w.fspKey)
		defer done()
		var hidden bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('#tabs button[data-tab="grid-models"]').hidden`, &hidden)); err != nil {
			t.Fatal(err)
		}
		if !hidden {
			t.Error("the grid model tab is shown to an FSP")
		}
	})
}
