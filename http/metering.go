package http

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerMetering) }

// MaxMeterBody is the largest meter-data request body: about 100,000
// readings of JSON, far more as CSV.
const MaxMeterBody = 16 << 20

// meterCSVColumns are the CSV columns, in the documented order (a file
// may order them differently; the header row names them).
var meterCSVColumns = []string{"metering_point_id", "resource_id", "quantity", "flow", "start", "resolution", "value", "unit"}

// meterIngestInput takes the body raw: JSON and CSV are decoded here, so
// that a bad reading is named by its index and a 10,000-reading body is
// not first decoded into generic maps for schema validation.
type meterIngestInput struct {
	ContentType string `header:"Content-Type" doc:"application/json (the default) or text/csv"`
	RawBody     []byte `contentType:"text/csv"`
}

// MeterIngestRequest is the JSON body of an ingestion.
type MeterIngestRequest struct {
	Readings []flexhub.MeterReading `json:"readings" maxItems:"100000" nullable:"false"`
}

type meterIngestOutput struct {
	Body *flexhub.MeterIngestResult
}

// MeterSeriesQuery names a series in the query string.
type MeterSeriesQuery struct {
	ResourceID      string `query:"resource_id" doc:"the resource (or metering_point_id)"`
	MeteringPointID string `query:"metering_point_id" doc:"the metering point (or resource_id)"`
	Quantity        string `query:"quantity" required:"true" enum:"active_power,reactive_power,active_energy,reactive_energy"`
	Flow            string `query:"flow" required:"true" enum:"import,export"`
	Resolution      string `query:"resolution" required:"true" doc:"ISO 8601, e.g. PT15M"`
	Unit            string `query:"unit" doc:"unit of the values returned; default the base unit (W, var, Wh, varh)"`
}

func (q MeterSeriesQuery) ref() flexhub.MeterSeriesRef {
	return flexhub.MeterSeriesRef{ResourceID: q.ResourceID, MeteringPointID: q.MeteringPointID, Quantity: q.Quantity, Flow: q.Flow, Resolution: flexhub.Duration(q.Resolution)}
}

type meterReadingsInput struct {
	MeterSeriesQuery
	From string `query:"from" required:"true" doc:"RFC 3339: readings with start >= from"`
	To   string `query:"to" required:"true" doc:"RFC 3339: readings with start < to"`
}

type meterVersionsInput struct {
	MeterSeriesQuery
	Start string `query:"start" required:"true" doc:"RFC 3339: the start of the reading"`
}

type meterSeriesListInput struct {
	ResourceID      string `query:"resource_id"`
	MeteringPointID string `query:"metering_point_id"`
}

type meterSeriesListOutput struct {
	Body struct {
		Items []flexhub.MeterSeriesRef `json:"items" nullable:"false"`
	}
}

// queryTime parses an RFC 3339 query parameter.
func queryTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	if err != nil {
		return time.Time{}, flexhub.FieldErrorf("query."+name, "%q is not an RFC 3339 time such as 2026-05-01T12:00:00Z", v)
	}
	return t.UTC(), nil
}

const meterRules = "Every reading names exactly one of metering_point_id and resource_id (meter.subject); only the FSP operating the resource, or the DSO of the metering point, " +
	"sends its data (403 meter.not_operator); a resource pending its consumer's confirmation or rejected takes none (meter.resource_not_active). " +
	"quantity active_power|reactive_power|active_energy|reactive_energy with a unit of it (meter.unit for an unknown unit, meter.unit_mismatch for a unit of another quantity: " +
	"W kW MW, var kvar Mvar, Wh kWh MWh, varh kvarh Mvarh); flow import|export; resolution 1 s to 15 min dividing 15 min (meter.resolution); " +
	"start RFC 3339 (meter.start), a multiple of the resolution since the Unix epoch (meter.misaligned), its interval ended no later than 5 s from now (meter.future); " +
	"value a non-negative decimal (meter.value, meter.negative, meter.value_range), read exactly to a thousandth of W/var/Wh/varh. " +
	"Two different values for one reading in one request: meter.duplicate. Malformed JSON or CSV: 400 meter.malformed. " +
	"All or nothing: the first bad reading is named (body.readings[17].unit; for CSV the line too) and nothing is stored."

