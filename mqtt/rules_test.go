package mqtt_test

import (
	"errors"
	"testing"

	"github.com/flexhub/flexhub/mqtt"
)

func TestTopicRules(t *testing.T) {
	const a, b = "party-a", "party-b"
	own := mqtt.Root + a + "/"
	for filter, ok := range map[string]bool{
		own + "activations": true, own + "notifications": true, own + "monitoring": true, own + "errors": true,
		own + "#": true, own + "+": true, own + "activations/+": true,
		own + "activations/acks": false, own + "meter/r1": false, own + "meter/+": false, own + "meter/#": false,
		mqtt.Root + b + "/activations": false, mqtt.Root + "+/activations": false, mqtt.Root + "#": false,
		"flexhub/#": false, "#": false, "$share/g/" + own + "activations": false, mqtt.Root + a: false,
		own + "#/x": false, own + "ab+": false,
	} {
		err := mqtt.CheckSubscribe(a, filter)
		if (err == nil) != ok || (err != nil && !errors.Is(err, mqtt.ErrNotAuthorized)) {
			t.Errorf("subscribe %s: %v, want allowed=%v", filter, err, ok)
		}
	}
	for topic, want := range map[string]string{
		own + "activations/acks": "", own + "meter/r1": "r1",
	} {
		if rid, err := mqtt.CheckPublishTopic(a, topic); err != nil || rid != want {
			t.Errorf("publish %s: %q %v", topic, rid, err)
		}
	}
	for _, topic := range []string{own + "activations", own + "errors", own + "meter", own + "meter/r1/x", own + "meter/+",
		mqtt.Root + b + "/activations/acks", mqtt.Root + b + "/meter/r1", "elsewhere", ""} {
		if _, err := mqtt.CheckPublishTopic(a, topic); !errors.Is(err, mqtt.ErrNotAuthorized) {
			t.Errorf("publish %s allowed", topic)
		}
	}
	for _, c := range []struct {
		filter, topic string
		ok            bool
	}{
		{"a/+/c", "a/b/c", true}, {"a/#", "a", true}, {"a/#", "a/b/c", true}, {"a/+", "a/b/c", false},
		{"#", "$SYS/x", false}, {"a/b", "a/b", true}, {"a/b", "a/bc", false}, {mqtt.MeterFilter, mqtt.MeterTopic(a, "r"), true},
	} {
		if mqtt.Match(c.filter, c.topic) != c.ok {
			t.Errorf("Match(%s, %s) != %v", c.filter, c.topic, c.ok)
		}
	}
	if mqtt.PartyOf(mqtt.Topic(a, mqtt.Acks)) != a || mqtt.PartyOf("x/y") != "" || mqtt.PartyOf(mqtt.AcksFilter) != "" {
		t.Error("PartyOf")
	}
}
