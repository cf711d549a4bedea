package flexhub

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Meter data (docs/METERING.md). A reading is one measured value of one
// series — a resource or a metering point, a quantity, a flow direction
// and a resolution — over one interval [start, start+resolution). On the
// wire a value carries its unit; inside flexhub it is an integer number
// of milli-units (mW, mvar, mWh, mvarh), parsed exactly from the decimal
// text the sender wrote: a 1-second energy reading of a household (a few
// tenths of a Wh) keeps its digits, and no float ever holds a value.

// Meter quantities.
const (
	QuantityActivePower    = "active_power"
	QuantityReactivePower  = "reactive_power"
	QuantityActiveEnergy   = "active_energy"
	QuantityReactiveEnergy = "reactive_energy"
)

// Flow directions, seen from the grid: import is taken from the grid
// (consumption), export is fed into it (generation).
const (
	FlowImport = "import"
	FlowExport = "export"
)

// What a meter series belongs to.
const (
	MeterSubjectResource      = "resource"
	MeterSubjectMeteringPoint = "metering_point"
)

// Limits of meter data.
const (
	MinMeterResolution = time.Second
	MaxMeterResolution = 15 * time.Minute
	// MeterFutureTolerance is how far a reading's end may lie past the
	// receiver's clock: senders' clocks drift a little.
	MeterFutureTolerance = 5 * time.Second
	// MaxMeterValue bounds one reading, in milli-units: 10 TW or 10 TWh
	// in one interval is beyond any grid.
	MaxMeterValue = int64(1e16)
)

// meterUnit is a unit on the wire: the quantity it measures and how many
// milli-units one of it is, as a power of ten.
type meterUnit struct {
	quantity string
	exp      int // 1 unit = 10^exp milli-units
}

var meterUnits = map[string]meterUnit{
	"W": {QuantityActivePower, 3}, "kW": {QuantityActivePower, 6}, "MW": {QuantityActivePower, 9},
	"var": {QuantityReactivePower, 3}, "kvar": {QuantityReactivePower, 6}, "Mvar": {QuantityReactivePower, 9},
	"Wh": {QuantityActiveEnergy, 3}, "kWh": {QuantityActiveEnergy, 6}, "MWh": {QuantityActiveEnergy, 9},
	"varh": {QuantityReactiveEnergy, 3}, "kvarh": {QuantityReactiveEnergy, 6}, "Mvarh": {QuantityReactiveEnergy, 9},
}

var quantityUnits = map[string]string{
	QuantityActivePower:    "W, kW, MW",
	QuantityReactivePower:  "var, kvar, Mvar",
	QuantityActiveEnergy:   "Wh, kWh, MWh",
	QuantityReactiveEnergy: "varh, kvarh, Mvarh",
}

// BaseMeterUnit is the unit whose thousandth is the stored integer.
func BaseMeterUnit(quantity string) string {
	switch quantity {
	case QuantityActivePower:
		return "W"
	case QuantityReactivePower:
		return "var"
	case QuantityActiveEnergy:
		return "Wh"
	case QuantityReactiveEnergy:
		return "varh"
	}
	return ""
}

// CheckMeterUnit reports whether unit measures quantity (field names the
// offending input).
func CheckMeterUnit(field, quantity, unit string) error {
	u, ok := meterUnits[unit]
	if !ok {
		return RuleErrorf(EInvalid, "meter.unit", field, "%q is not a meter unit; use one of %s for %s", unit, quantityUnits[quantity], quantity)
	}
	if u.quantity != quantity {
		return RuleErrorf(EInvalid, "meter.unit_mismatch", field, "%s is a unit of %s, not of %s; use one of %s", unit, u.quantity, quantity, quantityUnits[quantity])
	}
	return nil
}

