package flexhub

import (
	"math"
	"strconv"
	"time"
)

// Quantities on the wire always carry their unit, so that "5" can never be
// read as 5 W by one party and 5 MW by another. Inside flexhub they are
// integers in the base unit (W, var, Wh, W/min), so arithmetic is exact.

var powerScale = map[string]float64{"W": 1, "kW": 1e3, "MW": 1e6}
var reactiveScale = map[string]float64{"var": 1, "kvar": 1e3, "Mvar": 1e6}
var energyScale = map[string]float64{"Wh": 1, "kWh": 1e3, "MWh": 1e6}
var rampScale = map[string]float64{"W/min": 1, "kW/min": 1e3, "MW/min": 1e6}

// Power is active power with an explicit unit.
type Power struct {
	Value float64 `json:"value" minimum:"0"`
	Unit  string  `json:"unit" enum:"W,kW,MW"`
}

// ReactivePower is reactive power with an explicit unit.
type ReactivePower struct {
	Value float64 `json:"value" minimum:"0"`
	Unit  string  `json:"unit" enum:"var,kvar,Mvar"`
}

// Energy is an amount of energy with an explicit unit.
type Energy struct {
	Value float64 `json:"value" minimum:"0"`
	Unit  string  `json:"unit" enum:"Wh,kWh,MWh"`
}

// Ramp is a rate of change of active power with an explicit unit.
type Ramp struct {
	Value float64 `json:"value" minimum:"0"`
	Unit  string  `json:"unit" enum:"W/min,kW/min,MW/min"`
}

// KW returns a Power of v kilowatts.
func KW(v float64) *Power { return &Power{Value: v, Unit: "kW"} }

// convert checks unit and range and returns the value in the base unit.
func convert(field string, value float64, unit string, scales map[string]float64, what string) (int64, error) {
	scale, ok := scales[unit]
	if !ok {
		units := ""
		for _, u := range sortedKeys(scales) {
			if units != "" {
				units += ", "
			}
			units += u
		}
		return 0, FieldErrorf(field+".unit", "%q is not a unit of %s; use one of %s", unit, what, units)
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return 0, FieldErrorf(field+".value", "not a number")
	}
	if value < 0 {
		return 0, FieldErrorf(field+".value", "%s must not be negative, got %v %s", what, value, unit)
	}
	base := value * scale
	if base > 1e13 {
		return 0, FieldErrorf(field+".value", "%v %s is beyond any single resource", value, unit)
	}
	return int64(math.Round(base)), nil
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// order by scale so the message reads W, kW, MW
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && m[keys[j]] < m[keys[j-1]]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// Watts validates the quantity and returns it in W. A nil Power is 0 W.
func (p *Power) Watts(field string) (int64, error) {
	if p == nil {
		return 0, nil
	}
	return convert(field, p.Value, p.Unit, powerScale, "active power")
}

// Vars validates the quantity and returns it in var.
func (p *ReactivePower) Vars(field string) (int64, error) {
	if p == nil {
		return 0, nil
	}
	return convert(field, p.Value, p.Unit, reactiveScale, "reactive power")
}

// WattHours validates the quantity and returns it in Wh.
func (e *Energy) WattHours(field string) (int64, error) {
	if e == nil {
		return 0, nil
	}
	return convert(field, e.Value, e.Unit, energyScale, "energy")
}

// WattsPerMinute validates the quantity and returns it in W/min.
func (r *Ramp) WattsPerMinute(field string) (int64, error) {
	if r == nil {
		return 0, nil
	}
	return convert(field, r.Value, r.Unit, rampScale, "ramp rate")
}

// Duration is a length of time on the wire as ISO 8601 (PT15M) or Go
// syntax (15m). It is kept as seconds.
type Duration string

// Parse returns the duration, or a field error.
func (d Duration) Parse(field string) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	v, err := parseISODuration(string(d))
	if err != nil {
		return 0, FieldErrorf(field, "%q is not a duration: use ISO 8601 such as PT15M or PT1H30M", string(d))
	}
	if v < 0 {
		return 0, FieldErrorf(field, "duration must not be negative")
	}
	return v, nil
}

// parseISODuration accepts the time part of ISO 8601 durations (PnDTnHnMnS)
// which is all flexibility products need.
func parseISODuration(s string) (time.Duration, error) {
	if len(s) < 2 || s[0] != 'P' {
		return 0, errBadDuration
	}
	var total time.Duration
	inTime := false
	num := ""
	seen := false
	for _, c := range s[1:] {
		switch {
		case c == 'T':
			if inTime || num != "" {
				return 0, errBadDuration
			}
			inTime = true
		case (c >= '0' && c <= '9') || c == '.':
			num += string(c)
		default:
			if num == "" {
				return 0, errBadDuration
			}
			var f float64
			var frac, div float64 = 0, 1
			dot := false
			for _, d := range num {
				if d == '.' {
					if dot {
						return 0, errBadDuration
					}
					dot = true
					continue
				}
				if dot {
					div *= 10
					frac += float64(d-'0') / div
				} else {
					f = f*10 + float64(d-'0')
				}
			}
			f += frac
			var unit time.Duration
			switch {
			case c == 'D' && !inTime:
				unit = 24 * time.Hour
			case c == 'W' && !inTime:
				unit = 7 * 24 * time.Hour
			case c == 'H' && inTime:
				unit = time.Hour
			case c == 'M' && inTime:
				unit = time.Minute
			case c == 'S' && inTime:
				unit = time.Second
			default:
				return 0, errBadDuration
			}
			total += time.Duration(f * float64(unit))
			num = ""
			seen = true
		}
	}
	if num != "" || !seen {
		return 0, errBadDuration
	}
	return total, nil
}

var errBadDuration = Errorf(EInvalid, "bad duration")

// FormatDuration renders d as ISO 8601.
func FormatDuration(d time.Duration) Duration {
	if d == 0 {
		return "PT0S"
	}
	s := "PT"
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	sec := d / time.Second
	if h > 0 {
		s += strconv.FormatInt(int64(h), 10) + "H"
	}
	if m > 0 {
		s += strconv.FormatInt(int64(m), 10) + "M"
	}
	if sec > 0 {
		s += strconv.FormatInt(int64(sec), 10) + "S"
	}
	return Duration(s)
}
