package greenbutton

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Imported is what a Green Button document holds in flexhub's terms.
type Imported struct {
	FeedID    string // the feed's atom id; empty for an entry document
	FeedTitle string
	// UsagePoints in document order, each with its meter readings.
	UsagePoints []ImportedUsagePoint
	// Skipped lists the entries that carry no usage data flexhub keeps
	// (LocalTimeParameters, usage and quality summaries,
	// ApplicationInformation, Authorization, retail customer data, ...),
	// so the caller can say what was not imported.
	Skipped []SkippedEntry
}

// Readings counts the interval readings of all usage points.
func (im *Imported) Readings() int {
	n := 0
	for _, up := range im.UsagePoints {
		for _, mr := range up.MeterReadings {
			n += len(mr.Readings)
		}
	}
	return n
}

// SkippedEntry is an entry Import read but did not turn into usage data.
type SkippedEntry struct {
	ID   string // atom id
	Kind string // the content's element, e.g. "LocalTimeParameters", "customer:Customer"; empty if none
	Line int
}

// ImportedUsagePoint is a UsagePoint entry with its meter readings.
type ImportedUsagePoint struct {
	ID         string // atom id; empty if the document has meter readings of a usage point but not its entry
	Href       string // self link, as written
	ResourceID string // the last segment of the self link's path (for flexhub's own exports: the metering point id)
	Title      string
	// ServiceKind is ServiceCategory.kind (0 electricity, 1 gas, ...), or
	// -1 if the document does not state it.
	ServiceKind   int
	MeterReadings []ImportedMeterReading
}

// ImportedMeterReading is a MeterReading entry with its reading type and
// the interval readings of its IntervalBlocks.
type ImportedMeterReading struct {
	ID          string
	Href        string
	ResourceID  string // for flexhub's own exports: MeterReadingID(flow, resolution)
	Title       string
	ReadingType ReadingType
	// Readings in document order: block by block, reading by reading.
	Readings []IntervalReading
}

// ReadingType holds a ReadingType's fields as written (0 where the
// document leaves a field out, which ESPI reads as "not applicable"),
// and what flexhub makes of them.
type ReadingType struct {
	ID, Href              string
	AccumulationBehaviour int
	Commodity             int
	Currency              int
	DataQualifier         int
	FlowDirection         int
	IntervalLength        int64 // seconds
	Kind                  int
	Phase                 int
	PowerOfTenMultiplier  int
	TimeAttribute         int
	UOM                   int

	// Quantity is the flexhub quantity of UOM (Wh: active_energy, VArh:
	// reactive_energy, W: active_power, VAr: reactive_power), or empty
	// for any other unit: then readings keep only their Raw value.
	Quantity string
	// Flow is FlowImport for flow direction forward (1), FlowExport for
	// reverse (19), empty for any other.
	Flow string
}

// IntervalReading is one reading of an IntervalBlock.
type IntervalReading struct {
	Start    time.Time // UTC
	Duration time.Duration
	// Raw is the value as written: units of the ReadingType's uom times
	// 10^powerOfTenMultiplier.
	Raw int64
	// Value is Raw in flexhub's milli-units of the quantity (mWh for Wh),
	// exact; 0 when the ReadingType's Quantity is empty.
	Value int64
	// Cost is the reading's cost in hundred-thousandths of the
	// ReadingType's currency, if given.
	Cost    *int64
	Quality []int // ReadingQuality codes, if any
}