// MeterReading is one reading as a sender states it, over REST (JSON or
// CSV) or MQTT. Exactly one of MeteringPointID and ResourceID names the
// subject. Start and Value are kept as the sender wrote them, so that
// Parse can name exactly what is wrong and read the value without
// rounding.
type MeterReading struct {
	MeteringPointID string      `json:"metering_point_id,omitempty" doc:"the metering point measured (its DSO sends); or resource_id"`
	ResourceID      string      `json:"resource_id,omitempty" doc:"the resource measured (the FSP operating it sends); or metering_point_id"`
	Quantity        string      `json:"quantity" enum:"active_power,reactive_power,active_energy,reactive_energy"`
	Flow            string      `json:"flow" enum:"import,export" doc:"import: taken from the grid; export: fed into it"`
	Start           string      `json:"start" format:"date-time" doc:"interval start, RFC 3339 UTC; a multiple of the resolution since the Unix epoch"`
	Resolution      Duration    `json:"resolution" doc:"interval length, ISO 8601, 1 s to 15 min dividing 15 min: PT1S, PT5S, PT1M, PT15M, ..."`
	Value           json.Number `json:"value" doc:"non-negative decimal number in unit; read exactly to a thousandth of the base unit (rounded half up below that)"`
	Unit            string      `json:"unit" enum:"W,kW,MW,var,kvar,Mvar,Wh,kWh,MWh,varh,kvarh,Mvarh" doc:"a unit of the quantity"`
}

// MeterSeriesKey names one series of readings.
type MeterSeriesKey struct {
	SubjectKind string        // MeterSubjectResource or MeterSubjectMeteringPoint
	SubjectID   string        // the resource or metering point id
	Quantity    string        // Quantity*
	Flow        string        // FlowImport or FlowExport
	Resolution  time.Duration // whole seconds, MinMeterResolution..MaxMeterResolution
}

// MeterValue is one parsed reading: what the store keeps.
type MeterValue struct {
	Series MeterSeriesKey
	Start  time.Time // UTC, a multiple of the resolution since the epoch
	Value  int64     // milli-units of the quantity's base unit
}

// CheckMeterResolution validates a resolution: whole seconds from 1 s to
// 15 min that divide 15 min, so that every series can be summed to the
// quarter hours the markets trade in.
func CheckMeterResolution(field string, d Duration) (time.Duration, error) {
	if d == "" {
		return 0, RuleErrorf(EInvalid, "meter.resolution", field, "resolution is required, e.g. PT15M")
	}
	v, err := d.Parse(field)
	if err != nil {
		return 0, RuleErrorf(EInvalid, "meter.resolution", field, "%q is not an ISO 8601 duration such as PT1S, PT1M or PT15M", string(d))
	}
	if v < MinMeterResolution || v > MaxMeterResolution || v%time.Second != 0 || MaxMeterResolution%v != 0 {
		return 0, RuleErrorf(EInvalid, "meter.resolution", field, "resolution %s must be whole seconds from PT1S to PT15M that divide PT15M evenly (PT1S, PT5S, PT10S, PT1M, PT5M, PT15M, ...)", string(d))
	}
	return v, nil
}

// ParseMeterSubject checks that exactly one subject is named.
func ParseMeterSubject(field, meteringPointID, resourceID string) (kind, id string, err error) {
	switch {
	case meteringPointID != "" && resourceID != "":
		return "", "", RuleErrorf(EInvalid, "meter.subject", field+"resource_id", "name either metering_point_id or resource_id, not both")
	case meteringPointID == "" && resourceID == "":
		return "", "", RuleErrorf(EInvalid, "meter.subject", field+"resource_id", "name the metering_point_id or the resource_id the reading is for")
	case resourceID != "":
		if !ValidID(resourceID) {
			return "", "", RuleErrorf(EInvalid, "meter.subject", field+"resource_id", "%q is not a resource id", resourceID)
		}
		return MeterSubjectResource, resourceID, nil
	default:
		if !ValidID(meteringPointID) {
			return "", "", RuleErrorf(EInvalid, "meter.subject", field+"metering_point_id", "%q is not a metering point id", meteringPointID)
		}
		return MeterSubjectMeteringPoint, meteringPointID, nil
	}
}

// CheckMeterQuantity validates a quantity and a flow.
func CheckMeterQuantity(field, quantity, flow string) error {
	if _, ok := quantityUnits[quantity]; !ok {
		return RuleErrorf(EInvalid, "meter.quantity", field+"quantity", "%q is not active_power, reactive_power, active_energy or reactive_energy", quantity)
	}
	if flow != FlowImport && flow != FlowExport {
		return RuleErrorf(EInvalid, "meter.flow", field+"flow", "%q is not import or export", flow)
	}
	return nil
}

// Parse validates the reading as received at now and returns it in
// milli-units. field prefixes the names of offending fields
// ("readings[17]").
func (r *MeterReading) Parse(field string, now time.Time) (MeterValue, error) {
	p := MeterParser{Now: now}
	return p.Parse(field, r)
}

