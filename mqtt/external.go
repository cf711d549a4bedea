package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// ExternalConfig configures flexhub's connection to an external broker.
type ExternalConfig struct {
	// URL of the broker: mqtt://host:port (or tcp://), mqtts:// or tls://
	// for TLS.
	URL string
	// Username and Password of flexhub's own broker account (on mosquitto,
	// a Dynamic Security client allowed to send $CONTROL commands).
	Username, Password string
	// ClientID of flexhub's session; default "flexhub". Several flexhub
	// instances on one broker need one each (and keep it across restarts:
	// the broker queues for the session while the instance is away).
	ClientID string
	// SharedGroup, when set, makes flexhub's subscriptions shared
	// ($share/{group}/{filter}): instances side by side with the same
	// group each get a share of what parties send, and each message is
	// handled once. Empty: every instance gets everything. mosquitto 2.0
	// does not keep shared subscriptions across its own restart: what
	// parties send between the restart and flexhub's re-subscription
	// (milliseconds) is lost, where a plain subscription of a persistent
	// session is kept and queued.
	SharedGroup string
	// Auth, when set, is asked about every message from a party before a
	// handler sees it (CanPublish): the broker's ACLs keep a party inside
	// its own subtree, this adds the rules an ACL cannot know (which
	// resources the party operates). A refused message is dropped and
	// explained on the party's errors topic.
	Auth Authorizer
	Log  *slog.Logger
}

// External is flexhub's client on an external MQTT 5 broker (autopaho:
// reconnects with backoff and re-subscribes on every connection).
type External struct {
	cm  *autopaho.ConnectionManager
	cfg ExternalConfig
	log *slog.Logger

	mu   sync.Mutex
	subs []subscription
	// early holds messages that came before any handler for their topic
	// was subscribed (a persistent session's queue is delivered right
	// after the CONNACK, before flexhub's handlers subscribe):
	// unacknowledged, handed to the first matching Subscribe.
	early     []earlyMessage
	earlyTick *time.Timer

	ctrl    sync.Mutex // one dynsec command batch at a time
	replies chan []byte
	cancel  context.CancelFunc
}

type subscription struct {
	filter  string
	qos     byte
	handler func(Message)
}

// ConnectExternal connects to the broker and waits (until ctx ends) for
// the first connection.
func ConnectExternal(ctx context.Context, cfg ExternalConfig) (*External, error) {
	u, err := brokerURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "flexhub"
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &External{cfg: cfg, log: log, replies: make(chan []byte, 16)}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	cc := autopaho.ClientConfig{
		ServerUrls: []*url.URL{u},
		KeepAlive:  30,
		// A persistent session: what is queued for flexhub (acks, meter
		// data) while it reconnects waits for it.
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         60 * 60,
		ConnectUsername:               cfg.Username,
		ConnectPassword:               []byte(cfg.Password),
		ReconnectBackoff:              autopaho.NewExponentialBackoff(250*time.Millisecond, 10*time.Second, 500*time.Millisecond, 2),
		ConnectTimeout:                10 * time.Second,
		// Receive Maximum: how many QoS 1 messages the broker may have
		// in flight to flexhub. A meter message is acknowledged only once
		// its group is committed, so this bounds a group on an external
		// broker (mosquitto's own default is 20).
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			rm := uint16(receiveMaximum)
			cp.Properties.ReceiveMaximum = &rm
			return cp, nil
		},
		OnConnectionUp: e.connectionUp,
		OnConnectError: func(err error) {
			log.Warn("mqtt broker connection failed", "broker", u.Redacted(), "err", err)
		},
		ClientConfig: paho.ClientConfig{
			ClientID: cfg.ClientID,
			// flexhub acknowledges a message once its handler is done
			// with it, which for a held message (Message.Hold) is after
			// the handler returned: e.g. once meter readings are
			// committed. Acks go out in the order messages came.
			EnableManualAcknowledgment: true,
			SendAcksInterval:           time.Millisecond,
			OnPublishReceived:          []func(paho.PublishReceived) (bool, error){e.received},
			OnClientError:              func(err error) { log.Warn("mqtt client error", "err", err) },
			OnServerDisconnect: func(d *paho.Disconnect) {
				log.Warn("mqtt broker disconnected flexhub", "reason", d.ReasonCode)
			},
		},
	}
	cm, err := autopaho.NewConnection(runCtx, cc)
	if err != nil {
		cancel()
		return nil, err
	}
	e.cm = cm
	if err := cm.AwaitConnection(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("mqtt broker %s: %w", u.Redacted(), err)
	}
	// Dynsec answers come on the response topic: subscribed before the
	// first command (connectionUp subscribes again after reconnections).
	if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: dynsecResponse, QoS: 1}}}); err != nil {
		log.Warn("mqtt subscribe", "filter", dynsecResponse, "err", err)
	}
	return e, nil
}

func brokerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqtt broker %q: give mqtt://host:port", s)
	}
	switch u.Scheme {
	case "mqtt", "tcp":
		u.Scheme = "mqtt"
	case "mqtts", "ssl", "tls":
		u.Scheme = "tls"
	default:
		return nil, fmt.Errorf("mqtt broker %q: scheme must be mqtt:// or mqtts://", s)
	}
	if u.Port() == "" {
		port := "1883"
		if u.Scheme == "tls" {
			port = "8883"
		}
		u.Host += ":" + port
	}
	return u, nil
}

