package greenbutton

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strconv"
	"time"
)

// Feed is what Export writes: the usage points of one subscription (in
// flexhub: one consumer's download, or one data user's consented scope).
type Feed struct {
	// SubscriptionID names the feed (its atom id and self link) and is
	// the Subscription segment of every link. Required.
	SubscriptionID string
	// Title is the feed's title.
	Title string
	// Updated is the feed's and every entry's updated and published time,
	// written in UTC to the second; zero means the time of the export.
	Updated time.Time
	// BaseURL, if set (e.g. "https://flexhub.example.org"), is put before
	// every link's path; otherwise links are absolute paths starting
	// with ResourceBase.
	BaseURL string
	// UsagePoints are written in this order, each with its meter
	// readings after it.
	UsagePoints []UsagePoint
}

// UsagePoint is one flexhub metering point.
type UsagePoint struct {
	ID     string // the metering point id; required, unique in the feed
	Title  string // e.g. the metering point's name or address
	Series []Series
}

// Series is one meter series of a metering point: active energy in one
// flow direction at one resolution. It becomes one MeterReading with its
// ReadingType and one IntervalBlock per UTC day.
type Series struct {
	// Quantity must be QuantityActiveEnergy (or empty, meaning it).
	Quantity string
	// Flow is FlowImport (ESPI forward, delivered to the customer) or
	// FlowExport (ESPI reverse, received from the customer).
	Flow string
	// Resolution is the interval length: whole seconds from 1 s to a day
	// that divide a day (flexhub's series are 1 s to 15 min).
	Resolution time.Duration
	// Title is the MeterReading's title; empty gives e.g.
	// "Active energy import, 900 s".
	Title string
	// Readings yields the readings in ascending start order; a non-nil
	// error stops the export with that error. nil means no readings.
	Readings iter.Seq2[Reading, error]
}

// Reading is one interval of a series.
type Reading struct {
	Start time.Time // interval start; a multiple of the resolution since the Unix epoch
	Value int64     // energy in the interval, mWh (milli-watt-hours), 0 to MaxInt48
}

