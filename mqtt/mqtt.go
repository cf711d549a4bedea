// Package mqtt is flexhub's MQTT transport: one interface (Bus) over a
// broker, with two implementations. Embedded (the default) runs an MQTT 5
// broker inside flexhub (mochi-mqtt) that authenticates every CONNECT with
// a flexhub API key and authorises every SUBSCRIBE and PUBLISH per party
// through an Authorizer the app implements. External connects to an MQTT 5
// broker run beside flexhub (mosquitto 2.x with its Dynamic Security
// plugin) as a client (paho autopaho) and provisions each party's access
// there (DynsecProvisioner), so the same topic rules hold on both.
//
// The topic tree (docs/MQTT.md has the payloads):
//
//	flexhub/v1/parties/{party_id}/activations        server → party: activation orders
//	flexhub/v1/parties/{party_id}/activations/acks   party → server: reports on orders
//	flexhub/v1/parties/{party_id}/notifications      server → party
//	flexhub/v1/parties/{party_id}/monitoring         server → party: delivery alerts
//	flexhub/v1/parties/{party_id}/errors             server → party: why a publish was refused
//	flexhub/v1/parties/{party_id}/meter/{resource_id} party → server: meter readings of one resource
//
// The package knows nothing of flexhub's domain: who a key belongs to and
// which resources a party operates are the Authorizer's answers.
package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Bus is flexhub's view of a broker: publish, subscribe, close. flexhub
// itself is a superuser on it (it publishes to every party's topics and
// subscribes to what parties send).
type Bus interface {
	// Publish hands a message to the broker. With qos 1 it returns once the
	// broker has taken it (PUBACK on an external broker; the embedded
	// broker takes it synchronously).
	Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
	// Subscribe calls handler for every message on a topic matching
	// filter until the bus closes. Handlers run on the broker's delivery
	// goroutine: hand long work on.
	Subscribe(ctx context.Context, filter string, qos byte, handler func(Message)) error
	// Close stops the bus (the embedded broker stops listening and
	// disconnects its clients; the external client disconnects).
	Close() error
}

// Message is one message delivered to a flexhub subscription.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Party is the publishing party where the broker can tell: on the
	// embedded broker, the party the connection authenticated as; on an
	// external broker, the party of the topic's subtree (the broker lets
	// a party publish only under its own subtree, so that is the sender).
	// Empty for flexhub's own messages.
	Party string

	// hold, when the bus can defer the broker's acknowledgement of the
	// message, takes it over (see Hold).
	hold func() (release func())
}

// Hold tells the bus that the handler takes over the acknowledgement of
// the message: the broker is acknowledged (PUBACK at QoS 1) when release
// is called, after the handler has returned, rather than when the
// handler returns. Call release exactly once, also for a message the
// handler refuses. On an external broker the acknowledgements go out in
// the order the messages arrived; on the embedded broker each message's
// PUBACK goes to its publisher when it is released. Where the broker
// acknowledged the message before delivering it (flexhub's own
// publishes, QoS 2 on the embedded broker) release does nothing.
func (m Message) Hold() (release func()) {
	if m.hold == nil {
		return func() {}
	}
	return m.hold()
}

// Authorizer answers the broker's questions about parties; app.Service
// implements it (app/mqttauth.go).
type Authorizer interface {
	// Authenticate checks a CONNECT's user name and password (a flexhub
	// API key) and returns the party. Errors wrapping ErrBadCredentials
	// are answered 0x86 Bad User Name or Password, ErrNotAuthorized 0x87
	// Not Authorized, anything else 0x88 Server Unavailable.
	Authenticate(ctx context.Context, username, password string) (partyID string, err error)
	// CanSubscribe reports whether party may subscribe to filter (nil) or
	// why not.
	CanSubscribe(ctx context.Context, partyID, filter string) error
	// CanPublish reports whether party may publish to topic (nil) or why
	// not.
	CanPublish(ctx context.Context, partyID, topic string) error
}

// Provisioner gives parties access on an external broker. Because flexhub
// keeps only a hash of API keys, access is provisioned when a key is
// issued (its plaintext exists only then) and withdrawn when it is
// revoked. The embedded broker needs none: it asks the Authorizer.
type Provisioner interface {
	ProvisionParty(ctx context.Context, partyID, credentialID, password string) error
	RevokeCredential(ctx context.Context, partyID, credentialID string) error
}

// CredentialNamer is implemented by an Authorizer that can tell which
// credential (API key) a password is, so that the embedded broker can
// disconnect the connections of a key when it is revoked.
type CredentialNamer interface {
	CredentialOf(password string) string
}

var (
	// ErrBadCredentials: unknown, malformed or revoked key (MQTT 5 reason
	// code 0x86 Bad User Name or Password).
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrNotAuthorized: a valid key used for what it may not do, e.g. as
	// another party (0x87 Not Authorized).
	ErrNotAuthorized = errors.New("not authorized")
)

// Reason codes flexhub relies on (MQTT 5.0, 2.4).
const (
	CodeBadCredentials    byte = 0x86
	CodeNotAuthorized     byte = 0x87
	CodeServerUnavailable byte = 0x88
)

// Root is the common prefix of every flexhub topic; a party's subtree is
// Root + party id.
const Root = "flexhub/v1/parties/"

// What a party's topic is for (the last levels after the party id).
const (
	Activations   = "activations"
	Acks          = "activations/acks"
	Notifications = "notifications"
	Monitoring    = "monitoring"
	Errors        = "errors"
	Meter         = "meter"
)

