package storetest

import "testing"

func (s *suite) testMetering(t *testing.T) {}
