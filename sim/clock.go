package sim

import (
	"context"
	"time"
)

// Clock is the simulator's time. The real clock is the default; a scaled
// clock runs faster (or slower) from a chosen start, for demos and tests.
// flexhub rejects meter readings from its future, so a fast clock is only
// useful against a server whose clock is moved the same way.
type Clock interface {
	Now() time.Time
	// SleepUntil waits until the clock reads t or ctx ends.
	SleepUntil(ctx context.Context, t time.Time) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns the time in UTC.
func (RealClock) Now() time.Time { return time.Now().UTC() }

// SleepUntil waits until t.
func (RealClock) SleepUntil(ctx context.Context, t time.Time) error {
	return sleep(ctx, time.Until(t))
}

// ScaledClock reads Start when created and runs Speed times as fast as
// the wall clock from there.
type ScaledClock struct {
	origin time.Time // wall clock at creation
	start  time.Time
	speed  float64
}

// NewScaledClock starts a clock at start (the wall clock when zero)
// running speed times real time (1 when not positive).
func NewScaledClock(start time.Time, speed float64) *ScaledClock {
	now := time.Now()
	if start.IsZero() {
		start = now
	}
	if speed <= 0 {
		speed = 1
	}
	return &ScaledClock{origin: now, start: start.UTC(), speed: speed}
}

// Now returns the simulated time.
func (c *ScaledClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.origin)) * c.speed))
}

// SleepUntil waits until the simulated clock reads t.
func (c *ScaledClock) SleepUntil(ctx context.Context, t time.Time) error {
	return sleep(ctx, time.Duration(float64(t.Sub(c.Now()))/c.speed))
}

// Real converts a simulated duration to wall-clock time.
func (c *ScaledClock) Real(d time.Duration) time.Duration { return time.Duration(float64(d) / c.speed) }

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
