package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/flexhub/flexhub"
)

// Anonymised aggregates (docs/ANONYMISED_DATA.md): consumer meter data
// shared beyond consent — with a DSO, a TSO or a researcher for planning —
// leaves flexhub only as sums per fixed group (a grid area, or a feeder:
// the connection points of a grid area on one node_ref) and fixed
// interval (PT15M, PT1H, P1D on the UTC grid) over at least k consumers.
// The query picks a group, a period and an interval length; the register
// decides who is in the group. An interval is suppressed, and says why,
// when fewer than k consumers are members, when a member's data for it is
// missing (data arriving later would change the sum by that household
// alone), or when its members differ from a neighbouring interval's by
// fewer than k consumers (a household joining would show as the step).
// Every query is in the audit chain ("aggregate.read").

// DefaultAnonymityK is the smallest group published when the server sets
// no other (flexhub serve --anonymity-k).
const DefaultAnonymityK = 10

// MinAnonymityK is the smallest k a server may be configured with.
const MinAnonymityK = 2

// Aggregate limits: the intervals of one query, and the readings it may
// read (members × intervals × readings per interval).
const (
	MaxAggregateIntervals = 3000
	MaxAggregateReadings  = 20_000_000
)

// Reasons of suppressed intervals.
const (
	SuppressedFewerThanK = "fewer_than_k"
	SuppressedIncomplete = "incomplete"
	SuppressedMembership = "membership_change"
	SuppressedSmallRest  = "small_feeders"
)

// Aggregate intervals a query may ask for.
var aggregateIntervals = map[string]time.Duration{"PT15M": 15 * time.Minute, "PT1H": time.Hour, "P1D": 24 * time.Hour}

// SetAnonymityK sets k, the fewest consumers an aggregate is published
// over (at least MinAnonymityK).
func (s *Service) SetAnonymityK(k int) error {
	if k < MinAnonymityK {
		return fmt.Errorf("anonymity k %d: at least %d consumers make a group", k, MinAnonymityK)
	}
	s.anonK = k
	return nil
}

// AnonymityK is the k in force.
func (s *Service) AnonymityK() int {
	if s.anonK == 0 {
		return DefaultAnonymityK
	}
	return s.anonK
}

