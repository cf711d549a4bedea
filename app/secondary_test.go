package app

import (
	"fmt"
	"slices"
	"testing"

	"github.com/flexhub/flexhub"
)

// visiblePage pages through a list filtered by visibility: every visible
// item exactly once, in order, and a cursor that only ever names a
// visible item, even when the store pages are small and mostly invisible.
func TestVisiblePage(t *testing.T) {
	type item struct{ id string }
	var all []*item
	for i := range 23 {
		all = append(all, &item{fmt.Sprintf("%03d", i)})
	}
	visible := func(v *item) bool { return v.id[2] == '0' || v.id[2] == '7' }
	var want []string
	for _, v := range all {
		if visible(v) {
			want = append(want, v.id)
		}
	}
	for _, storePage := range []int{1, 3, 50} {
		list := func(pg flexhub.Page) ([]*item, string, error) {
			var out []*item
			for _, v := range all {
				if v.id > pg.After && len(out) < min(pg.Limit, storePage) {
					out = append(out, v)
				}
			}
			next := ""
			if len(out) > 0 && out[len(out)-1] != all[len(all)-1] {
				next = out[len(out)-1].id
			}
			return out, next, nil
		}
		for _, limit := range []int{1, 2, 10} {
			var got []string
			cursor := ""
			for range 50 {
				page, next, err := visiblePage(flexhub.Page{After: cursor, Limit: limit}, list, func(v *item) string { return v.id }, visible)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range page {
					got = append(got, v.id)
				}
				if next == "" {
					break
				}
				if !slices.Contains(want, next) {
					t.Fatalf("store pages of %d, limit %d: cursor %s names an invisible item", storePage, limit, next)
				}
				cursor = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("store pages of %d, limit %d: %v, want %v", storePage, limit, got, want)
			}
		}
	}
}
