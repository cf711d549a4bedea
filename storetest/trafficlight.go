package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// testTrafficLight: overrides are stored whole, listed by the API's
// filters, versioned on withdrawal, and found by the span they cover —
// active ones only, of the resources asked for, overlapping the range
// (a span that ends where the range starts does not overlap).
func (s *suite) testTrafficLight(t *testing.T) {
	st, ws := s.seed(t, 2)
	w, other := ws[0], ws[1]
	day := base.Add(72 * time.Hour)
	mk := func(w *world, from, to time.Duration, color string) *flexhub.TrafficLightOverride {
		return &flexhub.TrafficLightOverride{ID: flexhub.NewID(), TrafficLightOverrideSpec: flexhub.TrafficLightOverrideSpec{ResourceID: w.Unit.ID,
			Start: day.Add(from), End: day.Add(to), Direction: "up", Color: color, Reason: "feeder 3"},
			DSOID: w.DSO.ID, FSPID: w.FSP.ID, Status: flexhub.OverrideActive, CreatedAt: base, UpdatedAt: base}
	}
	evening, night, withdrawn, elsewhere := mk(w, 17*time.Hour, 19*time.Hour, flexhub.LightRed), mk(w, 22*time.Hour, 23*time.Hour, flexhub.LightGreen),
		mk(w, 17*time.Hour, 18*time.Hour, flexhub.LightRed), mk(other, 17*time.Hour, 19*time.Hour, flexhub.LightRed)
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		for _, o := range []*flexhub.TrafficLightOverride{evening, night, withdrawn, elsewhere} {
			if err := tx.CreateTrafficLightOverride(ctx, o); err != nil {
				return err
			}
		}
		withdrawn.Status, withdrawn.UpdatedAt = flexhub.OverrideWithdrawn, base.Add(time.Minute)
		return tx.UpdateTrafficLightOverride(ctx, withdrawn)
	})
	ids := func(os []*flexhub.TrafficLightOverride) []string {
		out := []string{}
		for _, o := range os {
			out = append(out, o.ID)
		}
		return out
	}
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.TrafficLightOverride(ctx, withdrawn.ID)
		if err != nil {
			return err
		}
		if got.Version != 2 || got.Status != flexhub.OverrideWithdrawn || got.Reason != "feeder 3" {
			t.Errorf("withdrawn override read back %+v", got)
		}
		for name, c := range map[string]struct {
			res      []string
			from, to time.Duration
			want     []string
		}{
			"the evening":                   {[]string{w.Unit.ID}, 18 * time.Hour, 18*time.Hour + 15*time.Minute, []string{evening.ID}},
			"the whole day, both units":     {[]string{w.Unit.ID, other.Unit.ID}, 0, 24 * time.Hour, sortedOf(evening.ID, night.ID, elsewhere.ID)},
			"ending where the range starts": {[]string{w.Unit.ID}, 19 * time.Hour, 22 * time.Hour, nil},
			"no resources":                  {nil, 0, 24 * time.Hour, nil},
		} {
			os, err := tx.TrafficLightOverridesCovering(ctx, c.res, day.Add(c.from), day.Add(c.to))
			if err != nil {
				return err
			}
			if got := sortedOf(ids(os)...); !equalStrings(got, c.want) {
				t.Errorf("%s: covering %v, want %v", name, got, c.want)
			}
		}
		for name, c := range map[string]struct {
			f    flexhub.Filter
			want []string
		}{
			"dso":       {flexhub.Filter{"dso_id": w.DSO.ID}, sortedOf(evening.ID, night.ID, withdrawn.ID)},
			"fsp":       {flexhub.Filter{"fsp_id": other.FSP.ID}, []string{elsewhere.ID}},
			"withdrawn": {flexhub.Filter{"status": flexhub.OverrideWithdrawn}, []string{withdrawn.ID}},
			"resource":  {flexhub.Filter{"resource_id": other.Unit.ID}, []string{elsewhere.ID}},
		} {
			os, _, err := tx.ListTrafficLightOverrides(ctx, c.f, flexhub.Page{})
			if err != nil {
				return err
			}
			if got := sortedOf(ids(os)...); !equalStrings(got, c.want) {
				t.Errorf("list %s: %v, want %v", name, got, c.want)
			}
		}
		return nil
	})
}

func sortedOf(ids ...string) []string { return sortedCopy(ids) }

func equalStrings(a, b []string) bool { return slices.Equal(a, b) || (len(a) == 0 && len(b) == 0) }
