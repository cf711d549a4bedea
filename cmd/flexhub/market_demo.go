package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/demo"
)

// marketDemo is `flexhub demo`: one market day on the demo register, from
// the needs to the cleared outcome, printed as tables (or JSON).
func marketDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseFlags("demo", args, getenv, stderr, true)
	if err != nil {
		return err
	}
	if err := c.live.check(); err != nil {
		return err
	}
	// The coordination comparison's scenario is read first: a bad option
	// or missing data stops the demo before it changes anything.
	var coord *coordScenario
	if !c.coord.off {
		opt, err := c.coord.options()
		if err != nil {
			return err
		}
		dir, err := sharedDataDir(c)
		if err != nil {
			return err
		}
		if coord, err = newCoordScenario(dir, opt); err != nil {
			return fmt.Errorf("coordination: %w", err)
		}
	}
	log, err := newLogger("warn", stderr)
	if err != nil {
		return err
	}
	store, where, err := openStore(ctx, c, true)
	if err != nil {
		return err
	}
	defer store.Close()
	svc := app.New(store, log)
	progress := stdout
	if c.json {
		progress = stderr
	}
	if admin, err := svc.Bootstrap(ctx, getenv("FLEXHUB_ADMIN_KEY")); err != nil {
		return fmt.Errorf("bootstrap administrator: %w", err)
	} else if admin != nil {
		fmt.Fprintf(progress, "Created the administrator (key in %s).\n", filepath.Join(c.dataDir, "demo-keys.txt"))
		if err := os.MkdirAll(c.dataDir, 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(c.dataDir, "admin-key.txt"), []byte(admin.Token+"\n"), 0o600); err != nil {
			return err
		}
	}
	if err := loadDemo(ctx, svc, c, progress); err != nil {
		return fmt.Errorf("demo register: %w", err)
	}
	dir, err := sharedDataDir(c)
	if err != nil {
		return err
	}

	// The day's gates close a few minutes from now; the demo then moves
	// its own clock past gate closure instead of waiting, and lets the
	// scheduler close and clear the sessions as it would in `serve`.
	closure := time.Now().UTC().Add(10 * time.Minute).Truncate(time.Second)
	fmt.Fprintf(progress, "Market day: needs, sessions and bids (%s)\n", where)
	day, err := demo.RunDay(ctx, svc, dir, closure)
	if err != nil {
		return err
	}
	// Before the gates close, the simulated aggregators come up (they
	// discover their resources over REST) and nominate their baselines
	// where the product asks for one (demo_nomination.go).
	var live *liveRun
	var noms []NominationReport
	if !c.live.off {
		if live, err = startLive(ctx, svc, log, dir, c.live); err != nil {
			return fmt.Errorf("activation: %w", err)
		}
		defer live.close()
		fmt.Fprintln(progress, "Nominations, before gate closure:")
		if noms, err = live.nominate(ctx, day, progress); err != nil {
			return fmt.Errorf("nominations: %w", err)
		}
		if len(noms) == 0 {
			fmt.Fprintln(progress, "  none: no session of the day asks for a nominated baseline")
		}
	}
	if !svc.Now().Before(closure) {
		return fmt.Errorf("the gates closed (%s) before the nominations were in", closure.Format(time.RFC3339))
	}
	offset := time.Until(closure) + time.Second
	svc.SetClock(func() time.Time { return time.Now().UTC().Add(offset).Truncate(time.Microsecond) })
	for i := 0; i < 5; i++ {
		if _, err := svc.AdvanceSessions(ctx); err != nil {
			return fmt.Errorf("gate closure and clearing: %w", err)
		}
		done := true
		for _, id := range []string{day.DSOSession.ID, day.TSOSession.ID} {
			m, err := sessionAsAdmin(ctx, svc, id)
			if err != nil {
				return err
			}
			done = done && m.Status == flexhub.SessionCleared
		}
		if done {
			break
		}
	}
	report, err := dayReport(ctx, svc, day)
	if err != nil {
		return err
	}
	report.Nominations = noms
	if !c.live.off {
		if report.Activation, err = live.activate(ctx, day, progress); err != nil {
			return fmt.Errorf("activation: %w", err)
		}
		if report.Settlement, err = runSettlement(ctx, svc, day); err != nil {
			return fmt.Errorf("settlement: %w", err)
		}
	}
	if coord != nil {
		// The coordination comparison runs in stores of its own
		// (demo_coordination.go); the day above is not touched.
		if report.Coordination, _, err = runCoordination(ctx, coord, progress); err != nil {
			return err
		}
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	printReport(stdout, report)
	printCoordination(stdout, report.Coordination)
	return nil
}

