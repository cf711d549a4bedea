package flexhub

import (
	"testing"
	"time"
)

func monitorOrder(typ, dir string, q ...int64) *ActivationOrder {
	t0 := time.Date(2026, 6, 10, 17, 0, 0, 0, time.UTC)
	o := &ActivationOrder{ID: "o", ResourceID: "r", Type: typ, Direction: dir, Unit: "W"}
	for i, v := range q {
		s := t0.Add(time.Duration(i) * 15 * time.Minute)
		o.Setpoints = append(o.Setpoints, Setpoint{Start: s, End: s.Add(15 * time.Minute), Quantity: v})
	}
	return o
}

// steady returns 10-second samples of net power from..to.
func steady(from, to time.Time, net int64) []PowerSample {
	var out []PowerSample
	for t := from; t.Before(to); t = t.Add(10 * time.Second) {
		out = append(out, PowerSample{Start: t, Dur: 10 * time.Second, Net: net})
	}
	return out
}

func TestBaselineMeterBefore(t *testing.T) {
	o := monitorOrder(OrderActivate, "up", 100_000)
	at := o.First()
	// −50 kW (importing) before; readings after the start must not count.
	s := append(steady(at.Add(-time.Hour), at, -50_000), steady(at, at.Add(time.Minute), 500_000)...)
	if b, ok := Baseline(s, at); !ok || b != -50_000 {
		t.Errorf("baseline %d %v, want -50000", b, ok)
	}
	if _, ok := Baseline(steady(at.Add(-time.Hour), at.Add(-30*time.Minute), 1), at); ok {
		t.Error("a baseline from readings older than the window")
	}
}

func TestEvaluateDelivery(t *testing.T) {
	up := monitorOrder(OrderActivate, "up", 100_000, 100_000)
	t0 := up.First()
	base := int64(-50_000) // importing 50 kW
	cases := []struct {
		name    string
		o       *ActivationOrder
		samples []PowerSample
		now     time.Time
		want    []string
		deliv   int64
	}{
		{"on target: import falls from 50 to 0 kW and 50 kW exported", up, steady(t0, t0.Add(30*time.Minute), 50_000), t0.Add(30 * time.Minute),
			[]string{DeliveryOnTarget, DeliveryOnTarget}, 100_000},
		{"within tolerance", up, steady(t0, t0.Add(15*time.Minute), 41_000), t0.Add(15 * time.Minute), []string{DeliveryOnTarget}, 91_000},
		{"under: only 60 kW", up, steady(t0, t0.Add(15*time.Minute), 10_000), t0.Add(10 * time.Minute), []string{DeliveryUnder}, 60_000},
		{"over: 150 kW", up, steady(t0, t0.Add(15*time.Minute), 100_000), t0.Add(15 * time.Minute), []string{DeliveryOver}, 150_000},
		{"pending: still ramping", up, steady(t0, t0.Add(15*time.Minute), -50_000), t0.Add(4 * time.Minute), []string{DeliveryPending}, 0},
		{"pending: no measurements", up, nil, t0.Add(10 * time.Minute), []string{DeliveryPending}, 0},
		{"down order: consumption up by 100 kW", monitorOrder(OrderActivate, "down", 100_000), steady(t0, t0.Add(15*time.Minute), -150_000), t0.Add(15 * time.Minute),
			[]string{DeliveryOnTarget}, 100_000},
		{"limit on export exceeded", monitorOrder(OrderLimit, "up", 20_000), steady(t0, t0.Add(15*time.Minute), 30_000), t0.Add(15 * time.Minute),
			[]string{DeliveryOver}, 30_000},
		{"limit kept", monitorOrder(OrderLimit, "up", 20_000), steady(t0, t0.Add(15*time.Minute), 5_000), t0.Add(15 * time.Minute),
			[]string{DeliveryOnTarget}, 5_000},
	}
	for _, c := range cases {
		got := EvaluateDelivery(c.o, base, c.samples, 5*time.Minute, 10, c.now)
		if len(got) != len(c.want) {
			t.Errorf("%s: %d checks, want %d", c.name, len(got), len(c.want))
			continue
		}
		for i, g := range got {
			if g.Verdict != c.want[i] {
				t.Errorf("%s: interval %d verdict %s, want %s (%+v)", c.name, i, g.Verdict, c.want[i], g)
			}
		}
		if got[0].Verdict != DeliveryPending && got[0].Delivered != c.deliv {
			t.Errorf("%s: delivered %d, want %d", c.name, got[0].Delivered, c.deliv)
		}
		if got[0].Verdict == DeliveryUnder || got[0].Verdict == DeliveryOver {
			if DeliveryAlert(c.o, got[0], 10) == "" {
				t.Errorf("%s: no alert text", c.name)
			}
		}
	}
}

// An order created in the middle of its interval: the baseline is what
// ran before the creation, and the ramp counts from the creation.
func TestDeliveryOrderCreatedLate(t *testing.T) {
	o := monitorOrder(OrderActivate, "up", 100_000)
	t0 := o.First()
	o.CreatedAt = t0.Add(5 * time.Minute)
	s := append(steady(t0.Add(-10*time.Minute), o.CreatedAt, -80_000), steady(o.CreatedAt, t0.Add(15*time.Minute), 20_000)...)
	b, ok := Baseline(s, o.BaselineAt())
	if !ok || b != -80_000 {
		t.Fatalf("baseline %d %v, want -80000 (what ran before the order existed)", b, ok)
	}
	// 40 s after creation with a 30 s ramp: only 10 s measured, pending.
	if c := EvaluateDelivery(o, b, s, 30*time.Second, 10, o.CreatedAt.Add(40*time.Second)); c[0].Verdict != DeliveryPending {
		t.Errorf("after 10 s of window: %+v, want pending", c[0])
	}
	if c := EvaluateDelivery(o, b, s, 30*time.Second, 10, o.CreatedAt.Add(time.Minute+10*time.Second)); c[0].Verdict != DeliveryOnTarget || c[0].Delivered != 100_000 {
		t.Errorf("after 40 s of window: %+v, want on target, 100000", c[0])
	}
}
