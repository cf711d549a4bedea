package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestFlagsWinOverEnvironment(t *testing.T) {
	env := map[string]string{"FLEXHUB_ADDR": "127.0.0.1:1111", "FLEXHUB_DATA_DIR": "/from-env", "FLEXHUB_DB": "postgres://env"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		name     string
		args     []string
		wantAddr string
		wantDir  string
		wantDB   string
	}{
		{"environment only", nil, "127.0.0.1:1111", "/from-env", "postgres://env"},
		{"flags win", []string{"--addr", ":2222", "--data-dir", "/from-flag", "--db", "x.db"}, ":2222", "/from-flag", "x.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags("serve", tc.args, getenv, &bytes.Buffer{}, true)
			if err != nil {
				t.Fatal(err)
			}
			if c.addr != tc.wantAddr || c.dataDir != tc.wantDir || c.db != tc.wantDB {
				t.Fatalf("got addr %q dir %q db %q", c.addr, c.dataDir, c.db)
			}
		})
	}
	c, err := parseFlags("serve", nil, func(string) string { return "" }, &bytes.Buffer{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:8080" || c.dataDir != "flexhub-data" || c.db != "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestRunCommands(t *testing.T) {
	getenv := func(string) string { return "" }
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"version"}, getenv, &out, &errb); err != nil || !strings.Contains(out.String(), "flexhub") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"keygen"}, getenv, &out, &errb); err != nil || !strings.HasPrefix(out.String(), "fh_") {
		t.Fatalf("keygen: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, getenv, &out, &errb); err == nil {
		t.Fatal("unknown command must fail")
	}
	if err := run(context.Background(), []string{"serve", "--bogus"}, getenv, &out, &errb); err == nil {
		t.Fatal("unknown flag must fail")
	}
	dir := t.TempDir()
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "--data-dir", dir}, getenv, &out, &errb); err != nil || !strings.Contains(out.String(), "applied 001_register.sql") {
		t.Fatalf("migrate: %v %q", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "--data-dir", dir}, getenv, &out, &errb); err != nil || !strings.Contains(out.String(), "up to date") {
		t.Fatalf("second migrate: %v %q", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, getenv, &out, &errb); err != nil || !strings.Contains(out.String(), "OK: 0 entries") {
		t.Fatalf("audit verify: %v %q", err, out.String())
	}
}
