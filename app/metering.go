package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/flexhub/flexhub"
)

// Meter data (docs/METERING.md). Rules, each named in the refusal:
//
//   - Readings for a resource come only from the FSP operating it; for a
//     metering point only from its DSO (403 meter.not_operator, the same
//     answer for a subject that does not exist, so ids cannot be
//     probed). A resource still pending its consumer's confirmation, or
//     rejected, takes no data (422 meter.resource_not_active); a
//     deregistered one still takes late data for its active past.
//   - Each reading is checked on its own (flexhub.MeterReading.Parse:
//     meter.subject, meter.quantity, meter.flow, meter.resolution,
//     meter.start, meter.misaligned, meter.future, meter.unit,
//     meter.unit_mismatch, meter.value, meter.negative,
//     meter.value_range), and one request must not hold two different
//     values for the same reading (meter.duplicate).
//   - All or nothing: the first bad reading fails the request, naming it
//     (readings[17].unit), and nothing is stored.
//
// An ingestion is one transaction, whatever its size, and one audit
// entry (action meter.ingested, kind meter_batch) that names the sender
// and whose payload hash is that of the result returned: the counts per
// series and a SHA-256 of the readings themselves. The log proves what
// was sent without holding the energy data. An ingestion that changed nothing (a resend) writes
// nothing at all, audit entry included. Over MQTT the messages that arrive
// together are stored in one transaction, one ingestion per sender
// (storeMeterGroup in realtime.go).
//
// Reading back: whoever may see the resource or metering point
// (canSeeResource, canSeeMeteringPoint) reads its series; anyone else
// gets 404.

// KindMeterBatch is the object kind of an ingestion in the audit chain.
const KindMeterBatch = "meter_batch"

// meterRetries is how often an ingestion that lost a race with a
// concurrent one on the same readings (PostgreSQL) is tried again.
const meterRetries = 5

// IngestMeterReadings validates and stores a batch of readings sent by the
// caller, all or nothing.
func (s *Service) IngestMeterReadings(ctx context.Context, readings []flexhub.MeterReading) (*flexhub.MeterIngestResult, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	in, err := s.prepareMeter(by, readings)
	if err != nil {
		return nil, err
	}
	return s.storeMeter(ctx, in)
}

// meterIngestion is one ingestion checked on its own (every rule that
// needs no store): ready to be stored, alone or with others in one
// transaction.
type meterIngestion struct {
	by       *flexhub.Party
	now      time.Time
	values   []flexhub.MeterValue
	subjects []meterSubject // in order of first use
	sum      string         // meterDigest(values), computed once
}

type meterSubject struct {
	kind, id string
	first    int // the first reading naming it
}

// prepareMeter checks a batch of readings without the store: count,
// each reading, duplicates within the batch.
func (s *Service) prepareMeter(by *flexhub.Party, readings []flexhub.MeterReading) (*meterIngestion, error) {
	if len(readings) == 0 {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.empty", "readings", "send at least one reading")
	}
	if len(readings) > flexhub.MaxMeterBatch {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.batch_size", "readings", "%d readings in one request; send at most %d", len(readings), flexhub.MaxMeterBatch)
	}
	now := s.now()
	parser := flexhub.MeterParser{Now: now}
	in := &meterIngestion{by: by, now: now, values: make([]flexhub.MeterValue, len(readings))}
	values := in.values
	type subject struct{ kind, id string }
	firstUse := map[subject]bool{}
	type readingKey struct {
		series int // index of the series in the batch
		start  int64
	}
	seriesIdx := map[flexhub.MeterSeriesKey]int{}
	var lastKey flexhub.MeterSeriesKey
	lastIdx := -1
	seen := make(map[readingKey]int, len(readings))
	for i := range readings {
		v, err := parser.ParseIndex(i, &readings[i])
		if err != nil {
			return nil, err
		}
		values[i] = v
		if lastIdx < 0 || v.Series != lastKey {
			si, ok := seriesIdx[v.Series]
			if !ok {
				si = len(seriesIdx)
				seriesIdx[v.Series] = si
			}
			lastKey, lastIdx = v.Series, si
			sub := subject{v.Series.SubjectKind, v.Series.SubjectID}
			if !firstUse[sub] {
				firstUse[sub] = true
				in.subjects = append(in.subjects, meterSubject{sub.kind, sub.id, i})
			}
		}
		k := readingKey{lastIdx, v.Start.Unix()}
		if j, ok := seen[k]; ok {
			if values[j].Value != v.Value {
				return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.duplicate", "readings["+strconv.Itoa(i)+"].value",
					"readings[%d] and readings[%d] are the same reading (series and start) with different values; send one", j, i)
			}
		} else {
			seen[k] = i
		}
	}
	return in, nil
}

// storeMeter stores one prepared ingestion in its own transaction,
// trying again when it lost a race on the same readings (PostgreSQL).
func (s *Service) storeMeter(ctx context.Context, in *meterIngestion) (*flexhub.MeterIngestResult, error) {
	for attempt := 1; ; attempt++ {
		var res *flexhub.MeterIngestResult
		err := s.store.Update(ctx, func(tx flexhub.Tx) error {
			var err error
			res, err = s.putMeter(ctx, tx, in)
			return err
		})
		if err == nil {
			s.meterStored(in, res)
			return res, nil
		}
		if flexhub.ErrorKind(err) != flexhub.EConflict || attempt >= meterRetries {
			return nil, err
		}
	}
}

// putMeter stores a prepared ingestion inside tx: the sender checks
// first (a refusal there has written nothing), then the readings and the
// audit entry.
func (s *Service) putMeter(ctx context.Context, tx flexhub.Tx, in *meterIngestion) (*flexhub.MeterIngestResult, error) {
	if err := s.checkMeterSenders(ctx, tx, in); err != nil {
		return nil, err
	}
	return s.putMeterChecked(ctx, tx, in)
}

// checkMeterSenders checks that the sender may send data of every subject
// of the ingestion (meterSenderError), reading the subjects' senders in
// one statement per kind; it writes nothing. The first subject refused,
// in the order of the readings, names the refusal.
func (s *Service) checkMeterSenders(ctx context.Context, tx flexhub.Tx, in *meterIngestion) error {
	senders, err := readMeterSenders(ctx, tx, in.subjects)
	if err != nil {
		return err
	}
	return checkMeterSendersIn(in, senders)
}

// meterSenders is who sends the data of subjects, by kind and id, as
// the store read them (absent: the subject does not exist).
type meterSenders map[string]map[string]flexhub.MeterSender

// readMeterSenders reads the senders of subjects, one statement per kind.
func readMeterSenders(ctx context.Context, tx flexhub.Tx, subjects []meterSubject) (meterSenders, error) {
	ids := map[string][]string{}
	seen := map[meterSubject]bool{}
	for _, sub := range subjects {
		k := meterSubject{kind: sub.kind, id: sub.id}
		if !seen[k] {
			seen[k] = true
			ids[sub.kind] = append(ids[sub.kind], sub.id)
		}
	}
	out := make(meterSenders, len(ids))
	for kind, list := range ids {
		m, err := tx.MeterSenders(ctx, kind, list)
		if err != nil {
			return nil, err
		}
		out[kind] = m
	}
	return out, nil
}

// checkMeterSendersIn checks an ingestion's subjects against senders
// read before (readMeterSenders over at least its subjects).
func checkMeterSendersIn(in *meterIngestion, senders meterSenders) error {
	for _, sub := range in.subjects {
		snd, ok := senders[sub.kind][sub.id]
		if err := meterSenderError(in.by, sub.kind, sub.id, "readings["+strconv.Itoa(sub.first)+"]", snd, ok); err != nil {
			return err
		}
	}
	return nil
}

// putMeterChecked stores the readings and the audit entry of an ingestion
// whose senders are checked.
func (s *Service) putMeterChecked(ctx context.Context, tx flexhub.Tx, in *meterIngestion) (*flexhub.MeterIngestResult, error) {
	res, batchID, err := s.putMeterReadings(ctx, tx, in)
	if err != nil {
		return nil, err
	}
	return res, s.recordMeter(ctx, tx, in, res, batchID)
}

