package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/greenbutton"
)

// Download My Data and bulk export of meter data (docs/MYDATA.md): the
// active-energy series of up to MaxExportPoints metering points over a
// range, as CSV or as a Green Button (ESPI) feed, streamed. Every
// metering point is checked through dataAccess (scope meter_history,
// channel export or green_button) before the first byte is written; one
// refusal refuses the whole request. Allowed reads by someone other than
// the owner are logged (one entry a metering point) before the data
// leaves.

// MaxExportPoints is the most metering points one export names.
const MaxExportPoints = 1000

// MaxExportRange is the longest range one export covers.
const MaxExportRange = 5 * 366 * 24 * time.Hour

// Export formats.
const (
	ExportCSV         = "csv"
	ExportGreenButton = "greenbutton"
)

// ExportCSVColumns is the header row of a CSV export.
var ExportCSVColumns = []string{"metering_point_id", "metering_point_code", "quantity", "flow", "resolution", "start", "end", "value", "unit"}

// ExportQuery asks for an export.
type ExportQuery struct {
	MeteringPointIDs []string // empty for /v1/me/data: all the caller's own
	From, To         time.Time
	Format           string
}

// MeterExport is an export whose access is decided and logged: Write
// streams it.
type MeterExport struct {
	s      *Service
	Format string
	From   time.Time
	To     time.Time
	By     string
	points []*flexhub.MeteringPoint
	series [][]flexhub.MeterSeries // per point, the exported series
}

// ContentType is the media type of the export.
func (e *MeterExport) ContentType() string {
	if e.Format == ExportGreenButton {
		return "application/atom+xml"
	}
	return "text/csv; charset=utf-8"
}

// Series is how many series the export holds.
func (e *MeterExport) Series() int {
	n := 0
	for _, ss := range e.series {
		n += len(ss)
	}
	return n
}

