package main

import (
	"bytes"
	"testing"
)

// TestAnonymityKFlag: k defaults to 10, comes from FLEXHUB_ANONYMITY_K or
// --anonymity-k (the flag wins), and a k below 2 or not a number is refused.
func TestAnonymityKFlag(t *testing.T) {
	parse := func(env map[string]string, args ...string) (*config, error) {
		return parseFlags("serve", args, func(k string) string { return env[k] }, &bytes.Buffer{}, true)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"default", nil, nil, 10},
		{"environment", map[string]string{"FLEXHUB_ANONYMITY_K": "25"}, nil, 25},
		{"flag wins", map[string]string{"FLEXHUB_ANONYMITY_K": "25"}, []string{"--anonymity-k", "5"}, 5},
	} {
		c, err := parse(tc.env, tc.args...)
		if err != nil || c.anonK != tc.want {
			t.Errorf("%s: k %v, err %v; want %d", tc.name, c, err, tc.want)
		}
	}
	for _, bad := range []struct {
		env  map[string]string
		args []string
	}{
		{nil, []string{"--anonymity-k", "1"}},
		{map[string]string{"FLEXHUB_ANONYMITY_K": "0"}, nil},
		{map[string]string{"FLEXHUB_ANONYMITY_K": "ten"}, nil},
	} {
		if _, err := parse(bad.env, bad.args...); err == nil {
			t.Errorf("env %v args %v: accepted", bad.env, bad.args)
		}
	}
}