// Error is a refusal of Import: what is wrong and, where known, the
// entry and the line it starts on.
type Error struct {
	Line  int    // line of the entry (or of the XML error); 0 if unknown
	Entry string // atom id of the entry; empty if unknown
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("greenbutton: import: ")
	if e.Entry != "" {
		fmt.Fprintf(&b, "entry %s ", e.Entry)
	}
	if e.Line > 0 {
		if e.Entry != "" {
			fmt.Fprintf(&b, "(line %d)", e.Line)
		} else {
			fmt.Fprintf(&b, "line %d", e.Line)
		}
	}
	if e.Entry != "" || e.Line > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Atom and ESPI elements as Import decodes them.
type xLink struct {
	Rel  string `xml:"rel,attr"`
	Href string `xml:"href,attr"`
}

type xEntry struct {
	ID      string     `xml:"http://www.w3.org/2005/Atom id"`
	Title   string     `xml:"http://www.w3.org/2005/Atom title"`
	Links   []xLink    `xml:"http://www.w3.org/2005/Atom link"`
	Content []xContent `xml:"http://www.w3.org/2005/Atom content"`
	line    int
}

type xAny struct {
	XMLName xml.Name
}

type xContent struct {
	UsagePoint     *xUsagePoint     `xml:"http://naesb.org/espi UsagePoint"`
	MeterReading   *xMeterReading   `xml:"http://naesb.org/espi MeterReading"`
	ReadingType    *xReadingType    `xml:"http://naesb.org/espi ReadingType"`
	IntervalBlocks []xIntervalBlock `xml:"http://naesb.org/espi IntervalBlock"`
	Other          []xAny           `xml:",any"`
}

type xUsagePoint struct {
	ServiceCategory *struct {
		Kind *int `xml:"http://naesb.org/espi kind"`
	} `xml:"http://naesb.org/espi ServiceCategory"`
}

type xMeterReading struct {
	// Not in espi.xsd, but some Green Button files embed the reading
	// type in the meter reading (samples/Usage-Subscription-Feed).
	ReadingType *xReadingType `xml:"http://naesb.org/espi ReadingType"`
}

type xReadingType struct {
	AccumulationBehaviour int   `xml:"http://naesb.org/espi accumulationBehaviour"`
	Commodity             int   `xml:"http://naesb.org/espi commodity"`
	Currency              int   `xml:"http://naesb.org/espi currency"`
	DataQualifier         int   `xml:"http://naesb.org/espi dataQualifier"`
	FlowDirection         int   `xml:"http://naesb.org/espi flowDirection"`
	IntervalLength        int64 `xml:"http://naesb.org/espi intervalLength"`
	Kind                  int   `xml:"http://naesb.org/espi kind"`
	Phase                 int   `xml:"http://naesb.org/espi phase"`
	PowerOfTenMultiplier  int   `xml:"http://naesb.org/espi powerOfTenMultiplier"`
	TimeAttribute         int   `xml:"http://naesb.org/espi timeAttribute"`
	UOM                   int   `xml:"http://naesb.org/espi uom"`
}

// Times and values are read as text and parsed by Import itself, so
// that an empty <value/> is refused rather than read as 0.
type xInterval struct {
	Duration *string `xml:"http://naesb.org/espi duration"`
	Start    *string `xml:"http://naesb.org/espi start"`
}

type xIntervalBlock struct {
	Interval *xInterval         `xml:"http://naesb.org/espi interval"`
	Readings []xIntervalReading `xml:"http://naesb.org/espi IntervalReading"`
}

type xIntervalReading struct {
	Cost           *int64     `xml:"http://naesb.org/espi cost"`
	ReadingQuality []xQuality `xml:"http://naesb.org/espi ReadingQuality"`
	TimePeriod     *xInterval `xml:"http://naesb.org/espi timePeriod"`
	Value          *string    `xml:"http://naesb.org/espi value"`
}

type xQuality struct {
	Quality int `xml:"http://naesb.org/espi quality"`
}

// Import reads a Green Button document — an Atom feed, or a single
// Atom entry — and returns its usage points with their meter readings,
// reading types and interval readings. It ties entries together the way
// ESPI links them: a MeterReading belongs to the UsagePoint whose path
// its self link continues (.../UsagePoint/{id}/MeterReading/{id}), its
// ReadingType is the entry its "related" link names (or one embedded in
// it), and an IntervalBlock belongs to the MeterReading whose path its
// self or up link continues. Entries may come in any order.
//
// Import refuses, with an *Error naming the entry and line: malformed
// XML; a document whose root is not an Atom feed or entry (a bare ESPI
// resource such as ServiceCategory); a number that is not an integer;
// an IntervalBlock whose MeterReading or ReadingType is not in the
// document; an IntervalReading without a value or without a start and
// duration; a value the ReadingType's powerOfTenMultiplier does not
// make a whole number of milli-units (e.g. 1 µWh), or one beyond int64
// milli-units; two entries with the same self link. Nothing is returned
// with an error. Import reads the whole document into memory: callers
// taking uploads should bound r (http.MaxBytesReader).
func Import(r io.Reader) (*Imported, error) {
	dec := xml.NewDecoder(r)
	var root xml.StartElement
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, &Error{Msg: "the document is empty: no root element"}
			}
			return nil, xmlError(dec, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = se
			break
		}
	}
	im := &Imported{}
	var entries []*xEntry
	switch {
	case root.Name.Space == NSAtom && root.Name.Local == "feed":
		for done := false; !done; {
			tok, err := dec.Token()
			if err != nil {
				return nil, xmlError(dec, err)
			}
			switch t := tok.(type) {
			case xml.EndElement:
				done = true
			case xml.StartElement:
				line, _ := dec.InputPos()
				switch {
				case t.Name.Space == NSAtom && t.Name.Local == "entry":
					e := &xEntry{line: line}
					if err := dec.DecodeElement(e, &t); err != nil {
						return nil, entryError(dec, e, err)
					}
					entries = append(entries, e)
				case t.Name.Space == NSAtom && (t.Name.Local == "id" || t.Name.Local == "title"):
					var s string
					if err := dec.DecodeElement(&s, &t); err != nil {
						return nil, xmlError(dec, err)
					}
					if t.Name.Local == "id" {
						im.FeedID = strings.TrimSpace(s)
					} else {
						im.FeedTitle = strings.TrimSpace(s)
					}
				default:
					if err := dec.Skip(); err != nil {
						return nil, xmlError(dec, err)
					}
				}
			}
		}
	case root.Name.Space == NSAtom && root.Name.Local == "entry":
		line, _ := dec.InputPos()
		e := &xEntry{line: line}
		if err := dec.DecodeElement(e, &root); err != nil {
			return nil, entryError(dec, e, err)
		}
		entries = append(entries, e)
	default:
		line, _ := dec.InputPos()
		return nil, &Error{Line: line, Msg: fmt.Sprintf("the root element is %s, not an Atom feed or entry: a Green Button document is an Atom <feed> or <entry> (namespace %s) whose entries hold ESPI resources", qname(root.Name), NSAtom)}
	}
	// Nothing but comments and white space may follow the root.
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, xmlError(dec, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			line, _ := dec.InputPos()
			return nil, &Error{Line: line, Msg: fmt.Sprintf("element %s after the end of the root element", qname(t.Name))}
		case xml.CharData:
			if strings.TrimSpace(string(t)) != "" {
				line, _ := dec.InputPos()
				return nil, &Error{Line: line, Msg: "text after the end of the root element"}
			}
		}
	}
	if err := im.resolve(entries); err != nil {
		return nil, err
	}
	return im, nil
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

func xmlError(dec *xml.Decoder, err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		if se.Msg == "unexpected EOF" {
			return &Error{Line: se.Line, Msg: "malformed XML: the document ends before its root element is closed"}
		}
		return &Error{Line: se.Line, Msg: "malformed XML: " + se.Msg}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		line, _ := dec.InputPos()
		return &Error{Line: line, Msg: "the document ends before its root element is closed"}
	}
	line, _ := dec.InputPos()
	return &Error{Line: line, Msg: err.Error()}
}

func entryError(dec *xml.Decoder, e *xEntry, err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return xmlError(dec, err)
	}
	// A value that does not parse (strconv: "abc" is not an integer).
	return &Error{Line: e.line, Entry: strings.TrimSpace(e.ID), Msg: "bad value: " + err.Error()}
}

// linkPath is the path of a link's href, without a trailing slash: links
// are compared by path, so absolute and relative hrefs of one document
// match.
func linkPath(href string) string {
	href = strings.TrimSpace(href)
	if u, err := url.Parse(href); err == nil {
		href = u.EscapedPath() // escaped: an id with "/" stays one segment
	}
	return strings.TrimRight(href, "/")
}

func (e *xEntry) link(rel string) string {
	for _, l := range e.Links {
		if l.Rel == rel {
			return l.Href
		}
	}
	return ""
}

