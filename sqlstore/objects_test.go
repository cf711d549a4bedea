package sqlstore

import (
	"encoding/json"
	"testing"
)

func TestHasNUL(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"plain", false},
		{"nul\x00inside", true},
		{`a literal \u0000 typed by a person`, false},
		{"backslash then nul \\\x00", true},
	} {
		body, _ := json.Marshal(map[string]string{"name": tc.text})
		if got := hasNUL(body); got != tc.want {
			t.Errorf("%q (JSON %s): hasNUL = %v, want %v", tc.text, body, got, tc.want)
		}
	}
}
