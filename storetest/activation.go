package storetest

import "testing"

func (s *suite) testActivation(t *testing.T) {}
