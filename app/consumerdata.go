package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flexhub/flexhub"
)

// The real-time stream of consumer data (docs/MQTT.md "consumer-data",
// docs/CONSENT.md): new readings of a metering point, and of the
// resources behind it, are published as they are stored to
//
//	flexhub/v1/parties/{party}/consumer-data/{metering_point} (ConsumerDataTopic)
//
// for every data user holding a consent in force that covers the metering
// point and the scope meter_realtime, and to the consumer who owns it.
// flexhub decides per publish, not per subscription: the consents are read
// after the readings committed, right before they are published, so a
// revocation stops the very next reading, also for a subscription that
// stays open. Every publish to a data user is in the access log (channel
// mqtt, one entry per data user, metering point and ingestion), logged
// before the data leaves; the owner's own stream is not logged.
//
// The stream runs beside ingestion, never in its way: meterStored hands a
// committed ingestion to a queue and returns; one goroutine takes what
// has queued (up to consumerStreamRound ingestions), reads the resources,
// metering points and consents of all of it in three statements, logs the
// accesses in one transaction and publishes. A full queue drops the
// ingestion from the stream (with a warning): the stream is live
// delivery, the stored history (GET /v1/meter-readings, with consent
// meter_history) the record.

const (
	consumerStreamQueue = 4096 // committed ingestions waiting for the stream
	consumerStreamRound = 256  // most ingestions handled at once
)

// consumerStream is the queue between ingestion and the stream.
type consumerStream struct {
	q       chan streamIngestion
	running *atomic.Bool  // a stream goroutine takes from q
	dropped *atomic.Int64 // ingestions dropped for a full queue since the last warning
}

func newConsumerStream() consumerStream {
	return consumerStream{q: make(chan streamIngestion, consumerStreamQueue), running: new(atomic.Bool), dropped: new(atomic.Int64)}
}

// streamIngestion is one committed ingestion on its way to the stream.
type streamIngestion struct {
	values []flexhub.MeterValue
	res    *flexhub.MeterIngestResult
}

// ConsumerDataMessage is what flexhub publishes on a consumer-data topic:
// the new readings of one series of one metering point from one
// ingestion.
type ConsumerDataMessage struct {
	MeteringPointID string                 `json:"metering_point_id"`
	Series          flexhub.MeterSeriesRef `json:"series" doc:"the metering point's series, or a series of a resource behind it (resource_id)"`
	Unit            string                 `json:"unit" doc:"the quantity's base unit (kWh, kW, ...)"`
	BatchID         string                 `json:"batch_id" doc:"the ingestion that stored them"`
	ReceivedAt      time.Time              `json:"received_at"`
	Readings        []ConsumerDataReading  `json:"readings"`
}

// ConsumerDataReading is one reading as on GET /v1/meter-readings.
type ConsumerDataReading struct {
	Start time.Time   `json:"start"`
	Value json.Number `json:"value" doc:"exact decimal in unit"`
}

// ConsumerDataTopic is the topic on which party receives the real-time
// data of a metering point.
func ConsumerDataTopic(partyID, meteringPointID string) string {
	return Topic(partyID, "consumer-data/"+meteringPointID)
}

// streamStored hands a committed ingestion to the stream, if it runs;
// it never blocks.
func (s *Service) streamStored(in *meterIngestion, res *flexhub.MeterIngestResult) {
	if !s.stream.running.Load() {
		return
	}
	select {
	case s.stream.q <- streamIngestion{values: in.values, res: res}:
	default:
		s.stream.dropped.Add(1)
	}
}

// runConsumerStream publishes committed ingestions until ctx ends
// (started by ServeMQTT).
func (s *Service) runConsumerStream(ctx context.Context) {
	if s.pub == nil || !s.stream.running.CompareAndSwap(false, true) {
		return
	}
	defer s.stream.running.Store(false)
	for {
		var round []streamIngestion
		select {
		case <-ctx.Done():
			return
		case x := <-s.stream.q:
			round = append(round, x)
		}
	fill:
		for len(round) < consumerStreamRound {
			select {
			case x := <-s.stream.q:
				round = append(round, x)
			default:
				break fill
			}
		}
		if n := s.stream.dropped.Swap(0); n > 0 {
			s.log.Warn("consumer data stream: queue full, ingestions not streamed (they are stored)", "ingestions", n)
		}
		if err := s.streamRound(ctx, round); err != nil && ctx.Err() == nil {
			s.log.Error("consumer data stream", "ingestions", len(round), "err", err)
		}
	}
}

// streamSeries is the new readings of one series in one ingestion.
type streamSeries struct {
	key    flexhub.MeterSeriesKey
	res    *flexhub.MeterIngestResult
	batch  int // index of the ingestion in the round
	values []flexhub.MeterValue
	mp     string // the metering point: the subject, or the resource's
}

