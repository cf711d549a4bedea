package mqtt

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"
)

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Addr is the TCP address to listen on (":1883"; ":0" picks a port).
	Addr string
	// TLS, when set, makes the listener speak TLS (mqtts): API keys
	// travel in every CONNECT.
	TLS *tls.Config
	// Auth authenticates connections and authorises every subscribe and
	// publish. Required.
	Auth Authorizer
	// SessionStore is a file that keeps persistent sessions (their
	// subscriptions and undelivered QoS 1/2 messages) and retained
	// messages across restarts. Empty: in memory only.
	SessionStore string
	// Log receives the broker's warnings and errors; nil discards.
	Log *slog.Logger
}

// Embedded is the MQTT 5 broker inside flexhub (mochi-mqtt). flexhub's own
// publishes and subscriptions go through the broker's inline client: no
// network, no authentication, no topic rules.
type Embedded struct {
	srv    *mochi.Server
	hook   *authHook
	addr   string
	nextID atomic.Int64
	closed atomic.Bool
}

// StartEmbedded starts the broker listening on cfg.Addr.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Auth == nil {
		return nil, errors.New("mqtt: the embedded broker needs an Authorizer")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// mochi logs every connection at info; flexhub's log gets its warnings.
	brokerLog := slog.New(levelFloor{log.Handler(), slog.LevelWarn})
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: brokerLog})
	// A session (and its queued QoS 1 orders) outlives a dropped
	// connection for up to a day.
	srv.Options.Capabilities.MaximumSessionExpiryInterval = 24 * 60 * 60
	h := &authHook{auth: cfg.Auth, srv: srv, log: log, conns: map[*mochi.Client]string{}, owners: map[string]string{}, creds: map[*mochi.Client]string{}}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, err
	}
	if cfg.SessionStore != "" {
		if err := srv.AddHook(sessionStore{new(bolt.Hook)}, &bolt.Options{Path: cfg.SessionStore, Options: &bbolt.Options{Timeout: 5 * time.Second}}); err != nil {
			return nil, fmt.Errorf("mqtt session store %s: %w", cfg.SessionStore, err)
		}
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.Addr, TLSConfig: cfg.TLS})
	if err := srv.AddListener(tcp); err != nil {
		srv.Close()
		return nil, fmt.Errorf("mqtt listen %s: %w", cfg.Addr, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, err
	}
	return &Embedded{srv: srv, hook: h, addr: tcp.Address()}, nil
}

// Addr is the address the broker listens on.
func (e *Embedded) Addr() string { return e.addr }

// Publish publishes as flexhub (no topic rules). The broker takes the
// message synchronously: with qos 1 it is queued for every subscribed
// session, connected or not, when Publish returns.
func (e *Embedded) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	if e.closed.Load() {
		return errors.New("mqtt: broker closed")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.srv.Publish(topic, payload, retain, qos)
}

// Subscribe subscribes flexhub's handler; Message.Party is the party the
// publishing connection authenticated as.
//
// A party's QoS 0 and 1 messages on the filter are handed to the handler
// as the broker takes them (authHook.OnPublish), before any PUBACK: the
// broker acknowledges a QoS 1 message once the handler has returned, or,
// when the handler holds it (Message.Hold), once it releases it — for
// meter data, after the commit. Such a message goes to flexhub only
// (parties cannot subscribe to the party → server topics). flexhub's own
// publishes and QoS 2 messages take mochi's usual way (PUBREC/PUBACK
// first, then delivery to the inline subscription), where Hold does
// nothing.
func (e *Embedded) Subscribe(ctx context.Context, filter string, qos byte, handler func(Message)) error {
	id := int(e.nextID.Add(1))
	e.hook.mu.Lock()
	e.hook.subs = append(e.hook.subs, subscription{filter: filter, qos: qos, handler: handler})
	e.hook.mu.Unlock()
	return e.srv.Subscribe(filter, id, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		handler(Message{Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain, Party: e.hook.partyOfOrigin(pk.Origin)})
	})
}

