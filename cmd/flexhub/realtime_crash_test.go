package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/mqtt"
	"github.com/flexhub/flexhub/mqtt/mosquittotest"
	"github.com/flexhub/flexhub/sqlite"
)

// flexhub on mosquitto crashes (SIGKILL) while a group of meter messages
// it has received waits for its commit: mosquitto has acknowledged them to
// the FSP, flexhub has not acknowledged them to mosquitto. When flexhub
// comes back with the same session, mosquitto delivers them again and
// every reading is stored exactly once (one version), the ones stored
// before the crash included. The commit is held off by a second SQLite
// connection holding the write lock, released only after the kill.
func TestMeterCrashMosquittoRedelivers(t *testing.T) {
	b := mosquittotest.Start(t)
	admin, _, _ := app.NewToken()
	dataDir := t.TempDir()
	dbPath := filepath.Join(dataDir, "flexhub.db")
	env := []string{"FLEXHUB_ADMIN_KEY=" + admin, "FLEXHUB_MQTT_USERNAME=" + b.AdminUser, "FLEXHUB_MQTT_PASSWORD=" + b.AdminPass,
		"FLEXHUB_MQTT_CLIENT_ID=flexhub-crash-test"}
	args := []string{"--data-dir", dataDir, "--mqtt-broker", "mqtt://" + b.Addr}
	p := start(t, env, args...)

	// An FSP operating one resource its household has confirmed.
	_, tsoKey := p.party(admin, "CRASHTSO", "tso")
	_, dsoKey := p.party(admin, "CRASHDSO", "dso")
	fsp, fspKey := p.party(admin, "CRASHFSP", "fsp")
	var consumer, ck, ca, ga, cp, mp, res obj
	p.call("POST", "/v1/parties", dsoKey, map[string]any{"eic": testEIC("10XCRASHHOME"), "name": "Household", "roles": []string{"consumer"}}, 201, &consumer)
	p.call("POST", "/v1/parties/"+consumer.ID+"/credentials", admin, nil, 201, &ck)
	p.call("POST", "/v1/control-areas", tsoKey, map[string]any{"eic": testEIC("10YCRASHCA"), "name": "Control area"}, 201, &ca)
	p.call("POST", "/v1/grid-areas", dsoKey, map[string]any{"eic": testEIC("10YCRASHGA"), "name": "Feeder", "control_area_id": ca.ID}, 201, &ga)
	p.call("POST", "/v1/connection-points", dsoKey, map[string]any{"code": "CRASH-CP", "grid_area_id": ga.ID, "node_ref": "LV bus 1"}, 201, &cp)
	p.call("POST", "/v1/metering-points", dsoKey, map[string]any{"code": "CRASH-MP", "connection_point_id": cp.ID, "consumer_id": consumer.ID}, 201, &mp)
	p.call("POST", "/v1/resources", fspKey, map[string]any{"name": "battery", "kind": "unit", "unit_type": "battery", "metering_point_id": mp.ID,
		"technical": map[string]any{"max_up": kw(10), "max_down": kw(10), "full_activation_time": "PT5S"}}, 201, &res)
	p.call("POST", "/v1/resources/"+res.ID+"/confirmation", ck.Token, map[string]any{"accept": true}, 200, nil)

	// The FSP's connection to mosquitto (its key was provisioned there
	// when it was issued).
	conn, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fc := paho.NewClient(paho.ClientConfig{ClientID: "crash-fsp", Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := fc.Connect(ctx, &paho.Connect{KeepAlive: 30, ClientID: "crash-fsp", CleanStart: true, Username: fsp, UsernameFlag: true,
		Password: []byte(fspKey), PasswordFlag: true}); err != nil {
		t.Fatal(err)
	}
	defer fc.Disconnect(&paho.Disconnect{})

	epoch := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	watts := func(i int) int { return 1000 + 37*i }
	publish := func(i int) {
		t.Helper()
		payload := fmt.Appendf(nil, `{"readings":[{"resource_id":"%s","quantity":"active_power","flow":"export","start":"%s","resolution":"PT10S","value":"%d","unit":"W"}]}`,
			res.ID, epoch.Add(time.Duration(i)*10*time.Second).Format(time.RFC3339), watts(i))
		pr, err := fc.Publish(ctx, &paho.Publish{Topic: mqtt.MeterTopic(fsp, res.ID), QoS: 1, Payload: payload})
		if err != nil || pr.ReasonCode != 0 {
			t.Fatalf("publish reading %d: %v %v", i, err, pr)
		}
	}
	const n = 41
	key := flexhub.MeterSeriesKey{SubjectKind: flexhub.MeterSubjectResource, SubjectID: res.ID, Quantity: flexhub.QuantityActivePower, Flow: "export", Resolution: 10 * time.Second}
	// stored reads the store (SQLite's WAL lets a reader in beside the
	// running flexhub and beside a held write lock).
	stored := func() []flexhub.MeterRecord {
		t.Helper()
		st, err := sqlite.Open(context.Background(), dbPath, false)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var recs []flexhub.MeterRecord
		if err := st.View(ctx, func(tx flexhub.Tx) error {
			var err error
			recs, err = tx.MeterReadings(ctx, key, epoch, epoch.Add(n*10*time.Second))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	awaitStored := func(want int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for len(stored()) < want {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d readings stored within 60 s\n%s", len(stored()), want, p.out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Reading 0 goes through as usual.
	publish(0)
	awaitStored(1)

	// Readings 1..40 reach flexhub while it cannot commit; it is killed.
	lock, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	lc, err := lock.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		publish(i) // mosquitto's PUBACK: it has the message
	}
	time.Sleep(1500 * time.Millisecond) // delivered to flexhub, whose group waits for the lock
	p.kill()
	if _, err := lc.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	lc.Close()
	if got := len(stored()); got != 1 {
		t.Fatalf("%d readings stored by the killed flexhub, want only the first: the group was to be cut before its commit", got)
	}

	// flexhub comes back on the same session; mosquitto delivers again.
	p = start(t, env, args...)
	awaitStored(n)
	time.Sleep(time.Second) // anything delivered twice has been handled
	p.kill()

	recs := stored()
	if len(recs) != n {
		t.Fatalf("%d readings stored, want %d", len(recs), n)
	}
	st, err := sqlite.Open(context.Background(), dbPath, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, r := range recs {
		start := epoch.Add(time.Duration(i) * 10 * time.Second)
		if !r.Start.Equal(start) || r.Value != int64(watts(i))*1000 || r.Version != 1 {
			t.Fatalf("reading %d: start %s value %d mW version %d, sent %s %d W", i, r.Start, r.Value, r.Version, start, watts(i))
		}
		var versions []flexhub.MeterRecord
		if err := st.View(ctx, func(tx flexhub.Tx) error {
			var err error
			versions, err = tx.MeterReadingVersions(ctx, key, start)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(versions) != 1 {
			t.Fatalf("reading %d stored %d times: %+v", i, len(versions), versions)
		}
	}
}