// putMeterReadings stores the readings of an ingestion whose senders are
// checked; recordMeter then writes its audit entry, named batchID.
func (s *Service) putMeterReadings(ctx context.Context, tx flexhub.Tx, in *meterIngestion) (*flexhub.MeterIngestResult, string, error) {
	res := &flexhub.MeterIngestResult{Sender: in.by.ID, ReceivedAt: in.now, Received: len(in.values)}
	batchID := flexhub.NewID()
	puts, err := tx.PutMeterReadings(ctx, in.values, in.now, in.by.ID, batchID)
	if err != nil {
		return nil, "", err
	}
	for _, p := range puts {
		res.MeterPutStats.Add(p.MeterPutStats)
		res.Series = append(res.Series, flexhub.MeterSeriesResult{MeterSeriesRef: p.Key.Ref(), MeterPutStats: p.MeterPutStats, First: p.First, Last: p.Last})
	}
	return res, batchID, nil
}

// recordMeter writes the audit entry of a stored ingestion, unless it
// changed nothing (a resend: nothing to record).
func (s *Service) recordMeter(ctx context.Context, tx flexhub.Tx, in *meterIngestion, res *flexhub.MeterIngestResult, batchID string) error {
	if res.Inserted+res.Corrected == 0 {
		return nil
	}
	if in.sum == "" {
		in.sum = meterDigest(in.values)
	}
	res.BatchID, res.ReadingsSHA256 = batchID, in.sum
	return s.record(ctx, tx, in.by, "meter.ingested", KindMeterBatch, batchID, 1, res)
}

// meterStored runs after the commit of an ingestion: running orders of
// its resources get a delivery check, and the new readings go to the
// real-time stream of consumer data (consumerdata.go).
func (s *Service) meterStored(in *meterIngestion, res *flexhub.MeterIngestResult) {
	if res.Inserted+res.Corrected == 0 {
		return
	}
	s.streamStored(in, res)
	for _, sub := range in.subjects {
		if sub.kind == flexhub.MeterSubjectResource {
			s.meterArrived(sub.id)
		}
	}
}