// MeterParser parses the readings of one batch received at Now. Readings
// of a batch mostly repeat their series one after the other, so the
// series of the previous reading is checked once and reused.
type MeterParser struct {
	Now  time.Time
	last struct {
		ok                      bool
		mp, res, quantity, flow string
		resolution              Duration
		key                     MeterSeriesKey
	}
}

// Parse validates one reading (see MeterReading.Parse).
func (ps *MeterParser) Parse(field string, r *MeterReading) (MeterValue, error) {
	v, err := ps.parse(r)
	if err != nil && field != "" {
		err = prefixField(err, field+".")
	}
	return v, err
}

// ParseIndex validates the i-th reading of a batch; errors name it
// readings[i].
func (ps *MeterParser) ParseIndex(i int, r *MeterReading) (MeterValue, error) {
	v, err := ps.parse(r)
	if err != nil {
		err = prefixField(err, "readings["+strconv.Itoa(i)+"].")
	}
	return v, err
}

// prefixField puts prefix before the field a domain error names.
func prefixField(err error, prefix string) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Field = prefix + c.Field
		return &c
	}
	return err
}

// parse validates a reading; error fields are relative to it. Nothing is
// allocated on the way of a good reading beyond what time.Parse needs.
func (ps *MeterParser) parse(r *MeterReading) (MeterValue, error) {
	var v MeterValue
	l := &ps.last
	var key MeterSeriesKey
	if l.ok && l.mp == r.MeteringPointID && l.res == r.ResourceID && l.quantity == r.Quantity && l.flow == r.Flow && l.resolution == r.Resolution {
		key = l.key
	} else {
		kind, id, err := ParseMeterSubject("", r.MeteringPointID, r.ResourceID)
		if err != nil {
			return v, err
		}
		if err := CheckMeterQuantity("", r.Quantity, r.Flow); err != nil {
			return v, err
		}
		res, err := CheckMeterResolution("resolution", r.Resolution)
		if err != nil {
			return v, err
		}
		key = MeterSeriesKey{SubjectKind: kind, SubjectID: id, Quantity: r.Quantity, Flow: r.Flow, Resolution: res}
		l.ok, l.mp, l.res, l.quantity, l.flow, l.resolution, l.key = true, r.MeteringPointID, r.ResourceID, r.Quantity, r.Flow, r.Resolution, key
	}
	res := key.Resolution
	start, err := time.Parse(time.RFC3339Nano, r.Start)
	if err != nil {
		return v, RuleErrorf(EInvalid, "meter.start", "start", "%q is not an RFC 3339 time such as 2025-03-01T08:15:00Z", r.Start)
	}
	start = start.UTC()
	if start.Nanosecond() != 0 || start.Unix()%int64(res/time.Second) != 0 {
		return v, RuleErrorf(EInvalid, "meter.misaligned", "start", "start %s is not aligned to the resolution %s: it must be a multiple of %d s since 1970-01-01T00:00:00Z (e.g. %s)",
			r.Start, r.Resolution, int64(res/time.Second), start.Truncate(res).Format(time.RFC3339))
	}
	if end := start.Add(res); end.After(ps.Now.Add(MeterFutureTolerance)) {
		return v, RuleErrorf(EInvalid, "meter.future", "start", "the interval %s..%s has not ended yet (now is %s): send a reading once its interval is over",
			start.Format(time.RFC3339), end.Format(time.RFC3339), ps.Now.UTC().Format(time.RFC3339))
	}
	if err := CheckMeterUnit("unit", r.Quantity, r.Unit); err != nil {
		return v, err
	}
	milli, err := ParseMeterValue("value", string(r.Value), meterUnits[r.Unit].exp)
	if err != nil {
		return v, err
	}
	return MeterValue{Series: key, Start: start, Value: milli}, nil
}

