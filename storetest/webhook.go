package storetest

import "testing"

func (s *suite) testWebhooks(t *testing.T) {}
