package flexhub

import (
	"strings"
	"testing"
	"time"
)

// FuzzDuration: any text either parses to a non-negative duration that
// survives a round trip through FormatDuration, or is refused with a field
// error; it never panics.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"PT15M", "PT1H30M", "P1D", "PT12M30S", "PT0.5S", "P", "PT", "15m", "PT-1M", "P1W", "PT1H1H", "PT.M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Duration(s).Parse("d")
		if err != nil {
			if ErrorField(err) != "d" || ErrorKind(err) != EInvalid {
				t.Fatalf("%q: error %v must be an invalid-field error on d", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("%q parsed to negative %v", s, d)
		}
		if d%time.Second == 0 && d < 1000*time.Hour {
			back, err := FormatDuration(d).Parse("d")
			if err != nil || back != d {
				t.Fatalf("%q → %v → %q → %v, %v", s, d, FormatDuration(d), back, err)
			}
		}
	})
}

// FuzzEIC: ValidateEIC accepts exactly the 16-character codes whose last
// character is the check character of the first 15.
func FuzzEIC(f *testing.F) {
	for _, s := range []string{"10YDE-RWENET---I", "10X1001A1001A450", "10YNL----------L", "10YNL----------M", "", "10Y", "1ÿYNL----------L"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateEIC("eic", s)
		if err != nil {
			if !strings.Contains(ErrorMessage(err), "EIC") && !strings.Contains(ErrorMessage(err), "not an EIC") {
				t.Fatalf("%q: unhelpful message %q", s, ErrorMessage(err))
			}
			return
		}
		if len(s) != 16 || EICCheckChar(s) != s[15] {
			t.Fatalf("%q accepted but is not a valid EIC", s)
		}
	})
}

// FuzzPower: a quantity is refused with a field error or converts to
// non-negative watts; never a panic, never a negative.
func FuzzPower(f *testing.F) {
	f.Add(5.0, "kW")
	f.Add(-1.0, "MW")
	f.Add(1e300, "W")
	f.Add(0.0004, "kWh")
	f.Fuzz(func(t *testing.T, v float64, unit string) {
		w, err := (&Power{Value: v, Unit: unit}).Watts("p")
		if err != nil {
			if !strings.HasPrefix(ErrorField(err), "p.") {
				t.Fatalf("%v %q: error must name p.value or p.unit: %v", v, unit, err)
			}
			return
		}
		if w < 0 {
			t.Fatalf("%v %q → %d W", v, unit, w)
		}
	})
}