// ParseMeterValue reads a non-negative decimal number (JSON number
// syntax, exponent allowed) exactly, as an integer times 10^exp: with exp
// 6 (kWh to mWh) "1.2345" is 1234500. Digits below the integer are
// rounded half up. No float is involved.
func ParseMeterValue(field, s string, exp int) (int64, error) {
	bad := func() error {
		return RuleErrorf(EInvalid, "meter.value", field, "%q is not a number", s)
	}
	if s == "" {
		return 0, RuleErrorf(EInvalid, "meter.value", field, "value is required")
	}
	i := 0
	if s[0] == '-' || s[0] == '+' {
		i++
	}
	var buf [40]byte
	digits := buf[:0]
	point := -1
	for ; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			digits = append(digits, c)
		} else if c == '.' && point < 0 {
			point = len(digits)
		} else {
			break
		}
	}
	if len(digits) == 0 {
		return 0, bad()
	}
	e := 0
	if point >= 0 {
		e = point - len(digits)
	}
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return 0, bad()
		}
		x, err := strconv.Atoi(s[i+1:])
		if err != nil || x > 1000 || x < -1000 {
			return 0, bad()
		}
		e += x
	}
	if s[0] == '-' {
		if strings.Trim(string(digits), "0") == "" {
			return 0, nil // -0
		}
		return 0, RuleErrorf(EInvalid, "meter.negative", field, "a reading must not be negative, got %s: send import and export as separate series", s)
	}
	e += exp
	// strip leading zeros
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	tooBig := func() error {
		return RuleErrorf(EInvalid, "meter.value_range", field, "%s is beyond any meter", s)
	}
	var n int64
	if e >= 0 {
		if digits[0] != '0' && len(digits)+e > 17 {
			return 0, tooBig()
		}
		for _, c := range digits {
			n = n*10 + int64(c-'0')
		}
		for ; e > 0 && n != 0; e-- {
			n *= 10
		}
	} else {
		keep := len(digits) + e // digits left of the cut
		if keep > 17 {
			return 0, tooBig()
		}
		for j := 0; j < keep; j++ {
			n = n*10 + int64(digits[j]-'0')
		}
		if keep >= 0 && keep < len(digits) && digits[keep] >= '5' {
			n++
		}
	}
	if n > MaxMeterValue {
		return 0, tooBig()
	}
	return n, nil
}

// FormatMeterValue writes milli-units v in unit (a unit of the value's
// quantity) as an exact decimal: 1234500 mWh in kWh is "1.2345".
func FormatMeterValue(v int64, unit string) json.Number {
	u, ok := meterUnits[unit]
	if !ok {
		u.exp = 3
	}
	neg := v < 0
	if neg {
		v = -v
	}
	s := strconv.FormatInt(v, 10)
	if len(s) <= u.exp {
		s = strings.Repeat("0", u.exp-len(s)+1) + s
	}
	whole, frac := s[:len(s)-u.exp], strings.TrimRight(s[len(s)-u.exp:], "0")
	if frac != "" {
		whole += "." + frac
	}
	if neg {
		whole = "-" + whole
	}
	return json.Number(whole)
}

// MeterPutStats counts what a batch did: readings stored for the first
// time, readings equal to the stored ones (nothing changed), and
// corrections (a new version; the old one is kept).
type MeterPutStats struct {
	Inserted  int `json:"inserted"`
	Unchanged int `json:"unchanged"`
	Corrected int `json:"corrected"`
}

// Add adds o to s.
func (s *MeterPutStats) Add(o MeterPutStats) {
	s.Inserted += o.Inserted
	s.Unchanged += o.Unchanged
	s.Corrected += o.Corrected
}

// MeterSeriesPut is what a batch did to one series.
type MeterSeriesPut struct {
	Key MeterSeriesKey
	MeterPutStats
	First, Last time.Time // earliest and latest start the batch sent
}

// MeterBatch is one stored ingestion: who sent it and when.
type MeterBatch struct {
	ID         int64 // assigned by the store
	Sender     string
	ReceivedAt time.Time
	AuditID    string // the audit entry's object id (the batch's public id)
}

// MeterRecord is one stored version of a reading.
type MeterRecord struct {
	Start        time.Time
	Value        int64 // milli-units
	Version      int64 // 1 for the first value, +1 per correction
	ReceivedAt   time.Time
	Sender       string
	BatchID      string     // the ingestion's public id (MeterBatch.AuditID)
	SupersededAt *time.Time // when a correction replaced it; nil for the current version
}

// MeterPoint is the current value of one stored reading without its
// provenance: what bulk readers (a settlement run) take instead of
// MeterRecord, 16 bytes a reading.
type MeterPoint struct {
	Start int64 // the interval's start, Unix seconds
	Value int64 // milli-units
}

// MeterWindow asks for the current values of one series over
// [From, To).
type MeterWindow struct {
	Key      MeterSeriesKey
	From, To time.Time
}

// MeterSeries is one stored series.
type MeterSeries struct {
	ID int64
	MeterSeriesKey
	CreatedAt time.Time
}

