package app

import (
	"reflect"
	"strings"
	"testing"
)

// The fast decoder of meter payloads must agree with strictJSON on every
// input: the same message when both accept, the same error otherwise.
func checkMeterDecoding(t *testing.T, payload []byte) (fast bool) {
	t.Helper()
	var want, got MeterMessage
	werr := strictJSON(payload, &want)
	gerr := decodeMeterMessage(payload, &got)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("%q: error %v, strictJSON says %v", payload, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decoded %+v, strictJSON %+v", payload, got, want)
	}
	var m MeterMessage
	return scanMeterMessage(payload, &m)
}

const meterReadingJSON = `{"resource_id":"res-1","quantity":"active_power","flow":"import","start":"2026-11-26T00:00:00Z","resolution":"PT10S","value":1.234,"unit":"kW"}`

var meterPayloads = []struct {
	payload string
	fast    bool // read by the scanner, not handed to strictJSON
}{
	{`{"readings":[` + meterReadingJSON + `]}`, true},
	{`{"readings":[` + meterReadingJSON + `,` + strings.Replace(meterReadingJSON, "import", "export", 1) + `]}`, true},
	{" \n\t{ \"readings\" : [ {\"value\" : -0.5e+3 , \"unit\":\"W\"} ] } \r\n", true},
	{`{"readings":[{"metering_point_id":"mp","value":0,"start":"x","start":"y"}]}`, true}, // the last of a repeated key wins
	{`{"readings":[{"value":12}]}`, true},
	// Outside the scanner's shape: strictJSON decides.
	{`{"readings":[{"resource_id":"r\u00e9s"}]}`, false},
	{`{"readings":[{"resource_id":"rés"}]}`, false},
	{`{"readings":[{"resource_id":"r\"s"}]}`, false},
	{`{"readings":[{"Resource_ID":"r"}]}`, false}, // encoding/json matches case-insensitively
	{`{"readings":[{"value":"1.5"}]}`, false},     // a number in a string
	{`{"readings":[{"value":"abc"}]}`, false},
	{`{"readings":[{"value":null}]}`, false},
	{`{"readings":[{"value":01}]}`, false},
	{`{"readings":[{"value":1.}]}`, false},
	{`{"readings":[{"value":.5}]}`, false},
	{`{"readings":[{"value":1e}]}`, false},
	{`{"readings":[{"value":+1}]}`, false},
	{`{"readings":[{"value":1}2]}`, false},
	{`{"readings":[{"other":1}]}`, false},
	{`{"readings":[{}]}`, false},
	{`{"readings":[null]}`, false},
	{`{"readings":[]}`, false},
	{`{"readings":null}`, false},
	{`{}`, false},
	{`{"readings":[{"value":1}],"extra":1}`, false},
	{`{"readings":[{"value":1}],"readings":[{"value":2}]}`, false},
	{`{"readings":[{"value":1}]}]`, false}, // strictJSON lets a closing bracket follow
	{`{"readings":[{"value":1}]} {}`, false},
	{`{"readings":[{"value":1}]}x`, false},
	{`{"readings":[{"value":1},]}`, false},
	{`{"readings":[{"value":1,}]}`, false},
	{`{"readings":[{"value":1}`, false},
	{`{"readings":[{"unit":"kW`, false},
	{`{"readings":[{"unit":"k` + "\x01" + `W"}]}`, false},
	{"\xef\xbb\xbf{}", false},
	{``, false},
	{`[]`, false},
}

func TestDecodeMeterMessage(t *testing.T) {
	for _, c := range meterPayloads {
		if fast := checkMeterDecoding(t, []byte(c.payload)); fast != c.fast {
			t.Errorf("%q: read by the scanner %v, want %v", c.payload, fast, c.fast)
		}
	}
	// Strings shared within a message are still each reading's own value.
	var m MeterMessage
	if err := decodeMeterMessage([]byte(meterPayloads[1].payload), &m); err != nil {
		t.Fatal(err)
	}
	if m.Readings[0].Flow != "import" || m.Readings[1].Flow != "export" || m.Readings[1].ResourceID != "res-1" {
		t.Fatalf("%+v", m.Readings)
	}
}

func FuzzDecodeMeterMessage(f *testing.F) {
	for _, c := range meterPayloads {
		f.Add([]byte(c.payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) { checkMeterDecoding(t, payload) })
}
