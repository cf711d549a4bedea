package app

import (
	"context"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/baseline"
	"github.com/flexhub/flexhub/settlement"
)

// netSeries reads a resource's net import (import − export) energy per
// step over [from, to) from its stored meter data, in milli-units
// (settlement.NetSeries: energy or power series, incomplete intervals
// marked missing). A group without series of its own is the sum of its
// members' (an interval missing at any member is missing).
func netSeries(ctx context.Context, tx flexhub.Tx, r *flexhub.Resource, reactive bool, from, to time.Time, step time.Duration) (*baseline.Series, error) {
	s, has, err := ownNetSeries(ctx, tx, r.ID, reactive, from, to, step)
	if err != nil || has || r.Kind != flexhub.ResourceGroup || len(r.Members) == 0 {
		return s, err
	}
	var sum *baseline.Series
	for _, id := range r.Members {
		m, _, err := ownNetSeries(ctx, tx, id, reactive, from, to, step)
		if err != nil {
			return nil, err
		}
		if sum == nil {
			sum = m
			continue
		}
		for i := range sum.Values {
			sum.Values[i] += m.Values[i]
			sum.Missing[i] = sum.Missing[i] || m.Missing[i]
		}
	}
	return sum, nil
}

// ownNetSeries is netSeries of the resource's own series; has is false
// when it has none.
func ownNetSeries(ctx context.Context, tx flexhub.Tx, id string, reactive bool, from, to time.Time, step time.Duration) (*baseline.Series, bool, error) {
	series, err := tx.ListMeterSeries(ctx, flexhub.MeterSubjectResource, id)
	if err != nil {
		return nil, false, err
	}
	keys := settlement.PickFlows(series, reactive)
	flows := make([]settlement.Flow, 0, len(keys))
	for _, k := range keys {
		var recs []flexhub.MeterRecord
		span := time.Duration(flexhub.MaxMeterQueryIntervals) * k.Resolution
		for t := from; t.Before(to); t = t.Add(span) {
			rs, err := tx.MeterReadings(ctx, k, t, minTime(t.Add(span), to))
			if err != nil {
				return nil, false, err
			}
			recs = append(recs, rs...)
		}
		flows = append(flows, settlement.Flow{Key: k, Readings: recs})
	}
	s, err := settlement.NetSeries(flows, from, to, step)
	return s, len(keys) > 0, err
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