// OnPublish hands a party's QoS 0 or 1 message on a topic flexhub
// subscribed to straight to flexhub's handlers and answers the PUBACK
// itself once they are done with it (see Embedded.Subscribe); mochi then
// neither acknowledges nor routes the message.
func (h *authHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || pk.FixedHeader.Qos > 1 {
		return pk, nil
	}
	h.mu.Lock()
	var hs []func(Message)
	for _, s := range h.subs {
		if Match(s.filter, pk.TopicName) {
			hs = append(hs, s.handler)
		}
	}
	h.mu.Unlock()
	if len(hs) == 0 {
		return pk, nil
	}
	var mu sync.Mutex
	holds := 1 // this call, and each handler that holds the message
	done := func() {
		mu.Lock()
		holds--
		last := holds == 0
		mu.Unlock()
		if last && pk.FixedHeader.Qos == 1 {
			ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID, ReasonCode: packets.CodeSuccess.Code}
			if err := cl.WritePacket(ack); err != nil {
				// the connection is gone: the client sends the message again
				h.log.Info("mqtt puback", "client", cl.ID, "topic", pk.TopicName, "err", err)
			}
		}
	}
	m := Message{Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain, Party: h.partyOfOrigin(cl.ID)}
	m.hold = func() func() {
		mu.Lock()
		holds++
		mu.Unlock()
		var once sync.Once
		return func() { once.Do(done) }
	}
	for _, handler := range hs {
		handler(m)
	}
	done()
	return pk, packets.ErrRejectPacket
}

// Close stops listening and disconnects every client; persistent
// sessions stay in the session store.
func (e *Embedded) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	return e.srv.Close()
}

// ProvisionParty does nothing: the embedded broker asks the Authorizer
// at every CONNECT. (Embedded is a Provisioner so that revocation reaches
// open connections.)
func (e *Embedded) ProvisionParty(context.Context, string, string, string) error { return nil }

// RevokeCredential disconnects the connections that logged in with the
// credential (0x98 Administrative action); it could not connect again
// anyway. Needs an Authorizer that is a CredentialNamer.
func (e *Embedded) RevokeCredential(_ context.Context, _, credentialID string) error {
	e.hook.mu.Lock()
	var drop []*mochi.Client
	for cl, c := range e.hook.creds {
		if c != "" && c == credentialID {
			drop = append(drop, cl)
		}
	}
	e.hook.mu.Unlock()
	for _, cl := range drop {
		_ = e.srv.DisconnectClient(cl, packets.ErrAdministrativeAction)
	}
	return nil
}

// authHook is the mochi hook that puts flexhub's Authorizer in front of
// CONNECT, SUBSCRIBE and PUBLISH.
type authHook struct {
	mochi.HookBase
	auth Authorizer
	srv  *mochi.Server
	log  *slog.Logger

	mu     sync.Mutex
	conns  map[*mochi.Client]string // authenticated connection → party
	owners map[string]string        // client id → party whose session it is
	creds  map[*mochi.Client]string // authenticated connection → credential (with a CredentialNamer)
	subs   []subscription           // flexhub's subscriptions (OnPublish)
}

func (h *authHook) ID() string { return "flexhub-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnect, mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnSubscribe, mochi.OnDisconnect, mochi.OnPublish}, []byte{b})
}

// OnConnect authenticates the CONNECT. It answers a refusal itself so
// that the reason code can say why (0x86 for a bad key, 0x87 for a good
// key used as another party); OnConnectAuthenticate then only confirms.
func (h *authHook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	party, err := h.auth.Authenticate(ctx, string(pk.Connect.Username), string(pk.Connect.Password))
	if err == nil {
		err = h.claim(cl, party)
	}
	if err != nil {
		code := packets.ErrServerUnavailable
		switch {
		case errors.Is(err, ErrBadCredentials):
			code = packets.ErrBadUsernameOrPassword
		case errors.Is(err, ErrNotAuthorized):
			code = packets.ErrNotAuthorized
		default:
			h.log.Error("mqtt authenticate", "client", cl.ID, "err", err)
		}
		h.log.Info("mqtt connection refused", "client", cl.ID, "username", string(pk.Connect.Username), "remote", cl.Net.Remote, "err", err)
		_ = h.srv.SendConnack(cl, code, false, nil)
		return code
	}
	h.mu.Lock()
	h.conns[cl] = party
	if n, ok := h.auth.(CredentialNamer); ok {
		h.creds[cl] = n.CredentialOf(string(pk.Connect.Password))
	}
	h.mu.Unlock()
	// Kept with the session (the session store saves the client's user
	// properties), so a session restored after a restart still knows its
	// party while it waits for its client.
	props := cl.Properties.Props.User[:0:0]
	for _, u := range cl.Properties.Props.User {
		if u.Key != partyProperty { // never the client's own claim
			props = append(props, u)
		}
	}
	cl.Properties.Props.User = append(props, packets.UserProperty{Key: partyProperty, Val: party})
	return nil
}

// partyProperty names the session's party among the client's properties.
const partyProperty = "flexhub-party"