func lastSegment(path string) string {
	return path[strings.LastIndexByte(path, '/')+1:]
}

// parentOf is the path before the last "/<collection>/" of path (the
// owner of a member of that collection), or "" if path has none.
func parentOf(path, collection string) string {
	if i := strings.LastIndex(path, "/"+collection+"/"); i >= 0 {
		return path[:i]
	}
	return ""
}

// owner is the path of the resource that owns entry e's resource in
// collection (MeterReading, IntervalBlock): from its self link, or else
// from its up link (the collection itself).
func (e *xEntry) owner(collection string) string {
	if p := parentOf(linkPath(e.link("self")), collection); p != "" {
		return p
	}
	up := linkPath(e.link("up"))
	if strings.HasSuffix(up, "/"+collection) {
		return strings.TrimSuffix(up, "/"+collection)
	}
	return ""
}

func (im *Imported) resolve(entries []*xEntry) error {
	type mrRef struct {
		up, i int  // index of the usage point and of the meter reading in it
		hasRT bool // its ReadingType is in the document
	}
	var (
		bySelf   = map[string]*xEntry{}
		ups      = map[string]int{} // usage point self path → index
		mrs      = map[string]mrRef{}
		rts      = map[string]*xEntry{}
		blocks   []*xEntry
		mrsOrder []*xEntry
	)
	for _, e := range entries {
		e.ID = strings.TrimSpace(e.ID)
		e.Title = strings.TrimSpace(e.Title)
		if self := linkPath(e.link("self")); self != "" {
			if prev, ok := bySelf[self]; ok {
				return &Error{Line: e.line, Entry: e.ID, Msg: fmt.Sprintf("its self link %s is also the self link of entry %s (line %d)", e.link("self"), prev.ID, prev.line)}
			}
			bySelf[self] = e
		}
		var c xContent
		switch len(e.Content) {
		case 0:
		case 1:
			c = e.Content[0]
		default:
			return &Error{Line: e.line, Entry: e.ID, Msg: "the entry has more than one content element"}
		}
		switch {
		case c.UsagePoint != nil:
			up := ImportedUsagePoint{ID: e.ID, Href: e.link("self"), Title: e.Title, ServiceKind: -1}
			up.ResourceID = resourceID(linkPath(up.Href))
			if sc := c.UsagePoint.ServiceCategory; sc != nil && sc.Kind != nil {
				up.ServiceKind = *sc.Kind
			}
			ups[linkPath(up.Href)] = len(im.UsagePoints)
			im.UsagePoints = append(im.UsagePoints, up)
		case c.MeterReading != nil:
			mrsOrder = append(mrsOrder, e)
		case c.ReadingType != nil:
			if self := linkPath(e.link("self")); self != "" {
				rts[self] = e
			} else {
				im.Skipped = append(im.Skipped, SkippedEntry{ID: e.ID, Kind: "ReadingType", Line: e.line})
			}
		case len(c.IntervalBlocks) > 0:
			blocks = append(blocks, e)
		default:
			kind := ""
			if len(c.Other) > 0 {
				n := c.Other[0].XMLName
				kind = n.Local
				if n.Space == NSCustomer {
					kind = "customer:" + kind
				} else if n.Space != NSESPI {
					kind = qname(n)
				}
			}
			im.Skipped = append(im.Skipped, SkippedEntry{ID: e.ID, Kind: kind, Line: e.line})
		}
	}
	// Meter readings, each under its usage point (one is made up from the
	// path if the document lacks the usage point's entry).
	for _, e := range mrsOrder {
		owner := e.owner("MeterReading")
		ui, ok := ups[owner]
		if !ok {
			if owner == "" {
				return &Error{Line: e.line, Entry: e.ID, Msg: "the MeterReading has neither a self link .../UsagePoint/{id}/MeterReading/{id} nor an up link .../UsagePoint/{id}/MeterReading naming its usage point"}
			}
			ui = len(im.UsagePoints)
			ups[owner] = ui
			im.UsagePoints = append(im.UsagePoints, ImportedUsagePoint{Href: owner, ResourceID: resourceID(owner), ServiceKind: -1})
		}
		mr := ImportedMeterReading{ID: e.ID, Href: e.link("self"), Title: e.Title}
		mr.ResourceID = resourceID(linkPath(mr.Href))
		rt, hasRT, err := readingTypeOf(e, rts)
		if err != nil {
			return err
		}
		mr.ReadingType = rt
		self := linkPath(mr.Href)
		if self == "" {
			return &Error{Line: e.line, Entry: e.ID, Msg: "the MeterReading has no self link, so no IntervalBlock can name it"}
		}
		mrs[self] = mrRef{ui, len(im.UsagePoints[ui].MeterReadings), hasRT}
		im.UsagePoints[ui].MeterReadings = append(im.UsagePoints[ui].MeterReadings, mr)
	}
	for _, e := range blocks {
		owner := e.owner("IntervalBlock")
		ref, ok := mrs[owner]
		if !ok {
			where := owner
			if where == "" {
				where = "(neither its self nor its up link names one: .../MeterReading/{id}/IntervalBlock)"
			}
			return &Error{Line: e.line, Entry: e.ID, Msg: fmt.Sprintf("the IntervalBlock's MeterReading %s is not in the document, so its ReadingType (unit, multiplier) is unknown", where)}
		}
		mr := &im.UsagePoints[ref.up].MeterReadings[ref.i]
		if !ref.hasRT {
			return &Error{Line: e.line, Entry: e.ID, Msg: fmt.Sprintf("the IntervalBlock's MeterReading %s has no ReadingType in the document (no related link to a ReadingType entry, none embedded), so the unit and multiplier of its values are unknown", mr.Href)}
		}
		for _, c := range e.Content {
			for _, b := range c.IntervalBlocks {
				rs, err := readings(b, &mr.ReadingType, len(mr.Readings))
				if err != nil {
					return &Error{Line: e.line, Entry: e.ID, Msg: err.Error()}
				}
				mr.Readings = append(mr.Readings, rs...)
			}
		}
	}
	return nil
}