// MeterTx is the part of Tx that stores meter data. Series are created on
// first use; values are keyed (series, start): a resent equal value
// changes nothing, a different one is a correction (a new version; the
// old version stays readable). Times are UTC with whole seconds.
type MeterTx interface {
	// PutMeterReadings stores a batch of readings received at receivedAt
	// from sender, as one ingestion named by batchID (its audit object
	// id). values may hold several series, in any order, and the same
	// (series, start) more than once only with the same value (EInvalid
	// otherwise). It returns the counts per series, in the order each
	// series first appears in values.
	PutMeterReadings(ctx context.Context, values []MeterValue, receivedAt time.Time, sender, batchID string) ([]MeterSeriesPut, error)
	// MeterReadings returns the current version of every reading of a
	// series with from <= start < to, by start. A series that does not
	// exist has none.
	MeterReadings(ctx context.Context, key MeterSeriesKey, from, to time.Time) ([]MeterRecord, error)
	// MeterPoints returns, per window, the current value of every
	// reading of its series with From <= start < To, by start (nil for a
	// series that does not exist): many series in a few statements, for
	// readers of thousands of series at once.
	MeterPoints(ctx context.Context, windows []MeterWindow) ([][]MeterPoint, error)
	// MeterReadingVersions returns every version of one reading, oldest
	// first; none when it was never stored.
	MeterReadingVersions(ctx context.Context, key MeterSeriesKey, start time.Time) ([]MeterRecord, error)
	// ListMeterSeries lists the series of a resource or metering point.
	ListMeterSeries(ctx context.Context, subjectKind, subjectID string) ([]MeterSeries, error)
	// ListMeterSeriesOf is ListMeterSeries for many subjects of one kind
	// at once; subjects without series are absent from the map.
	ListMeterSeriesOf(ctx context.Context, subjectKind string, ids []string) (map[string][]MeterSeries, error)
	// MeterSenders reads, for the subjects ids of one kind
	// (MeterSubjectResource or MeterSubjectMeteringPoint), who sends their
	// meter data: a resource's FSP and its status, a metering point's DSO.
	// A subject that does not exist is absent from the map.
	MeterSenders(ctx context.Context, subjectKind string, ids []string) (map[string]MeterSender, error)
}

// MeterSender is who sends the meter data of a resource or metering
// point (MeterTx.MeterSenders).
type MeterSender struct {
	Party  string // the FSP operating the resource, the DSO of the metering point
	Status string // the resource's status; "" for a metering point
}

// MaxMeterBatch is the most readings one ingestion takes.
const MaxMeterBatch = 100_000

// MaxMeterQueryIntervals is the most intervals one read covers.
const MaxMeterQueryIntervals = 100_000

// MeterSeriesRef names a series on the wire.
type MeterSeriesRef struct {
	MeteringPointID string   `json:"metering_point_id,omitempty"`
	ResourceID      string   `json:"resource_id,omitempty"`
	Quantity        string   `json:"quantity"`
	Flow            string   `json:"flow"`
	Resolution      Duration `json:"resolution"`
}

// Ref returns the wire form of a series key.
func (k MeterSeriesKey) Ref() MeterSeriesRef {
	r := MeterSeriesRef{Quantity: k.Quantity, Flow: k.Flow, Resolution: FormatDuration(k.Resolution)}
	if k.SubjectKind == MeterSubjectResource {
		r.ResourceID = k.SubjectID
	} else {
		r.MeteringPointID = k.SubjectID
	}
	return r
}

// Key validates a series reference and returns its key.
func (r MeterSeriesRef) Key(prefix string) (MeterSeriesKey, error) {
	kind, id, err := ParseMeterSubject(prefix, r.MeteringPointID, r.ResourceID)
	if err != nil {
		return MeterSeriesKey{}, err
	}
	if err := CheckMeterQuantity(prefix, r.Quantity, r.Flow); err != nil {
		return MeterSeriesKey{}, err
	}
	res, err := CheckMeterResolution(prefix+"resolution", r.Resolution)
	if err != nil {
		return MeterSeriesKey{}, err
	}
	return MeterSeriesKey{SubjectKind: kind, SubjectID: id, Quantity: r.Quantity, Flow: r.Flow, Resolution: res}, nil
}