// claim binds a client id to a party: a session belongs to the party that
// made it, so nobody inherits another party's subscriptions and queued
// orders by reusing its client id.
func (h *authHook) claim(cl *mochi.Client, party string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	owner, ok := h.owners[cl.ID]
	if !ok {
		// A session restored from the session store after a restart: it
		// belongs to whoever it was made by (user name = party id or a
		// credential of it).
		if old, found := h.srv.Clients.Get(cl.ID); found {
			for _, u := range old.Properties.Props.User {
				if u.Key == partyProperty && u.Val != party {
					return fmt.Errorf("%w: client id %s is another party's session", ErrNotAuthorized, cl.ID)
				}
			}
		}
		h.owners[cl.ID] = party
		return nil
	}
	if owner != party {
		return fmt.Errorf("%w: client id %s is another party's session", ErrNotAuthorized, cl.ID)
	}
	return nil
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, _ packets.Packet) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.conns[cl]
	return ok
}

func (h *authHook) OnDisconnect(cl *mochi.Client, _ error, expire bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, cl)
	delete(h.creds, cl)
	if expire {
		delete(h.owners, cl.ID)
	}
}

// party returns the party of an authenticated connection, or with
// offline true also of a session waiting for its client (messages are
// queued for it).
func (h *authHook) party(cl *mochi.Client, offline bool) (string, bool) {
	h.mu.Lock()
	p, ok := h.conns[cl]
	if !ok && offline {
		p, ok = h.owners[cl.ID]
	}
	h.mu.Unlock()
	if ok || !offline {
		return p, ok
	}
	for _, u := range cl.Properties.Props.User {
		if u.Key == partyProperty {
			return u.Val, true
		}
	}
	return "", false
}

// partyOfOrigin returns the party whose connection (by client id) sent a
// message.
func (h *authHook) partyOfOrigin(clientID string) string {
	if clientID == "" || clientID == mochi.InlineClientId {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.owners[clientID]
}

// OnACLCheck decides publishes (write) and subscriptions and deliveries
// (read). A refused publish is answered 0x87 in its PUBACK by the broker
// and explained on the party's errors topic.
func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	party, ok := h.party(cl, !write)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !write {
		// Subscriptions and every delivery: the pure topic rule.
		return h.auth.CanSubscribe(ctx, party, topic) == nil
	}
	if err := h.auth.CanPublish(ctx, party, topic); err != nil {
		h.log.Info("mqtt publish refused", "party", party, "topic", topic, "err", err)
		h.tell(party, topic, "publish refused", err)
		return false
	}
	return true
}

// OnSubscribe explains refused subscriptions on the party's errors topic;
// the SUBACK's 0x87 comes from OnACLCheck.
func (h *authHook) OnSubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if cl.Net.Inline {
		return pk
	}
	party, ok := h.party(cl, false)
	if !ok {
		return pk
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, f := range pk.Filters {
		if err := h.auth.CanSubscribe(ctx, party, f.Filter); err != nil {
			h.log.Info("mqtt subscription refused", "party", party, "filter", f.Filter, "err", err)
			h.tell(party, f.Filter, "subscription refused", err)
		}
	}
	return pk
}

// tell publishes a refusal on party's errors topic, after the broker has
// answered the packet.
func (h *authHook) tell(party, topic, title string, err error) {
	go func() {
		if perr := h.srv.Publish(Topic(party, Errors), refusal(topic, title, err), false, 1); perr != nil {
			h.log.Warn("mqtt publish refusal", "party", party, "err", perr)
		}
	}()
}

// sessionStore is mochi's bolt storage with one repair: mochi 2.7.9 stores
// an undelivered (inflight) message without its packet id, and a session
// restored from it fails to resend ("missing packet id"). The id is the
// last part of the message's storage key, so it is put back from there.
type sessionStore struct{ *bolt.Hook }

func (s sessionStore) StoredInflightMessages() ([]storage.Message, error) {
	ms, err := s.Hook.StoredInflightMessages()
	for i := range ms {
		if ms[i].PacketID != 0 {
			continue
		}
		if k := strings.LastIndexByte(ms[i].ID, ':'); k >= 0 {
			if id, perr := strconv.ParseUint(ms[i].ID[k+1:], 10, 16); perr == nil {
				ms[i].PacketID = uint16(id)
			}
		}
	}
	return ms, err
}

// levelFloor drops records below a level.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.Handler.Enabled(ctx, lv)
}

// Handle drops mochi's two noisy records: the empty-message warning it
// logs for every refused or dropped connection (flexhub logs its own
// refusals), and the error for a session store that has no $SYS
// statistics yet.
func (l levelFloor) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "" {
		return nil
	}
	if r.Message == "failed to get data" {
		sys := false
		r.Attrs(func(a slog.Attr) bool {
			sys = sys || (a.Key == "key" && a.Value.String() == "SYS")
			return !sys
		})
		if sys {
			return nil
		}
	}
	return l.Handler.Handle(ctx, r)
}

func (l levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{l.Handler.WithAttrs(a), l.min}
}

func (l levelFloor) WithGroup(n string) slog.Handler {
	return levelFloor{l.Handler.WithGroup(n), l.min}
}