// meterDigest hashes the parsed readings in the order sent (see
// MeterIngestResult.ReadingsSHA256).
func meterDigest(values []flexhub.MeterValue) string {
	h := sha256.New()
	buf := make([]byte, 0, 160)
	for _, v := range values {
		buf = buf[:0]
		buf = append(buf, v.Series.SubjectKind...)
		buf = append(buf, ',')
		buf = append(buf, v.Series.SubjectID...)
		buf = append(buf, ',')
		buf = append(buf, v.Series.Quantity...)
		buf = append(buf, ',')
		buf = append(buf, v.Series.Flow...)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(v.Series.Resolution/time.Second), 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, v.Start.Unix(), 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, v.Value, 10)
		buf = append(buf, '\n')
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// meterSenderError: only the FSP operating a resource and the DSO of a
// metering point send their meter data. snd is the subject's sender as
// the store has it, ok false when the subject does not exist.
func meterSenderError(by *flexhub.Party, kind, id, field string, snd flexhub.MeterSender, ok bool) error {
	switch kind {
	case flexhub.MeterSubjectResource:
		if !ok || snd.Party != by.ID {
			return flexhub.RuleErrorf(flexhub.EForbidden, "meter.not_operator", field+".resource_id",
				"you do not operate resource %s (or it does not exist): only the FSP operating a resource sends its meter data", id)
		}
		if snd.Status == flexhub.ResourcePendingConfirmation || snd.Status == flexhub.ResourceRejected {
			return flexhub.RuleErrorf(flexhub.EInvalid, "meter.resource_not_active", field+".resource_id",
				"resource %s is %s: it takes meter data once its consumer has confirmed it", id, snd.Status)
		}
	default:
		if !ok || snd.Party != by.ID {
			return flexhub.RuleErrorf(flexhub.EForbidden, "meter.not_operator", field+".metering_point_id",
				"you are not the DSO of metering point %s (or it does not exist): only its DSO sends its meter data", id)
		}
	}
	return nil
}

// meterAccess finds the subject of a series and decides whether the
// caller may read its data (scope) now: a subject the caller may not even
// know of does not exist for it (404); consumer data — a metering point's,
// or a resource's behind a consumer's metering point — goes through
// dataAccess (consent or a legal basis), with the access to log (nil for
// the owner's own reads and for data that is no consumer's).
func (s *Service) meterAccess(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, key flexhub.MeterSeriesKey, scope, what string) (*flexhub.DataAccess, error) {
	if g := oauthGrantOf(ctx); g != nil { // an OAuth access token: its consent only (app/oauth.go)
		return s.grantMeterAccess(ctx, tx, g, by, key, scope, what)
	}
	channel := channelOf(ctx)
	if key.SubjectKind == flexhub.MeterSubjectResource {
		r, err := tx.Resource(ctx, key.SubjectID)
		if err != nil {
			if flexhub.ErrorKind(err) == flexhub.ENotFound {
				return nil, notFound("resource", key.SubjectID)
			}
			return nil, err
		}
		if r.MeteringPointID == "" { // no consumer's data: the register's visibility
			if s.canSeeResource(ctx, tx, by, r) {
				return nil, nil
			}
			return nil, notFound("resource", key.SubjectID)
		}
		mp, err := tx.MeteringPoint(ctx, r.MeteringPointID)
		if err != nil {
			return nil, err
		}
		if by.ID == mp.ConsumerID || by.ID == r.OwnerID {
			return nil, nil
		}
		a := &flexhub.DataAccess{At: s.now(), ReaderID: by.ID, OwnerID: mp.ConsumerID, MeteringPointID: mp.ID, Scope: scope, Channel: channel,
			What: "resource " + r.ID + " " + what, Outcome: flexhub.AccessAllowed}
		switch {
		case by.ID == r.FSPID:
			a.Basis = flexhub.BasisFSPOperator
		case by.ID == r.DSOID || by.ID == mp.DSOID:
			a.Basis = flexhub.BasisDSO
		case privileged(by):
			a.Basis = flexhub.BasisRegister
		case by.IsSystemOperator() && s.canSeeResource(ctx, tx, by, r):
			a.Basis = flexhub.BasisSystemOperator
		default:
			return s.dataAccess(ctx, tx, by, mp, scope, channel, "resource "+r.ID+" "+what)
		}
		return a, nil
	}
	mp, err := tx.MeteringPoint(ctx, key.SubjectID)
	if err != nil {
		if flexhub.ErrorKind(err) == flexhub.ENotFound {
			return nil, notFound("metering point", key.SubjectID)
		}
		return nil, err
	}
	return s.dataAccess(ctx, tx, by, mp, scope, channel, what)
}

// outputUnit checks the unit asked for; "" is the base unit.
func outputUnit(quantity, unit string) (string, error) {
	if unit == "" {
		return flexhub.BaseMeterUnit(quantity), nil
	}
	if err := flexhub.CheckMeterUnit("query.unit", quantity, unit); err != nil {
		return "", err
	}
	return unit, nil
}

// meterRead checks what every read of a series starts with: the caller,
// the series named in the query and the unit to answer in.
func meterRead(ctx context.Context, ref flexhub.MeterSeriesRef, wantUnit string) (*flexhub.Party, flexhub.MeterSeriesKey, string, error) {
	var key flexhub.MeterSeriesKey
	by, err := actor(ctx)
	if err != nil {
		return nil, key, "", err
	}
	if key, err = ref.Key("query."); err != nil {
		return nil, key, "", err
	}
	unit, err := outputUnit(key.Quantity, wantUnit)
	return by, key, unit, err
}

// MeterReadings returns a series' readings with from <= start < to and
// the gaps: intervals of the range that have ended without a reading.
func (s *Service) MeterReadings(ctx context.Context, q flexhub.MeterQuery) (*flexhub.MeterSeriesData, error) {
	by, key, unit, err := meterRead(ctx, q.MeterSeriesRef, q.Unit)
	if err != nil {
		return nil, err
	}
	if q.From.IsZero() || q.To.IsZero() {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.range", "query.from", "give the range: from and to (RFC 3339)")
	}
	from, to := q.From.UTC(), q.To.UTC()
	if !to.After(from) {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.range", "query.to", "to %s must be after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if n := to.Sub(from) / key.Resolution; n > flexhub.MaxMeterQueryIntervals {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.range", "query.to", "the range holds %d intervals of %s; ask for at most %d at a time", n, q.Resolution, flexhub.MaxMeterQueryIntervals)
	}
	out := &flexhub.MeterSeriesData{Series: key.Ref(), Unit: unit, From: from, To: to, Readings: []flexhub.MeterReadingOut{}}
	var recs []flexhub.MeterRecord
	var acc *flexhub.DataAccess
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		if acc, err = s.meterAccess(ctx, tx, by, key, flexhub.ScopeMeterHistory, describeSeries(key, from, to)); err != nil {
			return err
		}
		recs, err = tx.MeterReadings(ctx, key, from, to)
		return err
	})
	if err := s.afterRead(ctx, acc, err); err != nil {
		return nil, err
	}
	starts := make([]time.Time, len(recs))
	for i, r := range recs {
		starts[i] = r.Start
		out.Readings = append(out.Readings, flexhub.MeterReadingOut{Start: r.Start, Value: flexhub.FormatMeterValue(r.Value, unit), Version: r.Version, ReceivedAt: r.ReceivedAt, BatchID: r.BatchID})
	}
	out.Gaps, out.Missing = flexhub.MeterGaps(starts, from, to, key.Resolution, s.now())
	if out.Gaps == nil {
		out.Gaps = []flexhub.MeterGap{}
	}
	return out, nil
}