// connectionUp (re-)subscribes everything on every connection: the
// broker may have lost the session.
func (e *External) connectionUp(cm *autopaho.ConnectionManager, _ *paho.Connack) {
	e.log.Info("mqtt connected to broker", "broker", e.cfg.URL)
	e.mu.Lock()
	subs := append([]subscription(nil), e.subs...)
	e.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: dynsecResponse, QoS: 1}}}); err != nil {
			e.log.Warn("mqtt subscribe", "filter", dynsecResponse, "err", err)
		}
		for _, s := range subs {
			if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: e.shared(s.filter), QoS: s.qos}}}); err != nil {
				e.log.Warn("mqtt subscribe", "filter", s.filter, "err", err)
			}
		}
	}()
}

// received routes an incoming message to the handlers whose filter it
// matches.
func (e *External) received(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	// The message is acknowledged when the last of its holders is done:
	// this dispatch (when it returns) and each handler that held it.
	var mu sync.Mutex
	holds := 1
	done := func() {
		mu.Lock()
		holds--
		last := holds == 0
		mu.Unlock()
		if last {
			e.ack(pr)
		}
	}
	defer done()
	if p.Topic == dynsecResponse {
		select {
		case e.replies <- append([]byte(nil), p.Payload...):
		default:
		}
		return true, nil
	}
	m := Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, Party: PartyOf(p.Topic)}
	m.hold = func() func() {
		mu.Lock()
		holds++
		mu.Unlock()
		var once sync.Once
		return func() { once.Do(done) }
	}
	if m.Party != "" && e.cfg.Auth != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := e.cfg.Auth.CanPublish(ctx, m.Party, m.Topic)
		cancel()
		if err != nil {
			e.log.Info("mqtt message refused", "party", m.Party, "topic", m.Topic, "err", err)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := e.Publish(ctx, Topic(m.Party, Errors), refusal(m.Topic, "publish refused", err), 1, false); err != nil {
					e.log.Warn("mqtt publish refusal", "party", m.Party, "err", err)
				}
			}()
			return true, nil
		}
	}
	e.mu.Lock()
	var hs []func(Message)
	for _, s := range e.subs {
		if Match(s.filter, p.Topic) {
			hs = append(hs, s.handler)
		}
	}
	if len(hs) == 0 {
		// Not acknowledged (that would drop it) until a handler takes it.
		e.early = append(e.early, earlyMessage{m, m.Hold()})
		if e.earlyTick == nil {
			e.earlyTick = time.AfterFunc(earlyWait, e.dropEarly)
		}
	}
	e.mu.Unlock()
	for _, h := range hs {
		h(m)
	}
	return true, nil
}

type earlyMessage struct {
	m       Message
	release func()
}

// earlyWait is how long a message for which flexhub has no handler waits
// for one before it is acknowledged and dropped.
const earlyWait = 30 * time.Second

// dropEarly acknowledges the messages no handler took (a topic of an
// earlier subscription of the session that flexhub no longer has).
func (e *External) dropEarly() {
	e.mu.Lock()
	early := e.early
	e.early, e.earlyTick = nil, nil
	e.mu.Unlock()
	for _, em := range early {
		e.log.Warn("mqtt message without a handler dropped", "topic", em.m.Topic)
		em.release()
	}
}

// receiveMaximum is the Receive Maximum flexhub asks an external broker
// for.
const receiveMaximum = 2000

// ack acknowledges a received message to the broker (in order of
// arrival: paho sends an ack once every earlier message is acknowledged).
func (e *External) ack(pr paho.PublishReceived) {
	if err := pr.Client.Ack(pr.Packet); err != nil {
		e.log.Warn("mqtt ack", "topic", pr.Packet.Topic, "err", err)
	}
}

// Publish publishes as flexhub; with qos 1 it waits for the broker's
// PUBACK and fails when the broker refuses (or the connection is down).
func (e *External) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	if err := e.cm.AwaitConnection(ctx); err != nil {
		return err
	}
	_, err := e.cm.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: qos, Retain: retain})
	return err
}

// Subscribe subscribes handler now and after every reconnection.
func (e *External) Subscribe(ctx context.Context, filter string, qos byte, handler func(Message)) error {
	e.mu.Lock()
	e.subs = append(e.subs, subscription{filter, qos, handler})
	var taken []earlyMessage
	kept := e.early[:0]
	for _, em := range e.early {
		if Match(filter, em.m.Topic) {
			taken = append(taken, em)
		} else {
			kept = append(kept, em)
		}
	}
	e.early = kept
	e.mu.Unlock()
	// At most Receive Maximum (2,000) of them: a handler that queues
	// what it takes (app.ServeMQTT) has room for them before its reader
	// starts.
	for _, em := range taken {
		handler(em.m)
		em.release()
	}
	if err := e.cm.AwaitConnection(ctx); err != nil {
		return err
	}
	_, err := e.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: e.shared(filter), QoS: qos}}})
	return err
}

func (e *External) shared(filter string) string {
	if e.cfg.SharedGroup == "" {
		return filter
	}
	return "$share/" + e.cfg.SharedGroup + "/" + filter
}

// Close disconnects from the broker.
func (e *External) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.cm.Disconnect(ctx)
	e.cancel()
	if errors.Is(err, autopaho.ConnectionDownError) || (err != nil && strings.Contains(err.Error(), "not connected")) {
		return nil
	}
	return err
}
