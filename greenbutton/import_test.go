package greenbutton

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
)

// A small hand-written feed, entry by entry, for Import's rules.
const (
	upPath = "/espi/1_1/resource/Subscription/s/UsagePoint/u"
	mrPath = upPath + "/MeterReading/m"
	rtPath = "/espi/1_1/resource/ReadingType/r"
)

func entry(id, self, up, related, content string) string {
	s := "<entry>\n<id>" + id + "</id>\n"
	if self != "" {
		s += `<link rel="self" href="` + self + `"/>` + "\n"
	}
	if up != "" {
		s += `<link rel="up" href="` + up + `"/>` + "\n"
	}
	if related != "" {
		s += `<link rel="related" href="` + related + `"/>` + "\n"
	}
	return s + "<title>" + id + "</title>\n<content>" + content + "</content>\n</entry>\n"
}

func feed(entries ...string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">` + "\n" +
		"<id>urn:feed</id>\n<title>t</title>\n" + strings.Join(entries, "") + "</feed>\n"
}

var (
	upEntry = entry("urn:up", upPath, "", upPath+"/MeterReading", "<espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory></espi:UsagePoint>")
	mrEntry = entry("urn:mr", mrPath, upPath+"/MeterReading", rtPath, "<espi:MeterReading/>")
)

func rtEntry(multiplier string) string {
	return entry("urn:rt", rtPath, "", "", "<espi:ReadingType><espi:flowDirection>19</espi:flowDirection><espi:intervalLength>900</espi:intervalLength><espi:powerOfTenMultiplier>"+multiplier+"</espi:powerOfTenMultiplier><espi:uom>72</espi:uom></espi:ReadingType>")
}

func ibEntry(id string, readings ...string) string {
	return entry(id, mrPath+"/IntervalBlock/"+id, mrPath+"/IntervalBlock", "",
		"<espi:IntervalBlock><espi:interval><espi:duration>3600</espi:duration><espi:start>1767225600</espi:start></espi:interval>"+strings.Join(readings, "")+"</espi:IntervalBlock>")
}

func reading(start, value string) string {
	s := "<espi:IntervalReading>"
	if start != "" {
		s += "<espi:timePeriod><espi:duration>900</espi:duration><espi:start>" + start + "</espi:start></espi:timePeriod>"
	}
	if value != "" {
		s += "<espi:value>" + value + "</espi:value>"
	}
	return s + "</espi:IntervalReading>"
}

// lineOf is the line on which the entry with atom id starts.
func lineOf(doc, id string) int {
	i := strings.Index(doc, "<entry>\n<id>"+id+"<")
	if i < 0 {
		panic(id)
	}
	return strings.Count(doc[:i], "\n") + 1
}