// MeterReadingVersions returns every version of one reading, oldest
// first: corrections never destroy what was sent before.
func (s *Service) MeterReadingVersions(ctx context.Context, q flexhub.MeterVersionQuery) (*flexhub.MeterVersions, error) {
	by, key, unit, err := meterRead(ctx, q.MeterSeriesRef, q.Unit)
	if err != nil {
		return nil, err
	}
	if q.Start.IsZero() {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.start", "query.start", "give the start of the reading (RFC 3339)")
	}
	start := q.Start.UTC()
	out := &flexhub.MeterVersions{Series: key.Ref(), Unit: unit, Start: start, Versions: []flexhub.MeterReadingOut{}}
	var recs []flexhub.MeterRecord
	var acc *flexhub.DataAccess
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		if acc, err = s.meterAccess(ctx, tx, by, key, flexhub.ScopeMeterHistory, describeSeries(key, start, start.Add(key.Resolution))+" (versions)"); err != nil {
			return err
		}
		recs, err = tx.MeterReadingVersions(ctx, key, start)
		return err
	})
	if err := s.afterRead(ctx, acc, err); err != nil {
		return nil, err
	}
	for _, r := range recs {
		out.Versions = append(out.Versions, flexhub.MeterReadingOut{Start: r.Start, Value: flexhub.FormatMeterValue(r.Value, unit), Version: r.Version,
			ReceivedAt: r.ReceivedAt, BatchID: r.BatchID, Sender: r.Sender, SupersededAt: r.SupersededAt})
	}
	return out, nil
}

// ListMeterSeries lists the series of a resource or metering point the
// caller may see.
func (s *Service) ListMeterSeries(ctx context.Context, meteringPointID, resourceID string) ([]flexhub.MeterSeriesRef, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	kind, id, err := flexhub.ParseMeterSubject("query.", meteringPointID, resourceID)
	if err != nil {
		return nil, err
	}
	out := []flexhub.MeterSeriesRef{}
	var acc *flexhub.DataAccess
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		if acc, err = s.meterAccess(ctx, tx, by, flexhub.MeterSeriesKey{SubjectKind: kind, SubjectID: id}, flexhub.ScopeMeterHistory, "the list of meter series"); err != nil {
			return err
		}
		ss, err := tx.ListMeterSeries(ctx, kind, id)
		for _, x := range ss {
			out = append(out, x.MeterSeriesKey.Ref())
		}
		return err
	})
	if err := s.afterRead(ctx, acc, err); err != nil {
		return nil, err
	}
	return out, nil
}

// describeSeries says what a read of a series covered, for the access
// log.
func describeSeries(k flexhub.MeterSeriesKey, from, to time.Time) string {
	return fmt.Sprintf("%s %s %s from %s to %s", k.Quantity, k.Flow, k.Ref().Resolution, from.Format(time.RFC3339), to.Format(time.RFC3339))
}

// afterRead logs the access of a read of consumer data, allowed or
// refused (err: what the read returned): data that cannot be logged is
// not handed out.
func (s *Service) afterRead(ctx context.Context, acc *flexhub.DataAccess, err error) error {
	if acc == nil {
		return err
	}
	if lerr := s.logAccess(ctx, acc); lerr != nil && err == nil {
		return fmt.Errorf("log the access: %w", lerr)
	}
	return err
}