func sessionAsAdmin(ctx context.Context, svc *app.Service, id string) (*flexhub.MarketSession, error) {
	var m *flexhub.MarketSession
	err := svc.Store().View(ctx, func(tx flexhub.Tx) error {
		var err error
		m, err = tx.MarketSession(ctx, id)
		return err
	})
	return m, err
}

// DayReport is what `flexhub demo --json` prints.
type DayReport struct {
	ReplayedDate string          `json:"replayed_date" doc:"the real day whose household load the market day replays"`
	MarketDay    string          `json:"market_day"`
	FeederLimitW int64           `json:"feeder_limit_w"`
	Sessions     []SessionReport `json:"sessions"`
	// Nominations are the baselines the aggregators nominated before gate
	// closure for nominated_schedule products (absent with --no-activation).
	Nominations []NominationReport `json:"nominations,omitempty"`
	// Activation is the delivery window: orders, their tracking and the
	// monitoring's verdicts (absent with --no-activation).
	Activation *ActivationReport `json:"activation,omitempty"`
	// Settlement is each system operator's settlement of the day, after
	// the activation (absent with --no-activation).
	Settlement *SettlementReport `json:"settlement,omitempty"`
	// Coordination compares the TSO–DSO coordination schemes on
	// lv_schutterwald (absent with --no-coordination).
	Coordination *CoordinationReport `json:"coordination,omitempty"`
}

// SessionReport is one cleared session as its market operator sees it.
type SessionReport struct {
	Name    string                `json:"name"`
	Buyer   string                `json:"buyer"`
	Pricing string                `json:"pricing"`
	Status  string                `json:"status"`
	Needs   []*flexhub.NeedResult `json:"needs"`
	Bids    []BidReport           `json:"bids"`
}

// BidReport is one bid's award with names instead of ids.
type BidReport struct {
	FSP       string        `json:"fsp"`
	Resource  string        `json:"resource"`
	Shape     string        `json:"shape"`
	Status    string        `json:"status"`
	Offered   int64         `json:"offered_w_total" doc:"sum over intervals"`
	Accepted  int64         `json:"accepted_w_total" doc:"sum over intervals"`
	Amount    flexhub.Money `json:"amount"`
	Reason    string        `json:"reason,omitempty"`
	Intervals int           `json:"intervals"`
}