// Topic returns party's topic for what (Activations, Acks, ...).
func Topic(partyID, what string) string { return Root + partyID + "/" + what }

// MeterTopic returns the topic a party streams a resource's readings on.
func MeterTopic(partyID, resourceID string) string {
	return Root + partyID + "/" + Meter + "/" + resourceID
}

// Filters flexhub subscribes to for what parties send.
const (
	AcksFilter  = Root + "+/" + Acks
	MeterFilter = Root + "+/" + Meter + "/+"
)

// PartyOf returns the party id of a topic (or filter) in the tree, or ""
// when it is not under Root or names no single party.
func PartyOf(topic string) string {
	rest, ok := strings.CutPrefix(topic, Root)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	if id == "" || strings.ContainsAny(id, "+#") {
		return ""
	}
	return id
}

// ownLevels returns the levels below party's subtree, or ok=false when
// topic (or filter) is not inside it.
func ownLevels(partyID, topic string) (levels []string, ok bool) {
	if partyID == "" || strings.ContainsAny(partyID, "+#/") {
		return nil, false
	}
	rest, ok := strings.CutPrefix(topic, Root+partyID+"/")
	if !ok || rest == "" {
		return nil, false
	}
	return strings.Split(rest, "/"), true
}

// CheckSubscribe is the topic rule for subscriptions: a party may
// subscribe to its own server → party topics, exactly or with + and #
// below its own party id; never above its subtree, never to another
// party's, never to the party → server topics (its acks and meter
// topics are for flexhub). The same rule decides which messages a
// party's subscription may receive, so a wide filter such as
// flexhub/v1/parties/{self}/# is allowed but never echoes its own acks or
// meter readings back.
func CheckSubscribe(partyID, filter string) error {
	lv, ok := ownLevels(partyID, filter)
	if !ok {
		return fmt.Errorf("%w: a party subscribes only below its own topics %s%s/", ErrNotAuthorized, Root, partyID)
	}
	for i, l := range lv {
		if l == "#" && i != len(lv)-1 || (strings.ContainsAny(l, "+#") && len(l) > 1) {
			return fmt.Errorf("%w: malformed topic filter %q", ErrNotAuthorized, filter)
		}
	}
	if lv[0] == Meter || (len(lv) == 2 && lv[0] == Activations && lv[1] == "acks") {
		return fmt.Errorf("%w: %s is a topic the party publishes to flexhub, not one it can subscribe to", ErrNotAuthorized, filter)
	}
	return nil
}

// CheckPublishTopic is the topic rule for publishing: a party publishes
// only to its own acks topic and to its own meter/{resource_id} topics.
// For a meter topic it returns the resource id: whether the party
// operates that resource is for the Authorizer to check.
func CheckPublishTopic(partyID, topic string) (resourceID string, err error) {
	if strings.ContainsAny(topic, "+#") {
		return "", fmt.Errorf("%w: wildcards are not allowed in a topic name", ErrNotAuthorized)
	}
	lv, ok := ownLevels(partyID, topic)
	switch {
	case !ok:
		return "", fmt.Errorf("%w: a party publishes only to its own topics %s%s/activations/acks and %s%s/meter/{resource_id}", ErrNotAuthorized, Root, partyID, Root, partyID)
	case len(lv) == 2 && lv[0] == Activations && lv[1] == "acks":
		return "", nil
	case len(lv) == 2 && lv[0] == Meter && lv[1] != "":
		return lv[1], nil
	}
	return "", fmt.Errorf("%w: %s is not a topic a party publishes to (only activations/acks and meter/{resource_id})", ErrNotAuthorized, topic)
}

// Refusal is the message flexhub publishes on a party's errors topic when
// the broker refused something the party sent. It has the shape of the
// app's own error messages (a refused payload), so a party reads one
// format: type urn:flexhub:rule:mqtt.not_authorized for the broker's
// refusals.
type Refusal struct {
	Topic  string    `json:"topic"`
	At     time.Time `json:"at"`
	Type   string    `json:"type"`
	Title  string    `json:"title"`
	Detail string    `json:"detail"`
}

// RefusalType is the type of a broker refusal.
const RefusalType = "urn:flexhub:rule:mqtt.not_authorized"

func refusal(topic, title string, err error) []byte {
	b, _ := json.Marshal(Refusal{Topic: topic, At: time.Now().UTC(), Type: RefusalType, Title: title, Detail: err.Error()})
	return b
}

// Match reports whether topic matches filter (MQTT 5, 4.7).
func Match(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && !strings.HasPrefix(filter, "$") {
		return false // [MQTT-4.7.2-1]
	}
	fl := strings.Split(filter, "/")
	tl := strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) {
			return false
		}
		if f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}

// Handlers adapts a Bus to subscribers that take the topic and payload
// only (app.Subscriber).
type Handlers struct{ Bus Bus }

// Subscribe subscribes handler to filter on the bus.
func (h Handlers) Subscribe(ctx context.Context, filter string, qos byte, handler func(topic string, payload []byte)) error {
	return h.Bus.Subscribe(ctx, filter, qos, func(m Message) { handler(m.Topic, m.Payload) })
}

// SubscribeHeld subscribes a handler that takes over each message's
// acknowledgement (Message.Hold) and calls release once it is done with
// the message.
func (h Handlers) SubscribeHeld(ctx context.Context, filter string, qos byte, handler func(topic string, payload []byte, release func())) error {
	return h.Bus.Subscribe(ctx, filter, qos, func(m Message) { handler(m.Topic, m.Payload, m.Hold()) })
}