func (s *Server) registerMetering() {
	tags := []string{"Metering"}
	huma.Register(s.api, huma.Operation{OperationID: "ingest-meter-readings", Method: http.MethodPost, Path: "/v1/meter-readings", Tags: tags,
		Summary: "Send meter readings (JSON or CSV)", MaxBodyBytes: MaxMeterBody,
		Description: "A batch of readings, up to 100,000 or 16 MiB (413 beyond), as JSON `{\"readings\": [...]}` or as `text/csv` with the header row " +
			"`" + strings.Join(meterCSVColumns, ",") + "`. A resent reading equal to the stored one changes nothing (unchanged); a different value for the same " +
			"series and start is a correction: a new version, the old one stays readable (GET /v1/meter-readings/versions). Late data is accepted. " +
			"One transaction and one audit entry (meter.ingested) per request; a request that changes nothing writes nothing. " + meterRules},
		func(ctx context.Context, in *meterIngestInput) (*meterIngestOutput, error) {
			readings, isCSV, err := decodeMeterBody(in.ContentType, in.RawBody)
			if err != nil {
				return nil, problem(err)
			}
			res, err := s.svc.IngestMeterReadings(ctx, readings)
			if err != nil {
				if isCSV {
					err = withCSVLine(err)
				}
				return nil, problem(err)
			}
			return &meterIngestOutput{Body: res}, nil
		})
	// Document the JSON body beside the CSV one; the handler decodes both.
	if op := s.api.OpenAPI().Paths["/v1/meter-readings"].Post; op != nil && op.RequestBody != nil {
		op.RequestBody.Content["application/json"] = &huma.MediaType{Schema: s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(MeterIngestRequest{}), true, "MeterIngestRequest")}
		op.RequestBody.Content["text/csv"] = &huma.MediaType{Schema: &huma.Schema{Type: "string",
			Description: "RFC 4180 CSV, one reading a line after the header row " + strings.Join(meterCSVColumns, ",") + " (the columns in any order; leave the unused subject column empty)"}}
	}

	huma.Register(s.api, huma.Operation{OperationID: "read-meter-readings", Method: http.MethodGet, Path: "/v1/meter-readings", Tags: tags,
		Summary: "Read a series of meter readings with its gaps",
		Description: "The current version of every reading of one series (subject, quantity, flow, resolution) with from <= start < to, at most 100,000 intervals, " +
			"and the gaps: intervals of the range that have ended without a reading, merged into runs. Visible to whoever may see the resource or metering point (404 otherwise)."},
		func(ctx context.Context, in *meterReadingsInput) (*struct{ Body *flexhub.MeterSeriesData }, error) {
			from, err := queryTime("from", in.From)
			if err != nil {
				return nil, problem(err)
			}
			to, err := queryTime("to", in.To)
			if err != nil {
				return nil, problem(err)
			}
			d, err := s.svc.MeterReadings(ctx, flexhub.MeterQuery{MeterSeriesRef: in.ref(), From: from, To: to, Unit: in.Unit})
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *flexhub.MeterSeriesData }{d}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "read-meter-reading-versions", Method: http.MethodGet, Path: "/v1/meter-readings/versions", Tags: tags,
		Summary:     "Read every version of one meter reading",
		Description: "Oldest first: each correction's predecessor with when it was superseded, and who sent each version. Empty when the reading was never sent."},
		func(ctx context.Context, in *meterVersionsInput) (*struct{ Body *flexhub.MeterVersions }, error) {
			start, err := queryTime("start", in.Start)
			if err != nil {
				return nil, problem(err)
			}
			v, err := s.svc.MeterReadingVersions(ctx, flexhub.MeterVersionQuery{MeterSeriesRef: in.ref(), Start: start, Unit: in.Unit})
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *flexhub.MeterVersions }{v}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-meter-series", Method: http.MethodGet, Path: "/v1/meter-series", Tags: tags,
		Summary: "List the meter series of a resource or metering point", Description: "Visible to whoever may see the resource or metering point (404 otherwise)."},
		func(ctx context.Context, in *meterSeriesListInput) (*meterSeriesListOutput, error) {
			items, err := s.svc.ListMeterSeries(ctx, in.MeteringPointID, in.ResourceID)
			if err != nil {
				return nil, problem(err)
			}
			out := &meterSeriesListOutput{}
			out.Body.Items = items
			return out, nil
		})
	// Values are exact decimals (json.Number in Go), numbers on the wire.
	zero := 0.0
	for name, min := range map[string]*float64{"MeterReading": &zero, "MeterReadingOut": nil} {
		if sc := s.api.OpenAPI().Components.Schemas.Map()[name]; sc != nil && sc.Properties["value"] != nil {
			sc.Properties["value"] = &huma.Schema{Type: "number", Minimum: min, Description: sc.Properties["value"].Description}
		}
	}
}

// malformed is a 400 problem naming the meter.malformed rule.
func malformed(loc, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &huma.ErrorModel{Status: http.StatusBadRequest, Title: http.StatusText(http.StatusBadRequest), Type: RuleURI("meter.malformed"), Detail: msg,
		Errors: []*huma.ErrorDetail{{Message: msg, Location: loc}}}
}