// AggregateQuery picks a group, a period and an interval length.
type AggregateQuery struct {
	GridAreaID string    `json:"grid_area_id"`
	Feeder     string    `json:"feeder,omitempty"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Interval   string    `json:"interval"`
}

// AggregateInterval is one interval of an aggregate: the sums and the
// number of consumers, or suppressed and why.
type AggregateInterval struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Suppressed bool      `json:"suppressed"`
	Reason     string    `json:"reason,omitempty" enum:"fewer_than_k,small_feeders,incomplete,membership_change" doc:"why the interval is suppressed"`
	Detail     string    `json:"detail,omitempty" doc:"the reason in words"`
	Consumers  *int      `json:"consumers,omitempty" doc:"distinct consumers summed (at least k); absent when suppressed"`
	ImportWh   *int64    `json:"energy_import_wh,omitempty" doc:"active energy taken from the grid, summed over the consumers, rounded to 1 Wh; absent when suppressed"`
	ExportWh   *int64    `json:"energy_export_wh,omitempty" doc:"active energy fed into the grid, likewise"`
}

// Aggregate is the answer to an AggregateQuery: no metering point,
// consumer or connection point is named.
type Aggregate struct {
	GridAreaID string              `json:"grid_area_id"`
	Feeder     string              `json:"feeder,omitempty"`
	Interval   string              `json:"interval"`
	From       time.Time           `json:"from"`
	To         time.Time           `json:"to"`
	K          int                 `json:"k" doc:"the fewest consumers an interval is published over"`
	Unit       string              `json:"unit" enum:"Wh"`
	Intervals  []AggregateInterval `json:"intervals" nullable:"false"`
}

// aggMember is a metering point of the group with the series its sums
// are taken from.
type aggMember struct {
	mp     *flexhub.MeteringPoint
	cp     *flexhub.ConnectionPoint
	nodes  []nodeSpan // the connection point's node_ref over time (feeder queries)
	asked  bool       // in the group asked for at some time: its data is read
	series []flexhub.MeterSeriesKey
	points [][]flexhub.MeterPoint
}

// nodeSpan: the connection point's node_ref from a time on.
type nodeSpan struct {
	from time.Time
	node string
}

func (m *aggMember) nodeAt(t time.Time) string {
	node := m.cp.NodeRef
	for _, sp := range m.nodes {
		if !sp.from.After(t) {
			node = sp.node
		}
	}
	return node
}

// AggregateMeterData sums the active energy of a grid area or a feeder per
// interval over its consumers, suppressing what could single a household
// out. Any authenticated party may ask (nothing personal leaves); every
// query is audited.
func (s *Service) AggregateMeterData(ctx context.Context, q AggregateQuery) (*Aggregate, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	step, ok := aggregateIntervals[q.Interval]
	if !ok {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "aggregate.interval", "query.interval", "interval %q is not offered: PT15M, PT1H or P1D", q.Interval)
	}
	if !flexhub.ValidID(q.GridAreaID) {
		return nil, flexhub.FieldErrorf("query.grid_area_id", "name the group: grid_area_id (and feeder for one feeder of it)")
	}
	if q.From.IsZero() || q.To.IsZero() {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "aggregate.range", "query.from", "give the period: from and to (RFC 3339)")
	}
	from, to := q.From.UTC(), q.To.UTC()
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"query.from", from}, {"query.to", to}} {
		if f.t.Unix()%int64(step/time.Second) != 0 || f.t.Nanosecond() != 0 {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "aggregate.range", f.name, "%s %s is not on the %s grid (UTC): aggregates are fixed intervals", f.name[6:], f.t.Format(time.RFC3339), q.Interval)
		}
	}
	if !to.After(from) {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "aggregate.range", "query.to", "to %s must be after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	n := int(to.Sub(from) / step)
	if n > MaxAggregateIntervals {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "aggregate.range", "query.to", "the period holds %d intervals of %s; ask for at most %d at a time", n, q.Interval, MaxAggregateIntervals)
	}
	k := s.AnonymityK()
	out := &Aggregate{GridAreaID: q.GridAreaID, Feeder: q.Feeder, Interval: q.Interval, From: from, To: to, K: k, Unit: "Wh", Intervals: make([]AggregateInterval, n)}
	var members []*aggMember
	var ga *flexhub.GridArea
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		ga, members, err = s.aggregateMembers(ctx, tx, q.GridAreaID, q.Feeder)
		if err != nil {
			return err
		}
		return readAggregateData(ctx, tx, members, from, to, step)
	})
	if err != nil {
		return nil, err
	}

	// The register's state changes only when a metering point is
	// registered or a connection point changes node: the membership, its
	// consumers and the small feeders are worked out once per state.
	var events []time.Time
	for _, m := range members {
		events = append(events, m.mp.CreatedAt)
		for _, sp := range m.nodes {
			events = append(events, sp.from)
		}
	}
	slices.SortFunc(events, time.Time.Compare)
	stateAt := func(t time.Time) int { // the number of events at or before t
		i, _ := slices.BinarySearchFunc(events, t, func(e, t time.Time) int {
			if e.After(t) {
				return 1
			}
			return -1
		})
		return i
	}
	type regState struct {
		in        []int // the group's members, ascending
		consumers int
		small     int // consumers on the other feeders with fewer than k each
	}
	states := map[int]*regState{}
	stateOf := func(t time.Time) (int, *regState) {
		sid := stateAt(t)
		if st, ok := states[sid]; ok {
			return sid, st
		}
		st := &regState{}
		seen := map[string]bool{}
		byNode := map[string]map[string]bool{}
		for j, m := range members {
			if m.mp.CreatedAt.After(t) {
				continue
			}
			node := m.nodeAt(t)
			if m.asked && (q.Feeder == "" || node == q.Feeder) {
				st.in = append(st.in, j)
				seen[m.mp.ConsumerID] = true
			}
			if q.Feeder != "" {
				if byNode[node] == nil {
					byNode[node] = map[string]bool{}
				}
				byNode[node][m.mp.ConsumerID] = true
			}
		}
		st.consumers = len(seen)
		// The grid area's sum less the sums of its feeders with k or more
		// consumers is the sum of the small ones together.
		rest := map[string]bool{}
		for node, cs := range byNode {
			if node != q.Feeder && len(cs) < k {
				for c := range cs {
					rest[c] = true
				}
			}
		}
		st.small = len(rest)
		states[sid] = st
		return sid, st
	}
	// changed counts the distinct consumers whose metering points are in
	// one membership and not the other (both ascending).
	changed := func(a, b []int) int {
		seen := map[string]bool{}
		for i, j := 0, 0; i < len(a) || j < len(b); {
			switch {
			case j == len(b) || (i < len(a) && a[i] < b[j]):
				seen[members[a[i]].mp.ConsumerID] = true
				i++
			case i == len(a) || b[j] < a[i]:
				seen[members[b[j]].mp.ConsumerID] = true
				j++
			default:
				i, j = i+1, j+1
			}
		}
		return len(seen)
	}
	// Interval i's state; -1 and n are the neighbours outside the period,
	// so that a decision never depends on where a query starts or ends.
	at := func(i int) (int, *regState) { return stateOf(from.Add(time.Duration(i) * step)) }
	diff := func(s1 int, a *regState, s2 int, b *regState) int {
		if s1 == s2 {
			return 0
		}
		return changed(a.in, b.in)
	}
	ps, prev := at(-1)
	cs, cur := at(0)
	for i := range n {
		ns, next := at(i + 1)
		start := from.Add(time.Duration(i) * step)
		iv := &out.Intervals[i]
		iv.Start, iv.End = start, start.Add(step)
		suppress := func(reason, detail string) { iv.Suppressed, iv.Reason, iv.Detail = true, reason, detail }
		nc := cur.consumers
		switch c1, c2 := diff(ps, prev, cs, cur), diff(cs, cur, ns, next); {
		case nc < k:
			suppress(SuppressedFewerThanK, fmt.Sprintf("fewer than %d consumers in the group", k))
		case q.Feeder != "" && cur.small > 0 && cur.small < k:
			suppress(SuppressedSmallRest, fmt.Sprintf("the grid area's feeders with fewer than %d consumers hold fewer than %d together: "+
				"the grid area's sum less this feeder's would be theirs", k, k))
		case (c1 > 0 && c1 < k) || (c2 > 0 && c2 < k):
			suppress(SuppressedMembership, fmt.Sprintf("fewer than %d consumers joined or left the group next to this interval", k))
		default:
			var imp, exp int64
			complete := true
			for _, j := range cur.in {
				ok, im, ex := members[j].sum(start, step)
				if !ok {
					complete = false
					break
				}
				imp, exp = imp+im, exp+ex
			}
			if !complete {
				suppress(SuppressedIncomplete, "a member's meter data for this interval is missing")
				break
			}
			imp, exp = roundMilli(imp), roundMilli(exp)
			iv.Consumers, iv.ImportWh, iv.ExportWh = &nc, &imp, &exp
		}
		ps, prev, cs, cur = cs, cur, ns, next
	}

	// The query is audited (the asker and the grid area's DSO see the
	// entry; its payload hash is the query's); no answer leaves unaudited.
	err = s.store.Update(context.WithoutCancel(ctx), func(tx flexhub.Tx) error {
		return s.record(ctx, tx, by, "aggregate.read", flexhub.KindGridArea, ga.ID, ga.Version,
			AggregateQuery{GridAreaID: q.GridAreaID, Feeder: q.Feeder, From: from, To: to, Interval: q.Interval}, ga.DSOID)
	})
	if err != nil {
		return nil, fmt.Errorf("audit the aggregate read: %w", err)
	}
	return out, nil
}

// roundMilli rounds milli-units to whole units, halves away from zero.
func roundMilli(v int64) int64 {
	if v < 0 {
		return -((-v + 500) / 1000)
	}
	return (v + 500) / 1000
}

// sum adds a member's active energy over [start, start+step): ok only if
// each of its series has every reading of the interval.
func (m *aggMember) sum(start time.Time, step time.Duration) (ok bool, imp, exp int64) {
	if len(m.series) == 0 {
		return false, 0, 0
	}
	lo, hi := start.Unix(), start.Add(step).Unix()
	for i, key := range m.series {
		pts := m.points[i]
		a, _ := slices.BinarySearchFunc(pts, lo, func(p flexhub.MeterPoint, t int64) int { return int(p.Start - t) })
		b, _ := slices.BinarySearchFunc(pts, hi, func(p flexhub.MeterPoint, t int64) int { return int(p.Start - t) })
		if int64(b-a) != int64(step/key.Resolution) {
			return false, 0, 0
		}
		var v int64
		for _, p := range pts[a:b] {
			v += p.Value
		}
		if key.Flow == flexhub.FlowExport {
			exp += v
		} else {
			imp += v
		}
	}
	return true, imp, exp
}

// aggregateMembers lists every metering point ever registered in the
// grid area with its connection point's node over time, marking those
// of the group asked for (in a feeder: every one whose connection point
// was ever on the feeder's node); the others count for smallRest.
func (s *Service) aggregateMembers(ctx context.Context, tx flexhub.Tx, gridAreaID, feeder string) (*flexhub.GridArea, []*aggMember, error) {
	ga, err := tx.GridArea(ctx, gridAreaID)
	if err != nil {
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			return nil, nil, flexhub.RuleErrorf(flexhub.ENotFound, "aggregate.group", "query.grid_area_id", "grid area %s does not exist", gridAreaID)
		}
		return nil, nil, err
	}
	cps, err := listAll(func(pg flexhub.Page) ([]*flexhub.ConnectionPoint, string, error) {
		return tx.ListConnectionPoints(ctx, flexhub.Filter{"grid_area_id": gridAreaID}, pg)
	})
	if err != nil {
		return nil, nil, err
	}
	var out []*aggMember
	asked := false
	for _, cp := range cps {
		var nodes []nodeSpan
		onFeeder := cp.NodeRef == feeder
		if cp.Version > 1 { // node_ref may have changed: its history decides
			vs, err := tx.Versions(ctx, flexhub.KindConnectionPoint, cp.ID)
			if err != nil {
				return nil, nil, err
			}
			for _, v := range vs {
				var old flexhub.ConnectionPoint
				if err := json.Unmarshal(v.Body, &old); err != nil {
					return nil, nil, fmt.Errorf("decode connection point %s version %d: %w", cp.ID, v.Version, err)
				}
				nodes = append(nodes, nodeSpan{from: v.ValidFrom, node: old.NodeRef})
				onFeeder = onFeeder || old.NodeRef == feeder
			}
		}

		mps, err := listAll(func(pg flexhub.Page) ([]*flexhub.MeteringPoint, string, error) {
			return tx.ListMeteringPoints(ctx, flexhub.Filter{"connection_point_id": cp.ID}, pg)
		})
		if err != nil {
			return nil, nil, err
		}
		for _, mp := range mps {
			out = append(out, &aggMember{mp: mp, cp: cp, nodes: nodes, asked: feeder == "" || onFeeder})
			asked = asked || feeder == "" || onFeeder
		}
	}
	if feeder != "" && !asked {
		return nil, nil, flexhub.RuleErrorf(flexhub.ENotFound, "aggregate.group", "query.feeder",
			"grid area %s has no metering point on feeder %q (a feeder is a connection point node_ref)", gridAreaID, feeder)
	}
	return ga, out, nil
}

// readAggregateData picks each member's active energy series for the
// interval length (per flow, the finest resolution that divides it) and
// reads them all at once.
func readAggregateData(ctx context.Context, tx flexhub.Tx, members []*aggMember, from, to time.Time, step time.Duration) error {
	var ids []string
	for _, m := range members {
		if m.asked {
			ids = append(ids, m.mp.ID)
		}
	}
	series, err := tx.ListMeterSeriesOf(ctx, flexhub.MeterSubjectMeteringPoint, ids)
	if err != nil {
		return err
	}
	var windows []flexhub.MeterWindow
	var readings int64
	for _, m := range members {
		best := map[string]flexhub.MeterSeriesKey{}
		for _, sr := range series[m.mp.ID] {
			if sr.Quantity != flexhub.QuantityActiveEnergy || step%sr.Resolution != 0 {
				continue
			}
			if b, ok := best[sr.Flow]; !ok || sr.Resolution < b.Resolution {
				best[sr.Flow] = sr.MeterSeriesKey
			}
		}
		for _, flow := range []string{flexhub.FlowImport, flexhub.FlowExport} {
			if key, ok := best[flow]; ok {
				m.series = append(m.series, key)
				windows = append(windows, flexhub.MeterWindow{Key: key, From: from, To: to})
				readings += int64(to.Sub(from) / key.Resolution)
			}
		}
	}
	if readings > MaxAggregateReadings {
		return flexhub.RuleErrorf(flexhub.EInvalid, "aggregate.range", "query.to",
			"the period would read %d readings of this group; ask for a shorter period (at most %d)", readings, MaxAggregateReadings)
	}
	pts, err := tx.MeterPoints(ctx, windows)
	if err != nil {
		return err
	}
	i := 0
	for _, m := range members {
		m.points = pts[i : i+len(m.series)]
		i += len(m.series)
	}
	return nil
}
