package http_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/flexhub/flexhub"
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
	t.Run("DSO sees its forecast day", func(t *testing.T) {
		var cur flexhub.GridModel
		e.do("GET", "/v1/grid-areas/"+w.ga1.ID+"/grid-model", w.dso1Key, nil, 200, &cur)
		// Eight quarter hours, the loads rising from 80 % to 115 %: the
		// later ones take bus 17 below 0.9 p.u.
		var f flexhub.GridForecast
		e.do("POST", "/v1/grid-models/"+cur.ID+"/forecasts", w.dso1Key, map[string]any{"start": "2026-12-01T16:00:00Z", "intervals": 8,
			"load_scale_percent": []float64{80, 85, 90, 95, 100, 105, 110, 115}}, 201, &f)
		broken := 0
		for _, s := range f.States {
			if len(s.Violations) > 0 {
				broken++
			}
		}
		if broken == 0 || broken == 8 {
			t.Fatalf("forecast states: %d of 8 with violations; the test wants some of each", broken)
		}
		ctx, done := signIn(t, w.dso1Key)
		defer done()
		var bars, red int
		var caption string
		err := chromedp.Run(ctx,
			chromedp.Click(`button[data-tab="grid-models"]`),
			chromedp.WaitVisible("tbody tr"),
			chromedp.Click("tbody tr"),
			chromedp.WaitVisible(`figure[data-chart="forecast"]`),
			chromedp.Evaluate(`document.querySelectorAll('figure[data-chart="forecast"] rect.bar').length`, &bars),
			chromedp.Evaluate(`document.querySelectorAll('figure[data-chart="forecast"] rect.violation').length`, &red),
			chromedp.Text(`figure[data-chart="forecast"] figcaption`, &caption),
		)
		if err != nil {
			t.Fatal(err)
		}
		if bars != 8 || red != broken || !strings.Contains(caption, fmt.Sprintf("%d of 8 intervals break a limit", broken)) {
			t.Errorf("forecast chart: %d bars, %d red (want 8 and %d), caption %q", bars, red, broken, caption)
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