// The multiplier scales exactly to mWh; entries link in any order;
// readings without a timePeriod follow on from the block's start.
func TestImportScalesAndLinks(t *testing.T) {
	cases := []struct {
		multiplier, value string
		want              int64
	}{
		{"0", "7", 7_000},
		{"-3", "7", 7},
		{"-6", "7000", 7},
		{"-6", "-4000", -4},
		{"3", "7", 7_000_000},
		{"12", "7", 7_000_000_000_000_000},
	}
	for _, c := range cases {
		// blocks before their meter reading, reading type last
		doc := feed(ibEntry("b1", reading("1767225600", c.value), reading("", c.value)), upEntry, mrEntry, rtEntry(c.multiplier))
		im, err := Import(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("multiplier %s: %v", c.multiplier, err)
		}
		mr := im.UsagePoints[0].MeterReadings[0]
		if len(mr.Readings) != 2 || mr.ReadingType.Flow != FlowExport || mr.ReadingType.ID != "urn:rt" {
			t.Fatalf("multiplier %s: %+v", c.multiplier, mr)
		}
		for i, r := range mr.Readings {
			if r.Value != c.want || r.Start.Unix() != 1767225600+int64(i)*900 || r.Duration.Seconds() != 900 {
				t.Errorf("multiplier %s value %s reading %d: %d mWh at %d for %s, want %d mWh at %d", c.multiplier, c.value, i, r.Value, r.Start.Unix(), r.Duration, c.want, 1767225600+int64(i)*900)
			}
		}
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	good := reading("1767225600", "1")
	sameSelf := feed(upEntry, mrEntry, rtEntry("0"), ibEntry("b1", good), strings.Replace(ibEntry("b1", good), "<id>b1<", "<id>b2<", 1))
	cases := []struct {
		name  string
		doc   string
		want  string
		entry string // the entry the error names; its line must be given too
	}{
		{"empty", "", "the document is empty", ""},
		{"not XML", "hello", "the document is empty", ""},
		{"unclosed", feed(upEntry)[:200], "line 7: malformed XML: the document ends before its root element is closed", ""},
		{"mismatched", "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<id>x</title>\n</feed>", "line 2: malformed XML", ""},
		{"not atom", `<UsagePoint xmlns="http://naesb.org/espi"/>`, "root element is {http://naesb.org/espi}UsagePoint, not an Atom feed or entry", ""},
		{"atom without namespace", `<feed><entry/></feed>`, "root element is feed, not an Atom feed", ""},
		{"after root", feed(upEntry) + "<feed/>", "element feed after the end of the root element", ""},
		{"no reading type", feed(upEntry, mrEntry, ibEntry("b1", good)), "MeterReading " + mrPath + " has no ReadingType in the document", "b1"},
		{"no meter reading", feed(upEntry, rtEntry("0"), ibEntry("b1", good)), "MeterReading " + mrPath + " is not in the document", "b1"},
		{"inexact", feed(upEntry, mrEntry, rtEntry("-6"), ibEntry("b1", reading("1767225600", "3000"), reading("1767226500", "1500"))), "IntervalReading 1 of the IntervalBlock (start 1767226500, reading 1 of its meter reading): value 1500 × 10^-6 is not a whole number of milli-units", "b1"},
		{"overflow", feed(upEntry, mrEntry, rtEntry("12"), ibEntry("b1", reading("1767225600", "10000000"))), "value 10000000 × 10^12 is beyond what flexhub stores", "b1"},
		{"multiplier", feed(upEntry, mrEntry, rtEntry("15"), ibEntry("b1", good)), "powerOfTenMultiplier 15 is not an ESPI multiplier", "urn:rt"},
		{"not a number", feed(upEntry, mrEntry, rtEntry("0"), ibEntry("b1", good, reading("1767226500", "1.5"))), `IntervalReading 1 of the IntervalBlock (start 1767226500): value "1.5" is not an integer`, "b1"},
		{"empty value", feed(upEntry, mrEntry, rtEntry("0"), ibEntry("b1", reading("1767225600", " "))), `IntervalReading 0 of the IntervalBlock (start 1767225600): value "" is not an integer`, "b1"},
		{"bad start", feed(upEntry, mrEntry, rtEntry("0"), ibEntry("b1", reading("2026-01-01", "1"))), `IntervalReading 0 of the IntervalBlock: start "2026-01-01" is not an integer`, "b1"},
		{"bad reading type field", feed(upEntry, mrEntry, rtEntry("milli"), ibEntry("b1", good)), `bad value: strconv.ParseInt: parsing "milli": invalid syntax`, "urn:rt"},
		{"no value", feed(upEntry, mrEntry, rtEntry("0"), ibEntry("b1", good, reading("1767226500", ""))), "IntervalReading 1 of the IntervalBlock (start 1767226500) has no value", "b1"},
		{"same self", sameSelf, fmt.Sprintf("is also the self link of entry b1 (line %d)", lineOf(sameSelf, "b1")), "b2"},
		{"orphan meter reading", feed(entry("urn:mr", "", "", rtPath, "<espi:MeterReading/>")), "the MeterReading has neither a self link", "urn:mr"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			im, err := Import(strings.NewReader(c.doc))
			var ie *Error
			if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want an *Error containing %q", err, c.want)
			}
			if im != nil {
				t.Fatal("refused, yet returned a result")
			}
			if c.entry != "" {
				if ie.Entry != c.entry || ie.Line != lineOf(c.doc, c.entry) {
					t.Fatalf("error names entry %q line %d, want %q line %d (%v)", ie.Entry, ie.Line, c.entry, lineOf(c.doc, c.entry), err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("entry %s (line %d): ", c.entry, ie.Line)) {
					t.Fatalf("message %q does not name the entry and line", err)
				}
			}
		})
	}
}

// A single entry document imports: a UsagePoint entry alone is a usage
// point without meter readings; an IntervalBlock entry alone is refused
// (its reading type is unknown).
func TestImportEntryDocument(t *testing.T) {
	up := strings.Replace(upEntry, "<entry>", `<entry xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">`, 1)
	im, err := Import(strings.NewReader(up))
	if err != nil || len(im.UsagePoints) != 1 || im.UsagePoints[0].ResourceID != "u" || im.UsagePoints[0].ServiceKind != 0 {
		t.Fatalf("%+v %v", im, err)
	}
	ib := strings.Replace(ibEntry("b1", reading("1767225600", "1")), "<entry>", `<entry xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">`, 1)
	if _, err := Import(strings.NewReader(ib)); err == nil || !strings.Contains(err.Error(), "is not in the document") {
		t.Fatalf("error %v", err)
	}
}

// Import never panics, and what it accepts is consistent: every value
// is the raw value scaled by its reading type's multiplier.
func FuzzImport(f *testing.F) {
	for _, p := range samplesIfPresent() {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	var buf bytes.Buffer
	if err := Export(&buf, testFeed()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(feed(upEntry, mrEntry, rtEntry("-6"), ibEntry("b1", reading("1767225600", "7000"), reading("", "1")))))
	f.Fuzz(func(t *testing.T, doc []byte) {
		im, err := Import(bytes.NewReader(doc))
		if err != nil {
			if im != nil {
				t.Fatal("result with an error")
			}
			return
		}
		for _, up := range im.UsagePoints {
			for _, mr := range up.MeterReadings {
				for _, r := range mr.Readings {
					if mr.ReadingType.Quantity == "" {
						if r.Value != 0 {
							t.Fatalf("value %d without a quantity", r.Value)
						}
						continue
					}
					// r.Value × 10^-3 Wh must equal r.Raw × 10^p Wh exactly.
					p := mr.ReadingType.PowerOfTenMultiplier + 3
					lhs, rhs := big.NewInt(r.Value), big.NewInt(r.Raw)
					if p >= 0 {
						rhs.Mul(rhs, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil))
					} else {
						lhs.Mul(lhs, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-p)), nil))
					}
					if lhs.Cmp(rhs) != 0 {
						t.Fatalf("raw %d × 10^%d imported as %d mWh", r.Raw, mr.ReadingType.PowerOfTenMultiplier, r.Value)
					}
				}
			}
		}
	})
}
