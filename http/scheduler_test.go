package http_test

import (
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub/clearing"
)

// TestGateClosesWhileAnotherSessionClears: a clearing that takes long
// (here: an engine that waits until the test releases it) must not delay
// another session's gate closure.
func TestGateClosesWhileAnotherSessionClears(t *testing.T) {
	w := newMarketWorld(t)
	release := make(chan struct{})
	var once sync.Once
	w.svc.SetSolver(func(p *clearing.Problem) (*clearing.Result, error) {
		<-release
		return clearing.Solve(p)
	})

	needA := w.publish(w.tsoKey, w.product, 2)
	needB := w.publish(w.tsoKey, w.product, 2)
	a := w.openSession(w.moKey, time.Now(), time.Now().Add(time.Second), needA.ID)
	b := w.openSession(w.moKey, time.Now(), time.Now().Add(2*time.Second), needB.ID)
	w.runScheduler()
	// Registered after the scheduler's, so it runs first: a failing test
	// releases the engine before it waits for the scheduler to stop.
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	w.waitFor(a.ID, "closed", 4*time.Second) // A closed; its clearing is stuck in the engine
	w.waitFor(b.ID, "closed", 4*time.Second) // B's gate still closes on time
	once.Do(func() { close(release) })
	w.waitFor(a.ID, "cleared", 6*time.Second)
	w.waitFor(b.ID, "cleared", 6*time.Second)
}
