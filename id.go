package flexhub

import (
	"strconv"

	"github.com/google/uuid"
)

// NewID returns a new time-ordered identifier (UUIDv7). Sorting IDs as text
// sorts by creation time, which cursor pagination relies on.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// ValidID reports whether s looks like an identifier flexhub issued.
func ValidID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func fieldIndex(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }
