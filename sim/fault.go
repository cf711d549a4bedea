package sim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"
)

// Faults are the failures a simulated FSP shows, each a probability per
// order (0..1). Every decision is a hash of the seed, the order id and
// the fault, so a resent order meets the same fate and a run repeats
// exactly with the same seed.
type Faults struct {
	// NoAck: the order is lost in the FSP's systems: never acknowledged,
	// never executed (flexhub's ack deadline alert fires).
	NoAck float64
	// Reject: the order is acknowledged (received) and then rejected with
	// a reason.
	Reject float64
	// UnderDeliver: the order is accepted but the resources deliver only
	// DeliverFraction of each set-point (or of the reduction a cap needs).
	UnderDeliver float64
	// DeliverFraction is what an under-delivering order delivers (default 0.5).
	DeliverFraction float64
	// Drop: during the order's activation the FSP's MQTT connection drops
	// and comes back after DropFor (default 30 s); meter data measured
	// meanwhile is buffered and sent after the reconnection.
	Drop    float64
	DropFor time.Duration
}

// Validate checks the probabilities and fills the defaults.
func (f *Faults) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"fail-ack", f.NoAck}, {"fail-reject", f.Reject}, {"under-deliver", f.UnderDeliver}, {"drop", f.Drop}} {
		if p.v < 0 || p.v > 1 {
			return fmt.Errorf("%s: %v is not a probability between 0 and 1", p.name, p.v)
		}
	}
	if f.DeliverFraction == 0 {
		f.DeliverFraction = 0.5
	}
	if f.DeliverFraction < 0 || f.DeliverFraction > 1 {
		return fmt.Errorf("deliver-fraction: %v is not between 0 and 1", f.DeliverFraction)
	}
	if f.DropFor == 0 {
		f.DropFor = 30 * time.Second
	}
	if f.DropFor < 0 {
		return fmt.Errorf("drop-for must not be negative")
	}
	return nil
}

// chance is a uniform number in [0, 1) fixed by the seed, the order id and
// the fault's name.
func chance(seed int64, orderID, what string) float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed)^0x5f3759df)
	h.Write(b[:])
	h.Write([]byte(orderID))
	h.Write([]byte{0})
	h.Write([]byte(what))
	return float64(h.Sum64()>>11) / float64(1<<53)
}