// resourceID is the unescaped last segment of a path.
func resourceID(path string) string {
	s := lastSegment(path)
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// readingTypeOf finds a MeterReading's ReadingType: embedded in it, or
// the ReadingType entry one of its related links names, and whether
// there is one (an IntervalBlock of a meter reading without is refused).
func readingTypeOf(e *xEntry, rts map[string]*xEntry) (ReadingType, bool, error) {
	if x := e.Content[0].MeterReading.ReadingType; x != nil {
		rt, err := makeReadingType(x, "", "", e)
		return rt, true, err
	}
	for _, l := range e.Links {
		if l.Rel != "related" {
			continue
		}
		if rt, ok := rts[linkPath(l.Href)]; ok {
			t, err := makeReadingType(rt.Content[0].ReadingType, rt.ID, rt.link("self"), rt)
			return t, true, err
		}
	}
	return ReadingType{}, false, nil
}

func makeReadingType(x *xReadingType, id, href string, e *xEntry) (ReadingType, error) {
	rt := ReadingType{
		ID: id, Href: href,
		AccumulationBehaviour: x.AccumulationBehaviour,
		Commodity:             x.Commodity,
		Currency:              x.Currency,
		DataQualifier:         x.DataQualifier,
		FlowDirection:         x.FlowDirection,
		IntervalLength:        x.IntervalLength,
		Kind:                  x.Kind,
		Phase:                 x.Phase,
		PowerOfTenMultiplier:  x.PowerOfTenMultiplier,
		TimeAttribute:         x.TimeAttribute,
		UOM:                   x.UOM,
		Quantity:              quantityOfUOM(x.UOM),
		Flow:                  flowOfDirection(x.FlowDirection),
	}
	if rt.PowerOfTenMultiplier < -12 || rt.PowerOfTenMultiplier > 12 {
		return rt, &Error{Line: e.line, Entry: e.ID, Msg: fmt.Sprintf("powerOfTenMultiplier %d is not an ESPI multiplier (-12 to 12)", rt.PowerOfTenMultiplier)}
	}
	if rt.IntervalLength < 0 {
		return rt, &Error{Line: e.line, Entry: e.ID, Msg: fmt.Sprintf("intervalLength %d is negative", rt.IntervalLength)}
	}
	return rt, nil
}

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// milli converts a raw value with multiplier p (units × 10^p) to
// milli-units exactly.
func milli(raw int64, p int) (int64, error) {
	e := p + 3
	switch {
	case e == 0:
		return raw, nil
	case e > 0:
		f := pow10[e]
		if raw > (1<<63-1)/f || raw < -(1<<63-1)/f {
			return 0, fmt.Errorf("value %d × 10^%d is beyond what flexhub stores in milli-units", raw, p)
		}
		return raw * f, nil
	default:
		f := pow10[-e]
		if raw%f != 0 {
			return 0, fmt.Errorf("value %d × 10^%d is not a whole number of milli-units (flexhub keeps mWh exactly)", raw, p)
		}
		return raw / f, nil
	}
}

// integer parses an integer element's text; what names the element in
// the error.
func integer(what string, text string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not an integer", what, strings.TrimSpace(text))
	}
	return v, nil
}