func dayReport(ctx context.Context, svc *app.Service, day *demo.Day) (*DayReport, error) {
	r := &DayReport{ReplayedDate: day.Date, MarketDay: day.Start.Format(time.RFC3339), FeederLimitW: day.FeederLimitW}
	names := map[string]string{}
	name := func(tx flexhub.Tx, id string, party bool) string {
		if n, ok := names[id]; ok {
			return n
		}
		n := id
		if party {
			if p, err := tx.Party(ctx, id); err == nil {
				n = p.Name
			}
		} else if res, err := tx.Resource(ctx, id); err == nil {
			n = res.Name
		}
		names[id] = n
		return n
	}
	for _, m := range []*flexhub.MarketSession{day.DSOSession, day.TSOSession} {
		m, err := sessionAsAdmin(ctx, svc, m.ID)
		if err != nil {
			return nil, err
		}
		var op *flexhub.Party
		if err := svc.Store().View(ctx, func(tx flexhub.Tx) error {
			op, err = tx.Party(ctx, m.OperatorID)
			return err
		}); err != nil {
			return nil, err
		}
		res, err := svc.GetSessionResults(app.WithActor(ctx, op), m.ID)
		if err != nil {
			return nil, fmt.Errorf("results of %s: %w", m.Name, err)
		}
		sr := SessionReport{Name: m.Name, Pricing: m.Pricing, Status: m.Status, Needs: res.Needs}
		err = svc.Store().View(ctx, func(tx flexhub.Tx) error {
			sr.Buyer = name(tx, m.SystemOperatorID, true)
			for _, a := range res.Awards {
				bid, err := tx.Bid(ctx, a.BidID)
				if err != nil {
					return err
				}
				br := BidReport{FSP: name(tx, a.FSPID, true), Resource: name(tx, a.ResourceID, false), Status: a.Status, Amount: a.Amount, Reason: a.Reason, Intervals: len(a.Intervals)}
				var shape []string
				if bid.Divisible {
					shape = append(shape, "divisible")
				} else {
					shape = append(shape, "indivisible")
				}
				if bid.Linked {
					shape = append(shape, "linked")
				}
				if bid.ExclusiveGroup != "" {
					shape = append(shape, "exclusive:"+bid.ExclusiveGroup)
				}
				br.Shape = strings.Join(shape, ", ")
				for _, iv := range a.Intervals {
					br.Offered += iv.Offered
					br.Accepted += iv.Accepted
				}
				sr.Bids = append(sr.Bids, br)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		r.Sessions = append(r.Sessions, sr)
	}
	return r, nil
}

var sydney, _ = time.LoadLocation("Australia/Sydney")

func kwString(w int64) string { return fmt.Sprintf("%.1f", float64(w)/1000) }

func moneyString(m *flexhub.Money) string {
	if m == nil {
		return "-"
	}
	return m.Amount
}

func printReport(w io.Writer, r *DayReport) {
	day := r.MarketDay[:10]
	if t, err := time.Parse(time.RFC3339, r.MarketDay); err == nil {
		day = t.In(sydney).Format("2006-01-02")
	}
	fmt.Fprintf(w, "\nflexhub market day %s (Sydney time), replaying the real household load of %s\n", day, r.ReplayedDate)
	fmt.Fprintf(w, "DSO feeder limit: %s kW; the DSO needs the evening load above it.\n", kwString(r.FeederLimitW))
	for _, s := range r.Sessions {
		fmt.Fprintf(w, "\n== %s — buyer %s, %s pricing, %s\n\n", s.Name, s.Buyer, strings.ReplaceAll(s.Pricing, "_", "-"), s.Status)
		for _, n := range s.Needs {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "time (Sydney)\tneed kW\tbought kW\tshortfall kW\tprice "+n.Currency+"/MW/h\t")
			var need, bought, short int64
			for _, iv := range n.Intervals {
				price := moneyString(iv.ClearingPrice)
				if iv.ClearingPrice == nil && iv.AveragePrice != nil {
					price = moneyString(iv.AveragePrice) + " avg"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", iv.Start.In(sydney).Format("15:04"), kwString(iv.Demand), kwString(iv.Accepted), kwString(iv.Shortfall), price)
				need, bought, short = need+iv.Demand, bought+iv.Accepted, short+iv.Shortfall
			}
			// Each interval is a quarter hour: kW summed over intervals / 4 = kWh.
			fmt.Fprintf(tw, "energy kWh\t%s\t%s\t%s\t\t\n", kwString(need/4), kwString(bought/4), kwString(short/4))
			tw.Flush()
			fmt.Fprintf(w, "cost to the buyer: %s %s\n\n", n.TotalCost.Amount, n.Currency)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FSP\tresource\tbid\tresult\toffered kWh\taccepted kWh\tpaid\treason")
		for _, b := range s.Bids {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s %s\t%s\n", b.FSP, b.Resource, b.Shape, strings.ReplaceAll(b.Status, "_", " "), kwString(b.Offered/4), kwString(b.Accepted/4), b.Amount.Amount, b.Amount.Currency, b.Reason)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	printNominations(w, r.Nominations)
	if r.Activation != nil {
		printActivation(w, r.Activation)
	}
	if r.Settlement != nil {
		printSettlement(w, r.Settlement)
	}
}