// ExportMeterData decides an export: the caller, the metering points
// (its own by default), the range and the format; every metering point's
// access checked now and logged. It reads no meter data yet.
func (s *Service) ExportMeterData(ctx context.Context, q ExportQuery) (*MeterExport, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	switch q.Format {
	case ExportCSV, ExportGreenButton:
	default:
		return nil, flexhub.FieldErrorf("query.format", "%q is not a format: csv or greenbutton", q.Format)
	}
	if q.From.IsZero() || q.To.IsZero() {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.range", "query.from", "give the range: from and to (RFC 3339)")
	}
	from, to := q.From.UTC(), q.To.UTC()
	if !to.After(from) {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.range", "query.to", "to %s must be after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if to.Sub(from) > MaxExportRange {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.range", "query.to", "an export covers at most 5 years; ask in parts")
	}
	if from.Truncate(time.Second) != from || to.Truncate(time.Second) != to {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.range", "query.from", "from and to are whole seconds")
	}
	if len(q.MeteringPointIDs) > MaxExportPoints {
		return nil, flexhub.FieldErrorf("query.metering_point_id", "%d metering points; name at most %d", len(q.MeteringPointIDs), MaxExportPoints)
	}
	seen := map[string]bool{}
	for i, id := range q.MeteringPointIDs {
		if !flexhub.ValidID(id) {
			return nil, flexhub.FieldErrorf(fieldAt("query.metering_point_id", i), "%q is not a metering point id", id)
		}
		if seen[id] {
			return nil, flexhub.FieldErrorf(fieldAt("query.metering_point_id", i), "metering point %s is named twice", id)
		}
		seen[id] = true
	}
	channel := flexhub.ChannelExport
	if q.Format == ExportGreenButton {
		channel = flexhub.ChannelGreenButton
	}
	what := fmt.Sprintf("active_energy series from %s to %s as %s", from.Format(time.RFC3339), to.Format(time.RFC3339), q.Format)
	e := &MeterExport{s: s, Format: q.Format, From: from, To: to, By: by.ID}
	var allowed, refused []*flexhub.DataAccess
	var refusal error
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		ids := q.MeteringPointIDs
		if len(ids) == 0 {
			if !by.HasRole(flexhub.RoleConsumer) {
				return flexhub.FieldErrorf("query.metering_point_id", "name the metering points to export (you own none: only consumers do)")
			}
			mps, err := ownMeteringPoints(ctx, tx, by.ID)
			if err != nil {
				return err
			}
			e.points = mps
		} else {
			for i, id := range ids {
				mp, err := tx.MeteringPoint(ctx, id)
				if err != nil {
					if flexhub.ErrorKind(err) == flexhub.ENotFound {
						return flexhub.Errorf(flexhub.ENotFound, "%s: metering point %s not found; nothing was exported", fieldAt("metering_point_id", i), id)
					}
					return err
				}
				e.points = append(e.points, mp)
			}
		}
		memo := &consentMemo{Tx: tx, of: map[[2]string][]*flexhub.Consent{}}
		for i, mp := range e.points {
			a, err := s.dataAccess(ctx, memo, by, mp, flexhub.ScopeMeterHistory, channel, what)
			if err != nil {
				if a == nil {
					return err
				}
				refused = append(refused, a)
				if refusal == nil {
					refusal = flexhub.RuleErrorf(flexhub.EForbidden, flexhub.ErrorRule(err), fieldAt("query.metering_point_id", i),
						"metering point %s: %s; the whole export is refused, nothing was sent", mp.ID, errorMessage(err))
				}
				continue
			}
			if a != nil {
				allowed = append(allowed, a)
			}
		}
		if refusal != nil {
			return nil
		}
		return e.listSeries(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		// Refused reads are logged; the allowed ones of the same request
		// read nothing and are not.
		if lerr := s.logAccess(ctx, refused...); lerr != nil {
			return nil, fmt.Errorf("log the refused access: %w", lerr)
		}
		return nil, refusal
	}
	if err := s.logAccess(ctx, allowed...); err != nil {
		return nil, fmt.Errorf("log the access: %w", err)
	}
	return e, nil
}

// listSeries finds the exported series of the export's metering points:
// every active_energy series, import and export, at every resolution.
func (e *MeterExport) listSeries(ctx context.Context, tx flexhub.Tx) error {
	ids := make([]string, len(e.points))
	for i, mp := range e.points {
		ids[i] = mp.ID
	}
	ss, err := tx.ListMeterSeriesOf(ctx, flexhub.MeterSubjectMeteringPoint, ids)
	if err != nil {
		return err
	}
	e.series = make([][]flexhub.MeterSeries, len(e.points))
	for i, mp := range e.points {
		for _, x := range ss[mp.ID] {
			if x.Quantity == flexhub.QuantityActiveEnergy {
				e.series[i] = append(e.series[i], x)
			}
		}
	}
	return nil
}

// consentMemo reads the consents a data user holds from an owner once
// per export, inside the export's transaction: a consent naming 1,000
// metering points is then decoded once, not once per metering point.
type consentMemo struct {
	flexhub.Tx
	of map[[2]string][]*flexhub.Consent
}

func (m *consentMemo) ConsentsOf(ctx context.Context, ownerID, dataUserID string) ([]*flexhub.Consent, error) {
	k := [2]string{ownerID, dataUserID}
	if cs, ok := m.of[k]; ok {
		return cs, nil
	}
	cs, err := m.Tx.ConsentsOf(ctx, ownerID, dataUserID)
	if err == nil {
		m.of[k] = cs
	}
	return cs, err
}

func fieldAt(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// errorMessage is a domain error's message without its kind and field.
func errorMessage(err error) string {
	if e, ok := err.(*flexhub.Error); ok {
		return e.Message
	}
	return err.Error()
}

// ownMeteringPoints lists every metering point a consumer owns.
func ownMeteringPoints(ctx context.Context, tx flexhub.Tx, consumer string) ([]*flexhub.MeteringPoint, error) {
	var out []*flexhub.MeteringPoint
	pg := flexhub.Page{Limit: flexhub.MaxPageLimit}
	for {
		mps, next, err := tx.ListMeteringPoints(ctx, flexhub.Filter{"consumer_id": consumer}, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, mps...)
		if next == "" || len(mps) == 0 {
			return out, nil
		}
		pg.After = next
	}
}

// exportChunkPoints bounds the readings one store read of an export
// holds (16 bytes each): many series are read in one statement
// (Tx.MeterPoints) while their windows add up to at most this many
// intervals; a series longer than flexhub.MaxMeterQueryIntervals is read
// in windows of that many.
const exportChunkPoints = 400_000

// exportChunk is the readings of one window of series si.
type exportChunk struct {
	si  int // index into the export's flat series list
	pts []flexhub.MeterPoint
}

// chunks reads the export's series in order, in bounded windows, each
// read in a short transaction of its own.
func (e *MeterExport) chunks(ctx context.Context, flat []flexhub.MeterSeriesKey) iter.Seq2[exportChunk, error] {
	return func(yield func(exportChunk, error) bool) {
		type win struct {
			si int
			w  flexhub.MeterWindow
		}
		var batch []win
		budget := 0
		flush := func() bool {
			if len(batch) == 0 {
				return true
			}
			ws := make([]flexhub.MeterWindow, len(batch))
			for i, b := range batch {
				ws[i] = b.w
			}
			var got [][]flexhub.MeterPoint
			err := e.s.store.View(ctx, func(tx flexhub.Tx) error {
				var err error
				got, err = tx.MeterPoints(ctx, ws)
				return err
			})
			if err != nil {
				yield(exportChunk{}, err)
				return false
			}
			for i, b := range batch {
				if !yield(exportChunk{si: b.si, pts: got[i]}, nil) {
					return false
				}
			}
			batch, budget = batch[:0], 0
			return true
		}
		for si, key := range flat {
			step := time.Duration(flexhub.MaxMeterQueryIntervals) * key.Resolution
			for f := e.From; f.Before(e.To); f = f.Add(step) {
				t := f.Add(step)
				if t.After(e.To) {
					t = e.To
				}
				n := int(t.Sub(f) / key.Resolution)
				if budget+n > exportChunkPoints && !flush() {
					return
				}
				batch = append(batch, win{si, flexhub.MeterWindow{Key: key, From: f, To: t}})
				budget += n
			}
		}
		flush()
	}
}

func (e *MeterExport) flat() []flexhub.MeterSeriesKey {
	var out []flexhub.MeterSeriesKey
	for _, ss := range e.series {
		for _, x := range ss {
			out = append(out, x.MeterSeriesKey)
		}
	}
	return out
}

// Write streams the export to w. An error after the first byte leaves a
// partial document: the caller must abort the response.
func (e *MeterExport) Write(ctx context.Context, w io.Writer) error {
	if e.Format == ExportGreenButton {
		return e.writeGreenButton(ctx, w)
	}
	return e.writeCSV(ctx, w)
}

func (e *MeterExport) writeCSV(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(strings.Join(ExportCSVColumns, ",") + "\r\n")
	flat := e.flat()
	owner := make([]int, 0, len(flat)) // point index of each flat series
	for pi, ss := range e.series {
		for range ss {
			owner = append(owner, pi)
		}
	}
	var line []byte
	for c, err := range e.chunks(ctx, flat) {
		if err != nil {
			return err
		}
		key, mp := flat[c.si], e.points[owner[c.si]]
		res := string(flexhub.FormatDuration(key.Resolution))
		prefix := csvField(mp.ID) + "," + csvField(mp.Code) + "," + key.Quantity + "," + key.Flow + "," + res + ","
		step := int64(key.Resolution / time.Second)
		for _, p := range c.pts {
			line = append(line[:0], prefix...)
			line = time.Unix(p.Start, 0).UTC().AppendFormat(line, time.RFC3339)
			line = append(line, ',')
			line = time.Unix(p.Start+step, 0).UTC().AppendFormat(line, time.RFC3339)
			line = append(line, ',')
			line = appendKWh(line, p.Value)
			line = append(line, ",kWh\r\n"...)
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// appendKWh writes mWh as kWh, exactly: at least 3 decimals (Wh), up
// to 6 when the value has mWh (1 mWh = 0.000001 kWh).
func appendKWh(b []byte, mwh int64) []byte {
	if mwh < 0 {
		b = append(b, '-')
		mwh = -mwh
	}
	b = strconv.AppendInt(b, mwh/1_000_000, 10)
	frac := mwh % 1_000_000
	digits := 6
	for digits > 3 && frac%10 == 0 {
		frac /= 10
		digits--
	}
	b = append(b, '.')
	s := strconv.FormatInt(frac, 10)
	for i := len(s); i < digits; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// csvField quotes a field when RFC 4180 needs it.
func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\r\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func (e *MeterExport) writeGreenButton(ctx context.Context, w io.Writer) error {
	flat := e.flat()
	next, stop := iter.Pull2(e.chunks(ctx, flat))
	defer stop()
	var pending *exportChunk
	var pendErr error
	peek := func() (*exportChunk, error) {
		if pending == nil && pendErr == nil {
			c, err, ok := next()
			if !ok {
				return nil, nil
			}
			if err != nil {
				pendErr = err
			} else {
				pending = &c
			}
		}
		return pending, pendErr
	}
	feed := greenbutton.Feed{SubscriptionID: "download-" + e.By + "-" + e.From.Format("20060102T150405Z") + "-" + e.To.Format("20060102T150405Z"),
		Title:   "flexhub meter data of " + strconv.Itoa(len(e.points)) + " metering point(s), " + e.From.Format(time.RFC3339) + " to " + e.To.Format(time.RFC3339),
		Updated: e.s.now()}
	si := 0
	for pi, mp := range e.points {
		up := greenbutton.UsagePoint{ID: mp.ID, Title: mp.Code}
		for _, x := range e.series[pi] {
			mine := si
			si++
			up.Series = append(up.Series, greenbutton.Series{Quantity: x.Quantity, Flow: x.Flow, Resolution: x.Resolution,
				Readings: func(yield func(greenbutton.Reading, error) bool) {
					for {
						c, err := peek()
						if err != nil {
							yield(greenbutton.Reading{}, err)
							return
						}
						if c == nil || c.si != mine {
							return
						}
						pending = nil
						for _, p := range c.pts {
							if !yield(greenbutton.Reading{Start: time.Unix(p.Start, 0).UTC(), Value: p.Value}, nil) {
								return
							}
						}
					}
				}})
		}
		feed.UsagePoints = append(feed.UsagePoints, up)
	}
	return greenbutton.Export(w, feed)
}

// GreenButtonImport is what an import of a Green Button feed did.
type GreenButtonImport struct {
	MeteringPointID string `json:"metering_point_id"`
	UsagePoints     int    `json:"usage_points" doc:"usage points in the feed whose readings were imported"`
	// Skipped says what the feed held that is not meter data flexhub
	// keeps (ESPI entries such as LocalTimeParameters or summaries).
	Skipped []string `json:"skipped" nullable:"false" doc:"kinds of entries not imported (usage summaries, local time parameters, ...)"`
	flexhub.MeterIngestResult
}

// ImportGreenButton stores the interval readings of a Green Button feed
// in a metering point's active-energy series, through the normal
// ingestion path (the metering point's DSO only; versions, corrections
// and audit entries as for REST readings), all or nothing, in one
// transaction: quantity active_energy (uom Wh), flow from the
// ReadingType's flowDirection, resolution from each reading's duration.
func (s *Service) ImportGreenButton(ctx context.Context, meteringPointID string, r io.Reader) (*GreenButtonImport, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if !flexhub.ValidID(meteringPointID) {
		return nil, flexhub.FieldErrorf("query.metering_point_id", "%q is not a metering point id", meteringPointID)
	}
	im, err := greenbutton.Import(r)
	if err != nil {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "greenbutton.invalid", "body", "%s", err.Error())
	}
	out := &GreenButtonImport{MeteringPointID: meteringPointID, Skipped: []string{}}
	for _, sk := range im.Skipped {
		out.Skipped = append(out.Skipped, sk.Kind)
	}
	var readings []flexhub.MeterReading
	for ui, up := range im.UsagePoints {
		used := false
		for mi, mr := range up.MeterReadings {
			rt := mr.ReadingType
			where := fmt.Sprintf("usage point %d (%s), meter reading %d (%s)", ui, up.Href, mi, mr.Href)
			if len(mr.Readings) == 0 {
				continue
			}
			if rt.Quantity != flexhub.QuantityActiveEnergy {
				return nil, flexhub.RuleErrorf(flexhub.EInvalid, "greenbutton.quantity", "body",
					"%s: reading type uom %d is not active energy (Wh): flexhub imports active energy only", where, rt.UOM)
			}
			if rt.Flow == "" {
				return nil, flexhub.RuleErrorf(flexhub.EInvalid, "greenbutton.flow", "body",
					"%s: flowDirection %d is neither forward (1, import) nor reverse (19, export)", where, rt.FlowDirection)
			}
			used = true
			for _, x := range mr.Readings {
				readings = append(readings, flexhub.MeterReading{MeteringPointID: meteringPointID, Quantity: flexhub.QuantityActiveEnergy, Flow: rt.Flow,
					Start: x.Start.UTC().Format(time.RFC3339), Resolution: flexhub.FormatDuration(x.Duration),
					Value: flexhub.FormatMeterValue(x.Value, "Wh"), Unit: "Wh"})
			}
		}
		if used {
			out.UsagePoints++
		}
	}
	if len(readings) == 0 {
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.empty", "body", "the feed holds no interval readings")
	}
	// Parsed in batches of at most MaxMeterBatch (each an ingestion with
	// its audit entry), stored in one transaction: all or nothing.
	var ins []*meterIngestion
	for i := 0; i < len(readings); i += flexhub.MaxMeterBatch {
		part := readings[i:min(i+flexhub.MaxMeterBatch, len(readings))]
		in, err := s.prepareMeter(by, part)
		if err != nil {
			if e, ok := err.(*flexhub.Error); ok && i > 0 {
				e.Message += fmt.Sprintf(" (readings are numbered from %d in this part of the feed)", i)
			}
			return nil, err
		}
		ins = append(ins, in)
	}
	res := &out.MeterIngestResult
	for attempt := 1; ; attempt++ {
		var results []*flexhub.MeterIngestResult
		err = s.store.Update(ctx, func(tx flexhub.Tx) error {
			results = results[:0]
			for _, in := range ins {
				r, err := s.putMeter(ctx, tx, in)
				if err != nil {
					return err
				}
				results = append(results, r)
			}
			return nil
		})
		if err == nil {
			*res = flexhub.MeterIngestResult{Sender: by.ID, ReceivedAt: ins[0].now}
			for _, r := range results {
				res.Received += r.Received
				res.MeterPutStats.Add(r.MeterPutStats)
				res.Series = append(res.Series, r.Series...)
				if res.BatchID == "" {
					res.BatchID, res.ReadingsSHA256 = r.BatchID, r.ReadingsSHA256
				}
			}
			return out, nil
		}
		if flexhub.ErrorKind(err) != flexhub.EConflict || attempt >= meterRetries {
			return nil, err
		}
	}
}
