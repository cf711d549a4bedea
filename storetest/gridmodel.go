package storetest

import (
	"bytes"
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/flexhub/flexhub"
)

// testGridModels: grid model versions with their file and network read
// back byte for byte; the current version is the highest; a version
// number taken twice is a conflict; versions are listed in order and in
// the history (AsOf by grid area); mappings are set, replaced and removed
// per connection point; ConnectionPointBus answers from the current
// version only.
func (s *suite) testGridModels(t *testing.T) {
	st, ws := s.seed(t, 2)
	ga, ga1 := ws[0].GridArea.ID, ws[1].GridArea.ID
	cp, cp1 := ws[0].ConnectionPoint.ID, ws[1].ConnectionPoint.ID
	// A file with every byte value (a zip is binary) and some size.
	file := make([]byte, 300_000)
	for i := range file {
		file[i] = byte(i * 7)
	}
	network := []byte(`{"Buses":[{"ID":"b0"},{"ID":"b1"}]}`)
	mk := func(version int64, at time.Time) *flexhub.GridModel {
		return &flexhub.GridModel{ID: flexhub.NewID(), GridAreaID: ga, DSOID: ws[0].DSO.ID, ModelVersion: version, Format: flexhub.GridFormatSimBench,
			FileSHA256: "00", FileBytes: int64(len(file)), Counts: flexhub.GridModelCounts{Buses: 2, Lines: 1, Slacks: 1},
			VoltageLevels: []float64{20, 0.4}, BaseMVA: 1, UploadedBy: ws[0].DSO.ID, UploadedAt: at}
	}
	v1, v2 := mk(1, base), mk(2, base.Add(2*time.Hour))

	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if _, err := tx.CurrentGridModel(ctx, ga); flexhub.ErrorKind(err) != flexhub.ENotFound {
			t.Errorf("current model of an area without one: %v, want not found", err)
		}
		if _, err := tx.GridModel(ctx, flexhub.NewID()); flexhub.ErrorKind(err) != flexhub.ENotFound {
			t.Errorf("unknown model: %v", err)
		}
		if _, err := tx.GridModelFile(ctx, flexhub.NewID()); flexhub.ErrorKind(err) != flexhub.ENotFound {
			t.Errorf("unknown model's file: %v", err)
		}
		ms, err := tx.ListGridModels(ctx, ga)
		if err != nil || len(ms) != 0 {
			t.Errorf("list without models: %v %v", ms, err)
		}
		return nil
	})
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateGridModel(ctx, v1, file, network) })
	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		got, err := tx.GridModel(ctx, v1.ID)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, v1) {
			t.Errorf("read back %+v, stored %+v", got, v1)
		}
		f, err := tx.GridModelFile(ctx, v1.ID)
		if err != nil || !bytes.Equal(f, file) {
			t.Errorf("file read back differs (%d bytes, %v)", len(f), err)
		}
		n, err := tx.GridModelNetwork(ctx, v1.ID)
		if err != nil || !bytes.Equal(n, network) {
			t.Errorf("network read back %q, %v", n, err)
		}
		return nil
	})

	// Version 1 again (a concurrent upload that read the same current
	// version): conflict, and the failed transaction leaves nothing.
	dup := mk(1, base.Add(time.Hour))
	if err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error { return tx.CreateGridModel(ctx, dup, file, network) }); flexhub.ErrorKind(err) != flexhub.EConflict {
		t.Fatalf("version 1 twice: %v, want conflict", err)
	}
	// Two uploads of version 2 at once: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	racers := []*flexhub.GridModel{v2, mk(2, base.Add(2*time.Hour))}
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
				return tx.CreateGridModel(ctx, racers[i], file, network)
			})
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			v2 = racers[i]
		case flexhub.ErrorKind(err) != flexhub.EConflict:
			t.Errorf("racing upload: %v, want conflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of 2 racing uploads of version 2 won, want 1", won)
	}

	view(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		cur, err := tx.CurrentGridModel(ctx, ga)
		if err != nil || cur.ID != v2.ID {
			t.Errorf("current model %v %v, want version 2 %s", cur, err, v2.ID)
		}
		ms, err := tx.ListGridModels(ctx, ga)
		if err != nil || len(ms) != 2 || ms[0].ID != v1.ID || ms[1].ID != v2.ID {
			t.Errorf("versions %v %v", ms, err)
		}
		if ms, _ := tx.ListGridModels(ctx, ga1); len(ms) != 0 {
			t.Errorf("another area's versions: %v", ms)
		}
		// History by grid area: the version in force at a time.
		var was flexhub.GridModel
		if err := tx.AsOf(ctx, flexhub.KindGridModel, ga, base.Add(time.Hour), &was); err != nil || was.ID != v1.ID {
			t.Errorf("model in force between the uploads: %s %v, want %s", was.ID, err, v1.ID)
		}
		if err := tx.AsOf(ctx, flexhub.KindGridModel, ga, base.Add(3*time.Hour), &was); err != nil || was.ID != v2.ID {
			t.Errorf("model in force after the second upload: %s %v, want %s", was.ID, err, v2.ID)
		}
		vs, err := tx.Versions(ctx, flexhub.KindGridModel, ga)
		if err != nil || len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 || vs[0].ValidTo == nil || !vs[0].ValidTo.Equal(v2.UploadedAt) {
			t.Errorf("history versions %+v %v", vs, err)
		}
		return nil
	})

	// Mappings: set, replace, remove; per version.
	mapping := func(id string) []flexhub.GridModelMapping {
		var out []flexhub.GridModelMapping
		view(t, st, func(ctx context.Context, tx flexhub.Tx) (err error) {
			out, err = tx.GridModelMappings(ctx, id)
			return err
		})
		return out
	}
	busOf := func(cpID string) (*flexhub.GridBusRef, error) {
		var ref *flexhub.GridBusRef
		var err error
		_ = st.View(t.Context(), func(tx flexhub.Tx) error {
			ref, err = tx.ConnectionPointBus(t.Context(), cpID)
			return nil
		})
		return ref, err
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		return tx.PutGridModelMappings(ctx, v1.ID, []flexhub.GridModelMapping{{ConnectionPointID: cp, BusID: "b1", BusIndex: 1}})
	})
	if got := mapping(v1.ID); !reflect.DeepEqual(got, []flexhub.GridModelMapping{{ConnectionPointID: cp, BusID: "b1", BusIndex: 1}}) {
		t.Errorf("version 1 mappings %+v", got)
	}
	if got := mapping(v2.ID); len(got) != 0 {
		t.Errorf("version 2 mappings before any: %+v", got)
	}
	// Mapped in version 1 only: not where it sits now.
	if ref, err := busOf(cp); flexhub.ErrorKind(err) != flexhub.ENotFound {
		t.Errorf("bus of a connection point mapped only in an old version: %+v %v", ref, err)
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		if err := tx.PutGridModelMappings(ctx, v2.ID, []flexhub.GridModelMapping{{ConnectionPointID: cp, BusID: "b1", BusIndex: 1}}); err != nil {
			return err
		}
		return tx.PutGridModelMappings(ctx, v2.ID, []flexhub.GridModelMapping{{ConnectionPointID: cp, BusID: "b0", BusIndex: 0}})
	})
	ref, err := busOf(cp)
	if want := (&flexhub.GridBusRef{ConnectionPointID: cp, GridAreaID: ga, GridModelID: v2.ID, ModelVersion: 2, BusID: "b0", BusIndex: 0}); err != nil || !reflect.DeepEqual(ref, want) {
		t.Errorf("bus of the connection point: %+v %v, want %+v", ref, err, want)
	}
	for _, id := range []string{cp1, flexhub.NewID()} {
		if ref, err := busOf(id); flexhub.ErrorKind(err) != flexhub.ENotFound {
			t.Errorf("bus of %s (unmapped or unknown): %+v %v", id, ref, err)
		}
	}
	update(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		return tx.PutGridModelMappings(ctx, v2.ID, []flexhub.GridModelMapping{{ConnectionPointID: cp}})
	})
	if got := mapping(v2.ID); len(got) != 0 {
		t.Errorf("removed mapping still there: %+v", got)
	}
	if got := mapping(v1.ID); len(got) != 1 {
		t.Errorf("removing in version 2 changed version 1: %+v", got)
	}
	// A mapping must name a stored connection point.
	if err := tryUpdate(t, st, func(ctx context.Context, tx flexhub.Tx) error {
		return tx.PutGridModelMappings(ctx, v2.ID, []flexhub.GridModelMapping{{ConnectionPointID: flexhub.NewID(), BusID: "b0"}})
	}); err == nil {
		t.Error("a mapping of an unknown connection point was stored")
	}
}
