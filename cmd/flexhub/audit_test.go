package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/sqlite"
)

// TestAuditVerifyFindsTampering alters one stored audit entry behind the
// platform's back and expects `flexhub audit verify` to name that entry.
func TestAuditVerifyFindsTampering(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "flexhub.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	svc := app.New(store, nil)
	admin, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	actx := app.WithActor(ctx, mustParty(t, svc, admin.PartyID))
	for i, name := range []string{"ALPHA", "BRAVO", "CHARLIE"} {
		if _, err := svc.CreateParty(actx, flexhub.PartySpec{EIC: flexhub.EICFromStem("10X" + name), Name: name, Roles: []flexhub.Role{flexhub.RoleFSP}}, ""); err != nil {
			t.Fatalf("party %d: %v", i, err)
		}
	}
	getenv := func(string) string { return "" }
	var out bytes.Buffer
	if err := run(ctx, []string{"audit", "verify", "--data-dir", dir}, getenv, &out, &out); err != nil {
		t.Fatalf("untouched chain must verify: %v %s", err, out.String())
	}
	if _, err := store.DB().ExecContext(ctx, `UPDATE audit_entry SET actor_id = 'mallory' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out.Reset()
	err = run(ctx, []string{"audit", "verify", "--data-dir", dir}, getenv, &out, &out)
	if err == nil || !strings.Contains(out.String(), "BROKEN at entry 3") {
		t.Fatalf("tampered entry 3 must be reported: %v %s", err, out.String())
	}
}

func mustParty(t *testing.T, svc *app.Service, id string) *flexhub.Party {
	t.Helper()
	var p *flexhub.Party
	err := svc.Store().View(context.Background(), func(tx flexhub.Tx) error {
		var err error
		p, err = tx.Party(context.Background(), id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