// Readings adapts a slice to Series.Readings.
func Readings(rs []Reading) iter.Seq2[Reading, error] {
	return func(yield func(Reading, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// MeterReadingID is the path id of a series' MeterReading below its
// usage point: the flow and the resolution in seconds, e.g. "import-900".
func MeterReadingID(flow string, resolution time.Duration) string {
	return flow + "-" + strconv.FormatInt(int64(resolution/time.Second), 10)
}

const day = 24 * 60 * 60 // seconds

// Export writes f as an ESPI Atom feed to w, entry by entry: the feed
// holds in memory one day of one series at a time, however many usage
// points and days it has. For every usage point it writes the UsagePoint
// entry, then for each series its MeterReading, its ReadingType and one
// IntervalBlock per UTC day with readings. Values are written with
// powerOfTenMultiplier -3 and uom Wh, so that the ESPI value is exactly
// the mWh flexhub stores.
//
// Bad input (a missing id, an unknown flow, readings out of order, a
// negative value, ...) is refused with an error naming the usage point,
// the series and the reading. Export checks each series as it writes
// it, so on an error w has received part of a document, which the caller
// must discard (over HTTP: abort the response).
func Export(w io.Writer, f Feed) error {
	if f.SubscriptionID == "" {
		return errors.New("greenbutton: export: the feed has no subscription id")
	}
	seen := map[string]bool{}
	for i, up := range f.UsagePoints {
		if up.ID == "" {
			return fmt.Errorf("greenbutton: export: usage point %d has no id", i)
		}
		if seen[up.ID] {
			return fmt.Errorf("greenbutton: export: usage point %q appears twice", up.ID)
		}
		seen[up.ID] = true
		mrs := map[string]bool{}
		for j, s := range up.Series {
			if err := checkSeries(s); err != nil {
				return fmt.Errorf("greenbutton: export: usage point %q, series %d: %w", up.ID, j, err)
			}
			id := MeterReadingID(s.Flow, s.Resolution)
			if mrs[id] {
				return fmt.Errorf("greenbutton: export: usage point %q has two %s series at %s", up.ID, s.Flow, s.Resolution)
			}
			mrs[id] = true
		}
	}
	updated := f.Updated
	if updated.IsZero() {
		updated = time.Now()
	}
	e := &encoder{
		w:       bufio.NewWriterSize(w, 64<<10),
		base:    f.BaseURL,
		updated: updated.UTC().Truncate(time.Second).Format(time.RFC3339),
	}
	sub := "/Subscription/" + url.PathEscape(f.SubscriptionID)
	e.raw(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<feed xmlns="` + NSAtom + `">` + "\n")
	e.raw("<id>" + EntryID("Subscription/"+f.SubscriptionID) + "</id>\n<title>")
	e.text(f.Title)
	e.raw("</title>\n<updated>" + e.updated + "</updated>\n")
	e.link("self", ResourceBase+"/Batch"+sub, "espi-feed/Subscription")
	for _, up := range f.UsagePoints {
		if err := e.usagePoint(sub, up); err != nil {
			return err
		}
	}
	e.raw("</feed>\n")
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}

func checkSeries(s Series) error {
	if s.Quantity != "" && s.Quantity != QuantityActiveEnergy {
		return fmt.Errorf("quantity %q cannot be exported; Green Button export carries %s", s.Quantity, QuantityActiveEnergy)
	}
	if s.Flow != FlowImport && s.Flow != FlowExport {
		return fmt.Errorf("flow %q is neither %q nor %q", s.Flow, FlowImport, FlowExport)
	}
	if s.Resolution < time.Second || s.Resolution%time.Second != 0 || int64(day)%int64(s.Resolution/time.Second) != 0 {
		return fmt.Errorf("resolution %s must be whole seconds from 1s to 24h that divide a day", s.Resolution)
	}
	return nil
}

// encoder writes the document; the first write error sticks.
type encoder struct {
	w       *bufio.Writer
	base    string
	updated string
	buf     []byte
	day     []Reading // one day of the current series
	err     error
}

func (e *encoder) raw(s string) {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) text(s string) {
	if e.err == nil {
		e.err = xml.EscapeText(e.w, []byte(s))
	}
}

func (e *encoder) link(rel, path, typ string) {
	e.raw(`<link rel="` + rel + `" href="`)
	e.text(e.base + path)
	e.raw(`" type="` + typ + `"/>` + "\n")
}

// entryStart writes an entry's id, links (rel, path, type triples) and
// title and opens its content.
func (e *encoder) entryStart(idPath, title string, links ...string) {
	e.raw("<entry>\n<id>" + EntryID(idPath) + "</id>\n")
	for i := 0; i+2 < len(links); i += 3 {
		e.link(links[i], links[i+1], links[i+2])
	}
	e.raw("<title>")
	e.text(title)
	e.raw("</title>\n<content>\n")
}

func (e *encoder) entryEnd() {
	e.raw("</content>\n<published>" + e.updated + "</published>\n<updated>" + e.updated + "</updated>\n</entry>\n")
}

func (e *encoder) usagePoint(sub string, up UsagePoint) error {
	upID := url.PathEscape(up.ID)
	upPath := sub + "/UsagePoint/" + upID
	links := []string{
		"self", ResourceBase + upPath, "espi-entry/UsagePoint",
		"up", ResourceBase + sub + "/UsagePoint", "espi-feed/UsagePoint",
		"related", ResourceBase + upPath + "/MeterReading", "espi-feed/MeterReading",
	}
	e.entryStart("UsagePoint/"+up.ID, up.Title, links...)
	e.raw(`<UsagePoint xmlns="` + NSESPI + `"><ServiceCategory><kind>` + strconv.Itoa(ServiceKindElectricity) + "</kind></ServiceCategory></UsagePoint>\n")
	e.entryEnd()
	for j, s := range up.Series {
		if err := e.series(sub, up, s); err != nil {
			return fmt.Errorf("greenbutton: export: usage point %q, series %d (%s, %s): %w", up.ID, j, s.Flow, s.Resolution, err)
		}
		if e.err != nil {
			return e.err
		}
	}
	return e.err
}

func (e *encoder) series(sub string, up UsagePoint, s Series) error {
	mrID := MeterReadingID(s.Flow, s.Resolution)
	upPath := sub + "/UsagePoint/" + url.PathEscape(up.ID)
	mrPath := upPath + "/MeterReading/" + mrID
	rtID := url.PathEscape(up.ID + "-" + mrID)
	rtPath := "/ReadingType/" + rtID
	title := s.Title
	if title == "" {
		title = "Active energy " + s.Flow + ", " + strconv.FormatInt(int64(s.Resolution/time.Second), 10) + " s"
	}
	e.entryStart("UsagePoint/"+up.ID+"/MeterReading/"+mrID, title,
		"self", ResourceBase+mrPath, "espi-entry/MeterReading",
		"up", ResourceBase+upPath+"/MeterReading", "espi-feed/MeterReading",
		"related", ResourceBase+mrPath+"/IntervalBlock", "espi-feed/IntervalBlock",
		"related", ResourceBase+rtPath, "espi-entry/ReadingType",
	)
	e.raw(`<MeterReading xmlns="` + NSESPI + `"/>` + "\n")
	e.entryEnd()

	dir := FlowForward
	if s.Flow == FlowExport {
		dir = FlowReverse
	}
	res := int64(s.Resolution / time.Second)
	e.entryStart("ReadingType/"+up.ID+"-"+mrID, "Active energy "+s.Flow+" (mWh)",
		"self", ResourceBase+rtPath, "espi-entry/ReadingType",
		"up", ResourceBase+"/ReadingType", "espi-feed/ReadingType",
	)
	b := e.buf[:0]
	b = append(b, `<ReadingType xmlns="`+NSESPI+`">`...)
	b = appendElem(b, "accumulationBehaviour", AccumulationDeltaData)
	b = appendElem(b, "commodity", CommodityElectricitySecondaryMetered)
	b = appendElem(b, "dataQualifier", DataQualifierNormal)
	b = appendElem(b, "flowDirection", int64(dir))
	b = appendElem(b, "intervalLength", res)
	b = appendElem(b, "kind", MeasurementEnergy)
	b = appendElem(b, "powerOfTenMultiplier", MultiplierMilli)
	b = appendElem(b, "timeAttribute", TimeAttributeNone)
	b = appendElem(b, "uom", UOMWattHour)
	b = append(b, "</ReadingType>\n"...)
	e.buf = b
	e.bytes(b)
	e.entryEnd()

	if s.Readings == nil {
		return nil
	}
	e.day = e.day[:0]
	curDay := int64(0)
	prev := int64(0)
	n := 0
	for r, err := range s.Readings {
		if err != nil {
			return fmt.Errorf("reading %d: %w", n, err)
		}
		t := r.Start.Unix()
		switch {
		case r.Start.Nanosecond() != 0 || t%res != 0:
			return fmt.Errorf("reading %d starts at %s, not a multiple of %d s since the Unix epoch", n, r.Start.UTC().Format(time.RFC3339Nano), res)
		case n > 0 && t <= prev:
			return fmt.Errorf("reading %d starts at %s, not after the previous reading (%s): readings must be in ascending start order without repeats", n, r.Start.UTC().Format(time.RFC3339), time.Unix(prev, 0).UTC().Format(time.RFC3339))
		case r.Value < 0:
			return fmt.Errorf("reading %d at %s has negative value %d mWh; energy fed into the grid is an %s series", n, r.Start.UTC().Format(time.RFC3339), r.Value, FlowExport)
		case r.Value > MaxInt48:
			return fmt.Errorf("reading %d at %s has value %d mWh, above the ESPI Int48 maximum %d", n, r.Start.UTC().Format(time.RFC3339), r.Value, int64(MaxInt48))
		}
		d := floorDiv(t, day)
		if len(e.day) > 0 && d != curDay {
			e.block(up.ID, mrID, mrPath, res, curDay)
			if e.err != nil {
				return e.err
			}
			e.day = e.day[:0]
		}
		curDay = d
		e.day = append(e.day, r)
		prev = t
		n++
	}
	if len(e.day) > 0 {
		e.block(up.ID, mrID, mrPath, res, curDay)
	}
	return e.err
}

// block writes one IntervalBlock entry with the readings of one UTC day.
func (e *encoder) block(upID, mrID, mrPath string, res, dayIndex int64) {
	date := time.Unix(dayIndex*day, 0).UTC().Format("2006-01-02")
	id := time.Unix(dayIndex*day, 0).UTC().Format("20060102")
	ibPath := mrPath + "/IntervalBlock/" + id
	e.entryStart("UsagePoint/"+upID+"/MeterReading/"+mrID+"/IntervalBlock/"+id, date,
		"self", ResourceBase+ibPath, "espi-entry/IntervalBlock",
		"up", ResourceBase+mrPath+"/IntervalBlock", "espi-feed/IntervalBlock",
	)
	first := e.day[0].Start.Unix()
	last := e.day[len(e.day)-1].Start.Unix()
	b := e.buf[:0]
	b = append(b, `<IntervalBlock xmlns="`+NSESPI+`">`+"\n<interval>"...)
	b = appendElem(b, "duration", last+res-first)
	b = appendElem(b, "start", first)
	b = append(b, "</interval>\n"...)
	for _, r := range e.day {
		b = append(b, "<IntervalReading><timePeriod>"...)
		b = appendElem(b, "duration", res)
		b = appendElem(b, "start", r.Start.Unix())
		b = append(b, "</timePeriod>"...)
		b = appendElem(b, "value", r.Value)
		b = append(b, "</IntervalReading>\n"...)
		if len(b) > 32<<10 {
			e.bytes(b)
			b = b[:0]
		}
	}
	b = append(b, "</IntervalBlock>\n"...)
	e.bytes(b)
	e.buf = b[:0]
	e.entryEnd()
}

func appendElem(b []byte, name string, v int64) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = strconv.AppendInt(b, v, 10)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
