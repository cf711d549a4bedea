package app

import (
	"encoding/json"

	"github.com/flexhub/flexhub"
)

// decodeMeterMessage decodes a meter topic's payload exactly as
// strictJSON does (unknown fields refused, numbers kept as written, one
// JSON value), with the same result and the same errors. The shape every
// publisher sends, an object holding "readings", an array of flat reading
// objects with ASCII strings without escapes and number values, is read
// by a small scanner without reflection; anything else, valid or not,
// goes to strictJSON, which decides and names the error.
func decodeMeterMessage(payload []byte, m *MeterMessage) error {
	if scanMeterMessage(payload, m) {
		return nil
	}
	*m = MeterMessage{}
	return strictJSON(payload, m)
}

// meterScanner reads the common shape of a meter message; each method
// reports false for anything outside it.
type meterScanner struct {
	b []byte
	p int
	// Strings repeated across readings (the resource, quantity, flow,
	// resolution, unit) are allocated once per message.
	seen []string
}

func (s *meterScanner) ws() {
	for s.p < len(s.b) {
		switch s.b[s.p] {
		case ' ', '\t', '\n', '\r':
			s.p++
		default:
			return
		}
	}
}

// next consumes c, after whitespace.
func (s *meterScanner) next(c byte) bool {
	s.ws()
	if s.p < len(s.b) && s.b[s.p] == c {
		s.p++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *meterScanner) str() ([]byte, bool) {
	s.ws()
	if s.p >= len(s.b) || s.b[s.p] != '"' {
		return nil, false
	}
	start := s.p + 1
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			s.p = i + 1
			return s.b[start:i], true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// shared returns b as a string, the same string for equal bytes within
// the message.
func (s *meterScanner) shared(b []byte) string {
	for _, x := range s.seen {
		if x == string(b) {
			return x
		}
	}
	x := string(b)
	if len(s.seen) < 16 {
		s.seen = append(s.seen, x)
	}
	return x
}

// num reads a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *meterScanner) num() ([]byte, bool) {
	s.ws()
	b, i := s.b, s.p
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	out := b[s.p:i]
	s.p = i
	return out, true
}

func scanMeterMessage(payload []byte, m *MeterMessage) bool {
	s := &meterScanner{b: payload}
	if !s.next('{') {
		return false
	}
	if k, ok := s.str(); !ok || string(k) != "readings" || !s.next(':') || !s.next('[') {
		return false
	}
	if s.next(']') {
		return false // empty: strictJSON says what it is
	}
	var readings []flexhub.MeterReading
	for {
		readings = append(readings, flexhub.MeterReading{})
		if !s.reading(&readings[len(readings)-1]) {
			return false
		}
		if s.next(',') {
			continue
		}
		if s.next(']') {
			break
		}
		return false
	}
	if !s.next('}') {
		return false
	}
	s.ws()
	if s.p != len(s.b) {
		return false
	}
	m.Readings = readings
	return true
}

// reading reads one reading object with at least one field.
func (s *meterScanner) reading(r *flexhub.MeterReading) bool {
	if !s.next('{') {
		return false
	}
	for {
		k, ok := s.str()
		if !ok || !s.next(':') {
			return false
		}
		if string(k) == "value" {
			v, ok := s.num()
			if !ok {
				return false
			}
			r.Value = json.Number(v)
		} else {
			v, ok := s.str()
			if !ok {
				return false
			}
			switch string(k) {
			case "metering_point_id":
				r.MeteringPointID = s.shared(v)
			case "resource_id":
				r.ResourceID = s.shared(v)
			case "quantity":
				r.Quantity = s.shared(v)
			case "flow":
				r.Flow = s.shared(v)
			case "start":
				r.Start = string(v)
			case "resolution":
				r.Resolution = flexhub.Duration(s.shared(v))
			case "unit":
				r.Unit = s.shared(v)
			default:
				return false // unknown, or another spelling: strictJSON decides
			}
		}
		if s.next(',') {
			continue
		}
		return s.next('}')
	}
}