// streamRecipient is a data user allowed a metering point's data of one
// ingestion, with the access logged for it.
type streamRecipient struct {
	party  string
	access *flexhub.DataAccess
}

// streamRound publishes one round of committed ingestions.
func (s *Service) streamRound(ctx context.Context, round []streamIngestion) error {
	series := streamSeriesOf(round)
	if len(series) == 0 {
		return nil
	}
	var resourceIDs, mpIDs []string
	seenR, seenMP := map[string]bool{}, map[string]bool{}
	for _, ss := range series {
		if ss.key.SubjectKind == flexhub.MeterSubjectResource {
			if !seenR[ss.key.SubjectID] {
				seenR[ss.key.SubjectID] = true
				resourceIDs = append(resourceIDs, ss.key.SubjectID)
			}
		} else if !seenMP[ss.key.SubjectID] {
			seenMP[ss.key.SubjectID] = true
			mpIDs = append(mpIDs, ss.key.SubjectID)
		}
	}
	// The check, at the moment of the publish: the resources' metering
	// points, the metering points' owners and the consents in force of
	// the round, three statements of indexed columns (and the consents).
	now := s.now()
	var mps map[string]flexhub.MeteringPointOwner
	var consents []*flexhub.Consent
	users := map[string]*flexhub.Party{}
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		if len(resourceIDs) > 0 {
			rmp, err := tx.ResourceMeteringPoints(ctx, resourceIDs)
			if err != nil {
				return err
			}
			for _, ss := range series {
				if mp := rmp[ss.key.SubjectID]; ss.key.SubjectKind == flexhub.MeterSubjectResource && mp != "" {
					ss.mp = mp
					if !seenMP[mp] {
						seenMP[mp] = true
						mpIDs = append(mpIDs, mp)
					}
				}
			}
		}
		var err error
		if mps, err = tx.MeteringPointOwners(ctx, mpIDs); err != nil {
			return err
		}
		if consents, err = tx.ConsentsInForce(ctx, mpIDs, flexhub.ScopeMeterRealtime, now); err != nil {
			return err
		}
		for _, c := range consents {
			if _, ok := users[c.DataUserID]; !ok {
				p, err := tx.Party(ctx, c.DataUserID)
				if err != nil {
					return err
				}
				users[c.DataUserID] = p
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the consents of %d metering points: %w", len(mpIDs), err)
	}
	recipients, accesses := s.streamRecipients(series, mps, consents, users, now)
	if len(accesses) > 0 {
		if err := s.logAccess(ctx, accesses...); err != nil {
			// No data leaves unlogged: the owners still get their own.
			s.log.Error("consumer data stream: access not logged, not published to data users", "accesses", len(accesses), "err", err)
			recipients = nil
		}
	}
	for _, ss := range series {
		mp, ok := mps[ss.mp]
		if !ok || mp.ConsumerID == "" {
			continue // no consumer's data
		}
		payload, err := json.Marshal(consumerDataMessage(ss))
		if err != nil {
			return err
		}
		to := []string{mp.ConsumerID}
		for _, r := range recipients[streamKey{ss.batch, ss.mp}] {
			to = append(to, r.party)
		}
		for _, p := range to {
			if err := s.pub.Publish(ctx, ConsumerDataTopic(p, ss.mp), payload, 1, false); err != nil {
				s.log.Warn("consumer data stream: publish", "party", p, "metering_point", ss.mp, "err", err)
			}
		}
	}
	return nil
}

// streamKey is a metering point's data in one ingestion of a round.
type streamKey struct {
	batch int
	mp    string
}

// streamSeriesOf groups a round's new readings by ingestion and series
// (series the ingestion did not change are left out; a reading sent twice
// in one ingestion once).
func streamSeriesOf(round []streamIngestion) []*streamSeries {
	var out []*streamSeries
	for b, x := range round {
		changed := map[flexhub.MeterSeriesKey]bool{}
		for _, sr := range x.res.Series {
			if sr.Inserted+sr.Corrected == 0 {
				continue
			}
			if k, err := sr.MeterSeriesRef.Key(""); err == nil {
				changed[k] = true
			}
		}
		if len(changed) == 0 {
			continue
		}
		idx := map[flexhub.MeterSeriesKey]*streamSeries{}
		seen := map[flexhub.MeterSeriesKey]map[int64]bool{}
		for _, v := range x.values {
			if !changed[v.Series] {
				continue
			}
			ss := idx[v.Series]
			if ss == nil {
				ss = &streamSeries{key: v.Series, res: x.res, batch: b}
				if v.Series.SubjectKind == flexhub.MeterSubjectMeteringPoint {
					ss.mp = v.Series.SubjectID
				}
				idx[v.Series] = ss
				seen[v.Series] = map[int64]bool{}
				out = append(out, ss)
			}
			if st := v.Start.Unix(); !seen[v.Series][st] {
				seen[v.Series][st] = true
				ss.values = append(ss.values, v)
			}
		}
	}
	return out
}

// streamRecipients decides, for each metering point's data in each
// ingestion of the round, which data users get it and on which basis —
// dataAccess's rules with the consents read for the whole round: a
// consent in force from the metering point's current consumer that covers
// it and meter_realtime, or a legal basis for the real-time stream (the
// DSO; the register) held by a party that holds such a consent. It
// returns the recipients and their accesses to log.
func (s *Service) streamRecipients(series []*streamSeries, mps map[string]flexhub.MeteringPointOwner, consents []*flexhub.Consent,
	users map[string]*flexhub.Party, now time.Time) (map[streamKey][]streamRecipient, []*flexhub.DataAccess) {
	// The data users of each metering point, by the first consent (by id).
	type grant struct {
		user    *flexhub.Party
		consent string
	}
	byMP := map[string][]grant{}
	for _, c := range consents {
		for _, id := range c.MeteringPointIDs {
			mp, ok := mps[id]
			if !ok || mp.ConsumerID == "" || c.OwnerID != mp.ConsumerID || c.DataUserID == mp.ConsumerID ||
				!c.Covers(id, flexhub.ScopeMeterRealtime, now) || users[c.DataUserID] == nil {
				continue
			}
			dup := false
			for _, g := range byMP[id] {
				dup = dup || g.user.ID == c.DataUserID
			}
			if !dup {
				byMP[id] = append(byMP[id], grant{users[c.DataUserID], c.ID})
			}
		}
	}
	// What each ingestion holds of each metering point, for the log.
	what := map[streamKey][]string{}
	var keys []streamKey
	for _, ss := range series {
		if len(byMP[ss.mp]) == 0 {
			continue
		}
		k := streamKey{ss.batch, ss.mp}
		if _, ok := what[k]; !ok {
			keys = append(keys, k)
		}
		first, last := ss.values[0].Start, ss.values[0].Start
		for _, v := range ss.values {
			if v.Start.Before(first) {
				first = v.Start
			}
			if v.Start.After(last) {
				last = v.Start
			}
		}
		d := describeSeries(ss.key, first, last.Add(ss.key.Resolution))
		if ss.key.SubjectKind == flexhub.MeterSubjectResource {
			d = "resource " + ss.key.SubjectID + " " + d
		}
		what[k] = append(what[k], d)
	}
	out := map[streamKey][]streamRecipient{}
	var accesses []*flexhub.DataAccess
	for _, k := range keys {
		// legalBasis needs no more than the DSO for meter_realtime (the
		// supplier's and BRP's assignments do not count for it).
		owner := mps[k.mp]
		mp := &flexhub.MeteringPoint{ID: k.mp, DSOID: owner.DSOID, MeteringPointSpec: flexhub.MeteringPointSpec{ConsumerID: owner.ConsumerID}}
		sort.Strings(what[k])
		w := strings.Join(what[k], "; ")
		for _, g := range byMP[k.mp] {
			a := &flexhub.DataAccess{At: now, ReaderID: g.user.ID, OwnerID: mp.ConsumerID, MeteringPointID: mp.ID, Scope: flexhub.ScopeMeterRealtime,
				Channel: flexhub.ChannelMQTT, What: w, Outcome: flexhub.AccessAllowed}
			if a.Basis = legalBasis(g.user, mp, flexhub.ScopeMeterRealtime, now); a.Basis == "" {
				a.Basis, a.ConsentID = flexhub.BasisConsent, g.consent
			}
			accesses = append(accesses, a)
			out[k] = append(out[k], streamRecipient{party: g.user.ID, access: a})
		}
	}
	return out, accesses
}

// consumerDataMessage is the payload of one series' new readings.
func consumerDataMessage(ss *streamSeries) ConsumerDataMessage {
	unit := flexhub.BaseMeterUnit(ss.key.Quantity)
	m := ConsumerDataMessage{MeteringPointID: ss.mp, Series: ss.key.Ref(), Unit: unit, BatchID: ss.res.BatchID, ReceivedAt: ss.res.ReceivedAt,
		Readings: make([]ConsumerDataReading, len(ss.values))}
	for i, v := range ss.values {
		m.Readings[i] = ConsumerDataReading{Start: v.Start, Value: flexhub.FormatMeterValue(v.Value, unit)}
	}
	return m
}