// MeterIngestResult is what one ingestion did. When it changed anything,
// its audit entry (object kind meter_batch, object id BatchID) carries
// the SHA-256 of this result's JSON as payload_hash, so the sender can
// prove with the response alone what was accepted.
type MeterIngestResult struct {
	BatchID    string    `json:"batch_id,omitempty" doc:"the ingestion's id, the object id of its audit entry; absent when nothing changed"`
	Sender     string    `json:"sender"`
	ReceivedAt time.Time `json:"received_at"`
	Received   int       `json:"received" doc:"readings in the request"`
	MeterPutStats
	Series []MeterSeriesResult `json:"series" doc:"per series"`
	// ReadingsSHA256 hashes the readings as parsed: one line per reading
	// "kind,subject id,quantity,flow,resolution s,start s,milli-units\n".
	ReadingsSHA256 string `json:"readings_sha256,omitempty" doc:"SHA-256 over one line per reading, in the order sent: subject kind (resource or metering_point), subject id, quantity, flow, resolution in s, start in Unix s, value in milli-units, comma-separated, each ending in a newline; absent when nothing changed"`
}

// MeterSeriesResult is what an ingestion did to one series.
type MeterSeriesResult struct {
	MeterSeriesRef
	MeterPutStats
	First time.Time `json:"first" doc:"earliest start sent"`
	Last  time.Time `json:"last" doc:"latest start sent"`
}

// MeterQuery asks for the readings of one series with From <= start < To,
// in Unit (default: the quantity's base unit).
type MeterQuery struct {
	MeterSeriesRef
	From, To time.Time
	Unit     string
}

// MeterVersionQuery asks for every version of one reading.
type MeterVersionQuery struct {
	MeterSeriesRef
	Start time.Time
	Unit  string
}

// MeterReadingOut is one reading (or one version of it) as read back.
type MeterReadingOut struct {
	Start        time.Time   `json:"start"`
	Value        json.Number `json:"value" doc:"exact decimal in the response's unit"`
	Version      int64       `json:"version" doc:"1 for the first value, +1 per correction"`
	ReceivedAt   time.Time   `json:"received_at"`
	BatchID      string      `json:"batch_id" doc:"the ingestion that stored this version"`
	Sender       string      `json:"sender,omitempty" doc:"party that sent this version (versions only)"`
	SupersededAt *time.Time  `json:"superseded_at,omitempty" doc:"when a correction replaced this version (versions only)"`
}

// MeterGap is a run of intervals without a reading: [Start, End).
type MeterGap struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Intervals int       `json:"intervals"`
}

// MeterSeriesData is a series' readings over a range, with its gaps.
type MeterSeriesData struct {
	Series   MeterSeriesRef    `json:"series"`
	Unit     string            `json:"unit"`
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	Readings []MeterReadingOut `json:"readings" nullable:"false"`
	Gaps     []MeterGap        `json:"gaps" nullable:"false" doc:"intervals of the range that have ended without a reading, merged into runs"`
	Missing  int               `json:"missing" doc:"intervals in the gaps"`
}

// MeterVersions is every version of one reading, oldest first.
type MeterVersions struct {
	Series   MeterSeriesRef    `json:"series"`
	Unit     string            `json:"unit"`
	Start    time.Time         `json:"start"`
	Versions []MeterReadingOut `json:"versions" nullable:"false"`
}

// MeterGaps returns the runs of intervals of resolution res with start in
// [from, to) that have ended by now and have no reading; starts must be
// sorted. It also returns how many intervals are missing.
func MeterGaps(starts []time.Time, from, to time.Time, res time.Duration, now time.Time) ([]MeterGap, int) {
	sec := int64(res / time.Second)
	first := from.Unix()
	if from.Nanosecond() > 0 {
		first++
	}
	if r := first % sec; r != 0 {
		if r < 0 {
			r += sec
		}
		first += sec - r
	}
	end := to.Unix()
	if to.Nanosecond() > 0 {
		end++
	}
	// only intervals that have ended: start + res <= now
	if lim := now.Unix() - sec + 1; end > lim {
		end = lim
	}
	var gaps []MeterGap
	missing := 0
	add := func(a, b int64) { // intervals with start in [a, b)
		if b <= a {
			return
		}
		n := int((b - a + sec - 1) / sec)
		gaps = append(gaps, MeterGap{Start: time.Unix(a, 0).UTC(), End: time.Unix(a+int64(n)*sec, 0).UTC(), Intervals: n})
		missing += n
	}
	next := first
	for _, s := range starts {
		u := s.Unix()
		if u < next {
			continue
		}
		if u >= end {
			break
		}
		add(next, u)
		next = u + sec
	}
	add(next, end)
	return gaps, missing
}