// decodeMeterBody reads JSON (the default) or CSV readings.
func decodeMeterBody(contentType string, body []byte) ([]flexhub.MeterReading, bool, error) {
	mt := "application/json"
	if contentType != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, false, huma.Error415UnsupportedMediaType(fmt.Sprintf("Content-Type %q: send application/json or text/csv", contentType))
		}
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		r, err := decodeMeterJSON(body)
		return r, false, err
	case mt == "text/csv":
		r, err := decodeMeterCSV(body)
		return r, true, err
	}
	return nil, false, huma.Error415UnsupportedMediaType(fmt.Sprintf("Content-Type %s: send application/json or text/csv", mt))
}

// decodeMeterJSON streams {"readings": [...]}: each reading is decoded on
// its own, so an error names its index.
func decodeMeterJSON(body []byte) ([]flexhub.MeterReading, error) {
	if out, ok := fastMeterJSON(body); ok {
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	bad := func(loc string, err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return malformed(loc, "malformed JSON at byte %d: %v", se.Offset, err)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field != "" {
				loc += "." + te.Field
			}
			return malformed(loc, "%s must be a JSON %s, not %s", strings.TrimPrefix(loc, "body."), jsonKind(te.Type), te.Value)
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return malformed(loc, "the JSON ends early: send {\"readings\": [...]}")
		}
		return malformed(loc, "%v", err)
	}
	delim := func(want json.Delim, loc string) error {
		tok, err := dec.Token()
		if err != nil {
			return bad(loc, err)
		}
		if d, ok := tok.(json.Delim); !ok || d != want {
			return malformed(loc, "expected %q, found %v: send {\"readings\": [...]}", want, tok)
		}
		return nil
	}
	if err := delim('{', "body"); err != nil {
		return nil, err
	}
	var out []flexhub.MeterReading
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("body", err)
		}
		if tok != "readings" {
			return nil, malformed(fmt.Sprintf("body.%v", tok), "unexpected property %v: the body is {\"readings\": [...]}", tok)
		}
		if seen {
			return nil, malformed("body.readings", "readings appears twice")
		}
		seen = true
		if err := delim('[', "body.readings"); err != nil {
			return nil, err
		}
		out = make([]flexhub.MeterReading, 0, len(body)/160)
		for i := 0; dec.More(); i++ {
			if i >= flexhub.MaxMeterBatch {
				return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.batch_size", "readings", "send at most %d readings in one request", flexhub.MaxMeterBatch)
			}
			out = append(out, flexhub.MeterReading{})
			if err := dec.Decode(&out[i]); err != nil {
				return nil, bad("body.readings["+strconv.Itoa(i)+"]", err)
			}
		}
		if err := delim(']', "body.readings"); err != nil {
			return nil, err
		}
	}
	if err := delim('}', "body"); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("body", "unexpected data after the JSON object")
	}
	if !seen {
		return nil, malformed("body.readings", "the body is {\"readings\": [...]}: readings is missing")
	}
	return out, nil
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		if t == reflect.TypeOf(json.Number("")) {
			return "number"
		}
		return "string"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return t.Kind().String()
}