func readings(b xIntervalBlock, rt *ReadingType, before int) ([]IntervalReading, error) {
	out := make([]IntervalReading, 0, len(b.Readings))
	var next int64 // start of the next reading without a time period
	haveNext := false
	if b.Interval != nil && b.Interval.Start != nil {
		v, err := integer("the IntervalBlock's interval start", *b.Interval.Start)
		if err != nil {
			return nil, err
		}
		next, haveNext = v, true
	}
	for i, x := range b.Readings {
		n := before + i // the reading's index in its meter reading
		var start, dur int64
		var err error
		switch {
		case x.TimePeriod != nil:
			if x.TimePeriod.Start == nil {
				return nil, fmt.Errorf("IntervalReading %d of the IntervalBlock has a timePeriod without start", i)
			}
			if start, err = integer(fmt.Sprintf("IntervalReading %d of the IntervalBlock: start", i), *x.TimePeriod.Start); err != nil {
				return nil, err
			}
			if x.TimePeriod.Duration != nil {
				if dur, err = integer(fmt.Sprintf("IntervalReading %d of the IntervalBlock: duration", i), *x.TimePeriod.Duration); err != nil {
					return nil, err
				}
			} else {
				dur = rt.IntervalLength
			}
		case haveNext:
			start, dur = next, rt.IntervalLength
		default:
			return nil, fmt.Errorf("IntervalReading %d of the IntervalBlock has no timePeriod, and the block no interval start to count from", i)
		}
		if dur <= 0 {
			return nil, fmt.Errorf("IntervalReading %d of the IntervalBlock (start %d) has no duration: no timePeriod duration and no ReadingType intervalLength", i, start)
		}
		if dur > 1<<31 || start > 1<<40 || start < -(1<<40) {
			return nil, fmt.Errorf("IntervalReading %d of the IntervalBlock has start %d and duration %d s, beyond any meter's time", i, start, dur)
		}
		next, haveNext = start+dur, true
		if x.Value == nil {
			return nil, fmt.Errorf("IntervalReading %d of the IntervalBlock (start %d) has no value", i, start)
		}
		raw, err := integer(fmt.Sprintf("IntervalReading %d of the IntervalBlock (start %d): value", i, start), *x.Value)
		if err != nil {
			return nil, err
		}
		r := IntervalReading{
			Start:    time.Unix(start, 0).UTC(),
			Duration: time.Duration(dur) * time.Second,
			Raw:      raw,
			Cost:     x.Cost,
		}
		if rt.Quantity != "" {
			v, err := milli(r.Raw, rt.PowerOfTenMultiplier)
			if err != nil {
				return nil, fmt.Errorf("IntervalReading %d of the IntervalBlock (start %d, reading %d of its meter reading): %w", i, start, n, err)
			}
			r.Value = v
		}
		for _, q := range x.ReadingQuality {
			r.Quality = append(r.Quality, q.Quality)
		}
		out = append(out, r)
	}
	return out, nil
}
