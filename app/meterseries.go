package app

import (
	"context"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline"
	"github.com/flexhub/flexhub/settlement"
)

// seriesRequest asks for a resource's net import energy per step over
// [from, to).
type seriesRequest struct {
	res      *flexhub.Resource
	reactive bool
	from, to time.Time
	step     time.Duration
}

// netSeries reads a resource's net import (import − export) energy per
// step over [from, to) from its stored meter data, in milli-units
// (settlement.NetSeries: energy or power series, incomplete intervals
// marked missing). A group without series of its own is the sum of its
// members' (an interval missing at any member is missing).
func netSeries(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource, reactive bool, from, to time.Time, step time.Duration) (*baseline.Series, error) {
	out, err := netSeriesMany(ctx, tx, []seriesRequest{{r, reactive, from, to, step}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// netSeriesMany is netSeries for many requests in three statements: the
// series of every resource and group member, then all their readings
// (MeterPoints), whatever the number of requests.
func netSeriesMany(ctx context.Context, tx flexhub.Tx, reqs []seriesRequest) ([]*baseline.Series, error) {
	rd, err := readSeries(ctx, tx, reqs)
	if err != nil {
		return nil, err
	}
	return rd.build()
}

// seriesRead is what readSeries read for a set of requests: build turns
// it into the net series without the store (a settlement run builds one
// block's series while it reads the next block's).
type seriesRead struct {
	reqs   []seriesRequest
	parts  []seriesPart
	points [][]flexhub.MeterPoint
}

// seriesPart is one request's own flows, or one member's of a group:
// the request's series is the sum of its parts.
type seriesPart struct {
	req   int
	first int // its first window in points
	keys  []flexhub.MeterSeriesKey
}

func readSeries(ctx context.Context, tx flexhub.Tx, reqs []seriesRequest) (*seriesRead, error) {
	var subjects []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			subjects = append(subjects, id)
		}
	}
	for _, q := range reqs {
		add(q.res.ID)
		if q.res.Kind == flexhub.ResourceGroup {
			for _, m := range q.res.Members {
				add(m)
			}
		}
	}
	series, err := tx.ListMeterSeriesOf(ctx, flexhub.MeterSubjectResource, subjects)
	if err != nil {
		return nil, err
	}
	rd := &seriesRead{reqs: reqs}
	var windows []flexhub.MeterWindow
	for i, q := range reqs {
		ids := []string{q.res.ID}
		if keys := settlement.PickFlows(series[q.res.ID], q.reactive); len(keys) == 0 && q.res.Kind == flexhub.ResourceGroup && len(q.res.Members) > 0 {
			ids = q.res.Members
		}
		for _, id := range ids {
			keys := settlement.PickFlows(series[id], q.reactive)
			rd.parts = append(rd.parts, seriesPart{i, len(windows), keys})
			for _, k := range keys {
				windows = append(windows, flexhub.MeterWindow{Key: k, From: q.from, To: q.to})
			}
		}
	}
	if rd.points, err = tx.MeterPoints(ctx, windows); err != nil {
		return nil, err
	}
	return rd, nil
}

// build makes each request's net series (settlement.NetSeries), the sum
// of its parts.
func (rd *seriesRead) build() ([]*baseline.Series, error) {
	out := make([]*baseline.Series, len(rd.reqs))
	for _, p := range rd.parts {
		q := rd.reqs[p.req]
		flows := make([]settlement.Flow, len(p.keys))
		for j, k := range p.keys {
			flows[j] = settlement.Flow{Key: k, Points: rd.points[p.first+j]}
		}
		s, err := settlement.NetSeries(flows, q.from, q.to, q.step)
		if err != nil {
			return nil, err
		}
		if sum := out[p.req]; sum != nil {
			for i := range sum.Values {
				sum.Values[i] += s.Values[i]
				sum.Missing[i] = sum.Missing[i] || s.Missing[i]
			}
			continue
		}
		out[p.req] = s
	}
	return out, nil
}