// decodeMeterCSV reads CSV with a header row naming the columns.
func decodeMeterCSV(body []byte) ([]flexhub.MeterReading, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.ReuseRecord = true
	r.TrimLeadingSpace = true
	head, err := r.Read()
	if err == io.EOF {
		return nil, malformed("body", "empty CSV: the first line names the columns %s", strings.Join(meterCSVColumns, ","))
	}
	if err != nil {
		return nil, malformed("body", "malformed CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		known := false
		for _, c := range meterCSVColumns {
			known = known || c == h
		}
		if !known {
			return nil, malformed("body", "CSV line 1: unknown column %q; the columns are %s", h, strings.Join(meterCSVColumns, ","))
		}
		if _, dup := col[h]; dup {
			return nil, malformed("body", "CSV line 1: column %q appears twice", h)
		}
		col[h] = i
	}
	for _, c := range meterCSVColumns {
		if _, ok := col[c]; !ok && c != "metering_point_id" && c != "resource_id" {
			return nil, malformed("body", "CSV line 1: column %s is missing; the columns are %s", c, strings.Join(meterCSVColumns, ","))
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	out := make([]flexhub.MeterReading, 0, len(body)/100)
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, malformed("body", "malformed CSV: %v", err)
		}
		if len(out) >= flexhub.MaxMeterBatch {
			return nil, flexhub.RuleErrorf(flexhub.EInvalid, "meter.batch_size", "readings", "send at most %d readings in one request", flexhub.MaxMeterBatch)
		}
		out = append(out, flexhub.MeterReading{
			MeteringPointID: get(rec, "metering_point_id"), ResourceID: get(rec, "resource_id"),
			Quantity: get(rec, "quantity"), Flow: get(rec, "flow"), Start: get(rec, "start"),
			Resolution: flexhub.Duration(get(rec, "resolution")), Value: json.Number(get(rec, "value")), Unit: get(rec, "unit"),
		})
	}
	return out, nil
}

// withCSVLine adds the CSV line to an error naming readings[i]: line
// i+2, after the header.
func withCSVLine(err error) error {
	var e *flexhub.Error
	if !errors.As(err, &e) || !strings.HasPrefix(e.Field, "readings[") {
		return err
	}
	end := strings.IndexByte(e.Field, ']')
	i, convErr := strconv.Atoi(e.Field[len("readings["):max(end, len("readings["))])
	if end < 0 || convErr != nil {
		return err
	}
	c := *e
	c.Message = fmt.Sprintf("CSV line %d: %s", i+2, e.Message)
	return &c
}

// meterJSONScanner decodes the common shape of an ingestion body —
// {"readings":[{...}, ...]} with flat objects of plain strings and
// numbers — without reflection, several times faster than encoding/json
// on the 10,000-reading bodies senders post. Anything else (escapes,
// unknown properties, wrong types, bad syntax) makes it give up, and
// decodeMeterJSON's encoding/json path answers with the precise error.
type meterJSONScanner struct {
	b      []byte
	i      int
	intern map[string]string // ids, quantities, units repeat: one copy each
	last   [6]string         // the previous reading's value of each interned field
}

func (s *meterJSONScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *meterJSONScanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes; ok false otherwise.
func (s *meterJSONScanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			s.i++
			return s.b[start : s.i-1], true
		}
		if c == '\\' || c < 0x20 {
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// num reads a JSON number's text.
func (s *meterJSONScanner) num() ([]byte, bool) {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	if s.i == start || !json.Valid(s.b[start:s.i]) {
		return nil, false
	}
	return s.b[start:s.i], true
}

// interned returns b as a string, shared with the previous reading's
// field f or any earlier equal value.
func (s *meterJSONScanner) interned(f int, b []byte) string {
	if string(b) == s.last[f] {
		return s.last[f]
	}
	v := s.internMap(b)
	s.last[f] = v
	return v
}

func (s *meterJSONScanner) internMap(b []byte) string {
	if v, ok := s.intern[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(s.intern) < 100_000 {
		s.intern[v] = v
	}
	return v
}

func (s *meterJSONScanner) reading(r *flexhub.MeterReading) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.eat(':') {
			return false
		}
		if string(key) == "value" {
			s.ws()
			if s.i < len(s.b) && s.b[s.i] == '"' {
				return false // a quoted number: let encoding/json judge it
			}
			n, ok := s.num()
			if !ok {
				return false
			}
			r.Value = json.Number(n)
		} else {
			v, ok := s.str()
			if !ok {
				return false
			}
			switch string(key) {
			case "metering_point_id":
				r.MeteringPointID = s.interned(0, v)
			case "resource_id":
				r.ResourceID = s.interned(1, v)
			case "quantity":
				r.Quantity = s.interned(2, v)
			case "flow":
				r.Flow = s.interned(3, v)
			case "start":
				r.Start = string(v)
			case "resolution":
				r.Resolution = flexhub.Duration(s.interned(4, v))
			case "unit":
				r.Unit = s.interned(5, v)
			default:
				return false
			}
		}
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// fastMeterJSON decodes a well-formed body of the common shape; ok false
// means "decode it the careful way".
func fastMeterJSON(body []byte) ([]flexhub.MeterReading, bool) {
	s := &meterJSONScanner{b: body, intern: map[string]string{}}
	if !s.eat('{') {
		return nil, false
	}
	key, ok := s.str()
	if !ok || string(key) != "readings" || !s.eat(':') || !s.eat('[') {
		return nil, false
	}
	out := make([]flexhub.MeterReading, 0, len(body)/160)
	if !s.eat(']') {
		for {
			if len(out) >= flexhub.MaxMeterBatch {
				return nil, false
			}
			out = append(out, flexhub.MeterReading{})
			if !s.reading(&out[len(out)-1]) {
				return nil, false
			}
			if s.eat(']') {
				break
			}
			if !s.eat(',') {
				return nil, false
			}
		}
	}
	if !s.eat('}') {
		return nil, false
	}
	s.ws()
	return out, s.i == len(s.b)
}
