package http_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/demo"
)

// TestConsoleInBrowser drives the register console in a real headless
// Chromium against the demo register: an aggregator signs in with its key,
// sees its overview and its resources, and a household sees only its own.
func TestConsoleInBrowser(t *testing.T) {
	browser := chromiumOrSkip(t)
	e := newEnv(t)
	res, err := demo.Load(context.Background(), e.svc, filepath.Join("..", "..", "shared", "data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, k := range res.Keys {
		keys[k.Role] = k.Token
	}
	signIn, actx := consoleSignIn(t, e, browser)

	t.Run("aggregator", func(t *testing.T) {
		ctx, done := signIn(t, keys["FSP (batteries)"])
		defer done()
		var who, overview string
		var rows int
		err := chromedp.Run(ctx,
			chromedp.Text("#who", &who),
			chromedp.Text(".cards", &overview),
			chromedp.Click(`button[data-tab="resources"]`),
			chromedp.WaitVisible("tbody tr"),
			chromedp.Evaluate(`document.querySelectorAll("tbody tr").length`, &rows),
		)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(who, "Sunny Storage Aggregator") {
			t.Errorf("header shows %q", who)
		}
		if !strings.Contains(overview, "intact") {
			t.Errorf("overview must show the verified audit trail: %q", overview)
		}
		if rows != 14 {
			t.Errorf("the battery aggregator has 13 units and 1 group; the console lists %d", rows)
		}
	})
	t.Run("household sees only its own", func(t *testing.T) {
		ctx, done := signIn(t, keys["Consumer"])
		defer done()
		var rows int
		var text string
		err := chromedp.Run(ctx,
			chromedp.Click(`button[data-tab="metering-points"]`),
			chromedp.WaitVisible("tbody tr"),
			chromedp.Evaluate(`document.querySelectorAll("tbody tr").length`, &rows),
			chromedp.Text("main", &text),
		)
		if err != nil {
			t.Fatal(err)
		}
		if rows != 1 || !strings.Contains(text, "SGSC-") {
			t.Errorf("a household must see exactly its own metering point, saw %d rows: %q", rows, text)
		}
	})
	t.Run("household sees its consents and who read its data", func(t *testing.T) {
		// Through the API: the household grants the battery aggregator its
		// metering point's master data; the aggregator reads it, the market
		// operator tries and is refused.
		var mps struct{ Items []flexhub.MeteringPoint }
		e.do("GET", "/v1/metering-points", keys["Consumer"], nil, 200, &mps)
		var agg flexhub.Party
		e.do("GET", "/v1/me", keys["FSP (batteries)"], nil, 200, &agg)
		now := time.Now().UTC()
		e.do("POST", "/v1/consents", keys["Consumer"], map[string]any{"data_user_id": agg.ID, "metering_point_ids": []string{mps.Items[0].ID},
			"scopes": []string{"master_data"}, "purpose": "to offer a home battery", "valid_from": now.Add(-time.Minute).Format(time.RFC3339),
			"valid_to": now.Add(24 * time.Hour).Format(time.RFC3339)}, 201, nil)
		e.do("GET", "/v1/metering-points/"+mps.Items[0].ID, keys["FSP (batteries)"], nil, 200, nil)
		e.do("GET", "/v1/metering-points/"+mps.Items[0].ID, keys["Market operator"], nil, 403, nil)

		ctx, done := signIn(t, keys["Consumer"])
		defer done()
		var consents, reads, refusedBars int
		var text string
		err := chromedp.Run(ctx,
			chromedp.Click(`button[data-tab="my-data"]`),
			chromedp.WaitVisible("main figure"),
			chromedp.Evaluate(`document.querySelectorAll("main table")[0].querySelectorAll("tbody tr").length`, &consents),
			chromedp.Evaluate(`document.querySelectorAll("main table")[1].querySelectorAll("tbody tr").length`, &reads),
			chromedp.Evaluate(`document.querySelectorAll("main figure rect.rejected").length`, &refusedBars),
			chromedp.Text("main", &text),
		)
		if err != nil {
			t.Fatal(err)
		}
		if consents != 1 || reads != 2 || refusedBars != 1 || !strings.Contains(text, "to offer a home battery") || !strings.Contains(text, "consent.none") {
			t.Errorf("the household's data page: %d consents, %d reads, %d refused bars: %q", consents, reads, refusedBars, text)
		}
	})
	t.Run("market operator sees the cleared day as a chart", func(t *testing.T) {
		closure := time.Now().UTC().Add(time.Minute)
		if _, err := demo.RunDay(context.Background(), e.svc, filepath.Join("..", "..", "shared", "data"), closure); err != nil {
			t.Fatal(err)
		}
		e.svc.SetClock(func() time.Time { return time.Now().UTC().Add(2 * time.Minute) })
		for i := 0; i < 3; i++ {
			if _, err := e.svc.AdvanceSessions(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ctx, done := signIn(t, keys["Market operator"])
		defer done()
		var bars int
		var caption string
		err := chromedp.Run(ctx,
			chromedp.Click(`button[data-tab="market"]`),
			chromedp.WaitVisible("tbody tr"),
			chromedp.Click("tbody tr"),
			chromedp.WaitVisible(".detail figure"),
			chromedp.Evaluate(`document.querySelectorAll(".detail figure rect.accepted").length`, &bars),
			chromedp.Text(".detail figcaption", &caption),
		)
		if err != nil {
			t.Fatal(err)
		}
		if bars == 0 || !strings.Contains(caption, "capacity") {
			t.Errorf("the cleared session shows %d bars, caption %q", bars, caption)
		}
	})
	t.Run("bad key", func(t *testing.T) {
		ctx, cancel := chromedp.NewContext(actx)
		defer cancel()
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var msg string
		err := chromedp.Run(ctx,
			chromedp.Navigate(e.srv.URL+"/"),
			chromedp.SendKeys("#key", "fh_not_a_key"),
			chromedp.Click("#login button"),
			chromedp.WaitVisible(".error"),
			chromedp.Text(".error", &msg),
		)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(msg, "401") {
			t.Errorf("a bad key must say why: %q", msg)
		}
	})
}

// TestConsoleHeaders checks the console is served with a strict content
// security policy, so register text can never run as script.
func TestConsoleHeaders(t *testing.T) {
	e := newEnv(t)
	status, body, h := e.send("GET", "/", "", nil)
	if status != 200 || !strings.Contains(body, "flexhub") {
		t.Fatalf("GET /: %d", status)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if status, _, _ := e.send("GET", "/ui/app.js", "", nil); status != 200 {
		t.Errorf("GET /ui/app.js: %d", status)
	}
	if status, _, _ := e.send("GET", "/nope", "", nil); status != 404 {
		t.Errorf("GET /nope: %d, want 404", status)
	}
}

// chromiumOrSkip finds the headless browser the console tests drive; CI
// installs it (.ci/run), elsewhere a missing browser skips the test.
func chromiumOrSkip(t *testing.T) string {
	t.Helper()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but chromium is not installed (.ci/run installs it)")
		}
		t.Skip("chromium not installed; apt-get install chromium to run the console tests")
	}
	return browser
}

// consoleSignIn starts the browser for the rest of the test and returns
// a function that opens the console in a new tab and signs in with a key,
// and the browser's context for tabs of one's own.
func consoleSignIn(t *testing.T, e *env, browser string) (func(t *testing.T, key string) (context.Context, context.CancelFunc), context.Context) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	return func(t *testing.T, key string) (context.Context, context.CancelFunc) {
		ctx, cancel := chromedp.NewContext(actx)
		ctx, cancel2 := context.WithTimeout(ctx, 60*time.Second)
		if err := chromedp.Run(ctx, chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible("#key"), chromedp.SendKeys("#key", key),
			chromedp.Click("#login button"), chromedp.WaitVisible(".cards")); err != nil {
			t.Fatalf("sign in: %v", err)
		}
		return ctx, func() { cancel2(); cancel() }
	}, actx
}
