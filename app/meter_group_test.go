package app

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/postgres/pgtest"
	"github.com/flexhub/flexhub/sqlite"
)

// One MQTT group (storeMeterGroup) holding messages that fail the sender
// checks, and a group whose transaction fails and is stored again message
// by message: in both, every good message is stored and each bad one is
// refused alone with its own error, nothing of it stored. On both stores.
func TestMeterGroupRefusals(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var store flexhub.Store
			if kind == "sqlite" {
				s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "flexhub.db"), true)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				store = s
			} else {
				store = pgtest.Open(t, "fh_metergroup")
			}
			testMeterGroupRefusals(t, store)
		})
	}
}

func testMeterGroupRefusals(t *testing.T, store flexhub.Store) {
	ctx := context.Background()
	s := New(store, nil)
	ic, err := s.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := s.Authenticate(ctx, ic.Token)
	if err != nil {
		t.Fatal(err)
	}
	actx := WithActor(ctx, admin)
	var fsps []string
	for i := range 2 {
		c, err := s.CreateParty(actx, flexhub.PartySpec{EIC: flexhub.EICFromStem(fmt.Sprintf("10XMGROUP%d", i)), Name: fmt.Sprintf("fsp %d", i), Roles: []flexhub.Role{flexhub.RoleFSP}}, "")
		if err != nil {
			t.Fatal(err)
		}
		fsps = append(fsps, c.Object.ID)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	newRes := func(fsp, status string) string {
		r := &flexhub.Resource{ID: flexhub.NewID(), FSPID: fsp, Status: status, ValidFrom: now, CreatedAt: now,
			ResourceSpec: flexhub.ResourceSpec{Name: "unit", Kind: flexhub.ResourceGroup, Technical: flexhub.TechnicalData{MaxUp: flexhub.KW(10)}}}
		if err := store.Update(ctx, func(tx flexhub.Tx) error { return tx.CreateResource(ctx, r) }); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	a1, a2 := newRes(fsps[0], flexhub.ResourceActive), newRes(fsps[0], flexhub.ResourceActive)
	pending := newRes(fsps[0], flexhub.ResourcePendingConfirmation)
	b1 := newRes(fsps[1], flexhub.ResourceActive)
	t0 := now.Add(-time.Hour).Truncate(10 * time.Second)

	// msg is a message of party on resource's topic: value (kW) of the
	// 10-second interval at t0 + k intervals, import.
	msg := func(party, resource string, k int, kw string) *meterMsg {
		start := t0.Add(time.Duration(k) * 10 * time.Second).Format(time.RFC3339)
		var m MeterMessage
		payload := `{"readings":[{"resource_id":"` + resource + `","quantity":"active_power","flow":"import","start":"` + start + `","resolution":"PT10S","value":` + kw + `,"unit":"kW"}]}`
		if err := json.Unmarshal([]byte(payload), &m); err != nil {
			t.Fatal(err)
		}
		in, err := s.prepareMeter(nil, m.Readings)
		if err != nil {
			t.Fatal(err)
		}
		return &meterMsg{topic: "flexhub/v1/parties/" + party + "/meter/" + resource, party: party, in: in}
	}
	series := func(resource string) flexhub.MeterSeriesKey {
		return flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: resource, Quantity: flexhub.QuantityActivePower, Flow: flexhub.FlowImport, Resolution: 10 * time.Second}
	}
	readings := func(resource string) []flexhub.MeterRecord {
		var recs []flexhub.MeterRecord
		if err := store.View(ctx, func(tx flexhub.Tx) error {
			var err error
			recs, err = tx.MeterReadings(ctx, series(resource), t0.Add(-time.Hour), now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	refused := func(m *meterMsg, rule, field string) {
		t.Helper()
		fe, ok := m.err.(*flexhub.Error)
		if !ok || fe.Rule != rule || fe.Field != field {
			t.Errorf("%s: error %v, want rule %s on %s", m.topic, m.err, rule, field)
		}
	}

	// A group with three good messages (two of one FSP, one of the other)
	// and three bad ones: a resource not yet confirmed, another FSP's
	// resource, an unknown sender.
	good1, good2, good3 := msg(fsps[0], a1, 0, "1.5"), msg(fsps[0], a2, 0, "2.5"), msg(fsps[1], b1, 0, "3.5")
	notActive, notOperator, unknown := msg(fsps[0], pending, 0, "1"), msg(fsps[0], b1, 1, "1"), msg("nobody", a1, 1, "1")
	s.storeMeterGroup(ctx, []*meterMsg{good1, notActive, good2, notOperator, good3, unknown})
	for _, m := range []*meterMsg{good1, good2, good3} {
		if m.err != nil {
			t.Errorf("%s: %v", m.topic, m.err)
		}
	}
	refused(notActive, "meter.resource_not_active", "readings[0].resource_id")
	refused(notOperator, "meter.not_operator", "readings[0].resource_id")
	if flexhub.ErrorKind(unknown.err) != flexhub.ENotFound {
		t.Errorf("unknown sender: %v", unknown.err)
	}
	ra1, ra2, rb1 := readings(a1), readings(a2), readings(b1)
	if len(ra1) != 1 || ra1[0].Value != 1_500_000 || len(ra2) != 1 || ra2[0].Value != 2_500_000 || len(rb1) != 1 || rb1[0].Value != 3_500_000 {
		t.Fatalf("stored: %+v %+v %+v, want one reading each of 1.5, 2.5, 3.5 kW (in mW)", ra1, ra2, rb1)
	}
	// Stored as a group: one ingestion per sender, not per message.
	if ra1[0].BatchID != ra2[0].BatchID || ra1[0].BatchID == rb1[0].BatchID {
		t.Errorf("batches %s %s %s: want one per sender", ra1[0].BatchID, ra2[0].BatchID, rb1[0].BatchID)
	}
	if n := len(readings(pending)); n != 0 {
		t.Errorf("the unconfirmed resource holds %d readings", n)
	}

	// A group whose transaction fails: two values for one reading (a
	// correction sent in the same group). Its messages are stored one by
	// one: the first value, then the correction as version 2; the others
	// stored, the refused one refused again with its own error.
	first, corr := msg(fsps[0], a1, 5, "4"), msg(fsps[0], a1, 5, "4.25")
	other, bad := msg(fsps[1], b1, 5, "7"), msg(fsps[0], pending, 5, "1")
	s.storeMeterGroup(ctx, []*meterMsg{first, bad, corr, other})
	for _, m := range []*meterMsg{first, corr, other} {
		if m.err != nil {
			t.Errorf("%s: %v", m.topic, m.err)
		}
	}
	refused(bad, "meter.resource_not_active", "readings[0].resource_id")
	var versions []flexhub.MeterRecord
	if err := store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		versions, err = tx.MeterReadingVersions(ctx, series(a1), t0.Add(50*time.Second))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[0].Value != 4_000_000 || versions[1].Value != 4_250_000 || versions[1].Version != 2 || versions[0].BatchID == versions[1].BatchID {
		t.Errorf("versions of the corrected reading: %+v, want 4 kW then 4.25 kW (version 2), each its own ingestion", versions)
	}
	if rb1 = readings(b1); len(rb1) != 2 || rb1[1].Value != 7_000_000 {
		t.Errorf("b1 after the failed group: %+v", rb1)
	}
	if n := len(readings(pending)); n != 0 {
		t.Errorf("the unconfirmed resource holds %d readings", n)
	}
	if !strings.Contains(bad.err.Error(), pending) {
		t.Errorf("refusal %q does not name the resource", bad.err)
	}
}
