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
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
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

	// pubMu makes "room in every subscriber's session?" and the publish
	// one step for flexhub's own publishes (Publish).
	pubMu sync.Mutex
	// inflightWait is how long Publish waits for room in a connected
	// session that is full.
	inflightWait time.Duration
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
	e := &Embedded{srv: srv, hook: h, inflightWait: 10 * time.Second}
	h.publish = func(topic string, payload []byte) error {
		return e.Publish(context.Background(), topic, payload, 1, false)
	}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, err
	}
	if cfg.SessionStore != "" {
		f, err := openSessionFile(cfg.SessionStore)
		if err == nil {
			if err = srv.AddHook(f, nil); err != nil {
				f.Stop()
			}
		}
		if err != nil {
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
	e.addr = tcp.Address()
	return e, nil
}

// Addr is the address the broker listens on.
func (e *Embedded) Addr() string { return e.addr }

// ErrSessionFull is returned by Publish when a session subscribed to the
// topic already holds as many QoS 1/2 messages in flight as the broker
// keeps for one session (mochi's MaximumInflight, 8,192) and does not
// make room: its client is away, or connected but acknowledging nothing
// for the wait. The message was not taken (by any session: publish it
// again later).
var ErrSessionFull = errors.New("mqtt: a subscribed session is full (messages in flight at the broker's limit)")

// Publish publishes as flexhub (no topic rules). The broker takes the
// message synchronously: with qos 1 it is queued for every subscribed
// session, connected or not, when Publish returns.
//
// A session holds at most 8,192 messages in flight (mochi drops what
// comes beyond, without a word), and a connected client no more than its
// Receive Maximum. So at qos 1 and 2 Publish first waits for room in
// every session subscribed to the topic, while their clients acknowledge
// (a fan-out of 10,000 orders to one FSP); if a session stays full — its
// client is away, or acknowledges nothing for 10 s — it returns
// ErrSessionFull and the message goes to no one.
func (e *Embedded) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	var deadline time.Time
	for {
		if e.closed.Load() {
			return errors.New("mqtt: broker closed")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		e.pubMu.Lock()
		full, away := e.fullSession(topic, qos)
		if full == "" {
			err := e.srv.Publish(topic, payload, retain, qos)
			e.pubMu.Unlock()
			return err
		}
		e.pubMu.Unlock()
		if deadline.IsZero() {
			deadline = time.Now().Add(e.inflightWait)
		}
		if away || time.Now().After(deadline) {
			return fmt.Errorf("%w: client %s, topic %s", ErrSessionFull, full, topic)
		}
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// fullSession returns a session subscribed to topic (by client id) that
// has no room for one more message in flight, and whether its client is
// away; "" when all have room or qos is 0.
func (e *Embedded) fullSession(topic string, qos byte) (id string, away bool) {
	if qos == 0 {
		return "", false
	}
	most := int(e.srv.Options.Capabilities.MaximumInflight)
	subs := e.srv.Topics.Subscribers(topic)
	for cid, sub := range subs.Subscriptions {
		if sub.Qos == 0 {
			continue
		}
		cl, ok := e.srv.Clients.Get(cid)
		if !ok {
			continue
		}
		limit := most
		connected := cl.Net.Conn != nil && !cl.Closed()
		// A connected client that asked for a Receive Maximum below the
		// broker's limit gets no more than that in flight: mochi 2.7.9
		// queues what is beyond it and sends it later without tracking
		// it, so that its PUBACK never frees the quota and the session
		// stalls for good once Receive Maximum such messages have gone
		// out (TestEmbeddedSmallReceiveMaximum).
		if rm := int(cl.Properties.Props.ReceiveMaximum); connected && rm > 0 && rm < limit {
			limit = rm
		}
		if cl.State.Inflight.Len() < limit {
			continue
		}
		return cid, !connected
	}
	return "", false
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
	// publish is Embedded.Publish at QoS 1 (set once the broker runs).
	publish func(topic string, payload []byte) error

	mu     sync.Mutex
	conns  map[*mochi.Client]string // authenticated connection → party
	owners map[string]string        // client id → party whose session it is
	creds  map[*mochi.Client]string // authenticated connection → credential (with a CredentialNamer)
	subs   []subscription           // flexhub's subscriptions (OnPublish)
}

func (h *authHook) ID() string { return "flexhub-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnect, mochi.OnConnectAuthenticate, mochi.OnSessionEstablished, mochi.OnACLCheck, mochi.OnSubscribe, mochi.OnDisconnect, mochi.OnPublish}, []byte{b})
}

// OnSessionEstablished turns off mochi's own enforcement of the client's
// Receive Maximum (a send quota of 0 means none), before the connection
// reads its first packet. In mochi 2.7.9 that enforcement, once a
// client's quota is set, runs after every packet the client sends while
// anything is in flight to it: it copies and sorts every message in
// flight (8,192 at a fan-out, for each PUBACK), and takes the in-flight
// lock twice for reading, which deadlocks the connection when a publish
// asks for the lock in between; and a message it holds back for want of
// quota is sent later untracked, so its PUBACK never gives the quota
// back and the session stalls once Receive Maximum of them have gone out.
// Every message routed to a party's session is flexhub's own publish
// (Embedded.Publish), which keeps to the client's Receive Maximum itself.
func (h *authHook) OnSessionEstablished(cl *mochi.Client, _ packets.Packet) {
	cl.State.Inflight.ResetSendQuota(0)
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
		if perr := h.publish(Topic(party, Errors), refusal(topic, title, err)); perr != nil {
			h.log.Warn("mqtt publish refusal", "party", party, "err", perr)
		}
	}()
}

// sessionFile is the embedded broker's session store: persistent
// sessions, their subscriptions, the QoS 1/2 messages in flight to them
// and retained messages, in a bbolt file. It keeps the layout of mochi's
// bolt hook (bucket "mochi", the same keys and JSON records), so a file
// written by an earlier flexhub opens unchanged, but it writes
// differently: every change is queued and one goroutine commits all that
// queued while the previous commit was running in one transaction (one
// fsync), instead of one transaction and fsync per change. A put and a
// delete of the same key queued together cancel out: a message
// acknowledged before the next commit never reaches the disk.
//
// What waits for the disk: sessions (CONNECT with clean start off),
// subscriptions and retained messages are durable when the hook returns,
// as before (the caller waits for the commit that holds its change, in
// a group with everyone else's). What does not: a message in flight to a
// session, and its removal at the PUBACK, are written behind — the
// broker goes on at once and the change is on disk within one commit
// (a few milliseconds). Every such message is flexhub's own publish
// (parties publish only to flexhub's topics, which are not routed to
// sessions), and a crash of the broker is a crash of flexhub: an order
// lost from the file in that window is sent again by flexhub from its
// store until acknowledged, a notification is in the feed
// (docs/MQTT.md, "Sessions and the session file"). Close writes out
// everything queued before the file is closed, so a restart keeps every
// message in flight.
type sessionFile struct {
	mochi.HookBase
	path string
	db   *bbolt.DB

	mu      sync.Mutex
	pending map[string]storage.Serializable // key → record; nil deletes the key
	waiters []chan error                    // callers waiting for the next commit
	kick    chan struct{}                   // something is pending (capacity 1)
	closed  bool
	done    chan struct{} // the committer has stopped
}

// sessionBucket is the bucket of mochi's bolt hook.
const sessionBucket = "mochi"

func openSessionFile(path string) (*sessionFile, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(sessionBucket))
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	f := &sessionFile{path: path, db: db, pending: map[string]storage.Serializable{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go f.commitLoop()
	return f, nil
}

func (f *sessionFile) ID() string { return "flexhub-session-file" }

func (f *sessionFile) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mochi.OnSessionEstablished, mochi.OnDisconnect, mochi.OnSubscribed, mochi.OnUnsubscribed,
		mochi.OnRetainMessage, mochi.OnWillSent, mochi.OnQosPublish, mochi.OnQosComplete,
		mochi.OnQosDropped, mochi.OnSysInfoTick, mochi.OnClientExpired, mochi.OnRetainedExpired,
		mochi.StoredClients, mochi.StoredInflightMessages, mochi.StoredRetainedMessages,
		mochi.StoredSubscriptions, mochi.StoredSysInfo,
	}, []byte{b})
}

// put queues a record (nil: a deletion), encoded at its commit (a record
// replaced or deleted before then is never encoded). With wait it
// returns once the record is committed.
func (f *sessionFile) put(key string, v storage.Serializable, wait bool) {
	var ch chan error
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.Log.Debug("mqtt session file: change after close dropped", "key", key)
		return
	}
	f.pending[key] = v
	if wait {
		ch = make(chan error, 1)
		f.waiters = append(f.waiters, ch)
	}
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
	if ch != nil {
		if err := <-ch; err != nil {
			f.Log.Error("mqtt session file: commit", "key", key, "err", err)
		}
	}
}

func (f *sessionFile) del(key string, wait bool) { f.put(key, nil, wait) }

// commitLoop commits what is pending, one transaction at a time, until
// the file is closed and nothing is left.
func (f *sessionFile) commitLoop() {
	defer close(f.done)
	for {
		f.mu.Lock()
		batch, waiters, closed := f.pending, f.waiters, f.closed
		f.pending, f.waiters = map[string]storage.Serializable{}, nil
		f.mu.Unlock()
		if len(batch) > 0 {
			err := f.commit(batch)
			if err != nil && len(waiters) == 0 {
				f.Log.Error("mqtt session file: commit", "changes", len(batch), "err", err)
			}
			for _, w := range waiters {
				w <- err
			}
		} else {
			for _, w := range waiters {
				w <- nil
			}
		}
		if closed {
			return
		}
		if len(batch) == 0 {
			<-f.kick
		}
	}
}

func (f *sessionFile) commit(batch map[string]storage.Serializable) error {
	return f.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(sessionBucket))
		for k, v := range batch {
			if v == nil {
				if err := b.Delete([]byte(k)); err != nil {
					return err
				}
				continue
			}
			rec, err := v.MarshalBinary()
			if err != nil {
				f.Log.Error("mqtt session file: encode", "key", k, "err", err)
				continue
			}
			if err := b.Put([]byte(k), rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// Stop commits everything queued and closes the file.
func (f *sessionFile) Stop() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
	<-f.done
	return f.db.Close()
}

// The record keys of mochi's bolt hook.
func sessionClientKey(id string) string { return storage.ClientKey + "_" + id }
func sessionSubscriptionKey(id, filter string) string {
	return storage.SubscriptionKey + "_" + id + ":" + filter
}
func sessionInflightKey(id string, pk packets.Packet) string {
	return storage.InflightKey + "_" + id + ":" + pk.FormatID()
}
func sessionRetainedKey(topic string) string { return storage.RetainedKey + "_" + topic }

func (f *sessionFile) OnSessionEstablished(cl *mochi.Client, _ packets.Packet) { f.putClient(cl) }
func (f *sessionFile) OnWillSent(cl *mochi.Client, _ packets.Packet)           { f.putClient(cl) }

func (f *sessionFile) putClient(cl *mochi.Client) {
	p := cl.Properties.Props.Copy(false)
	f.put(sessionClientKey(cl.ID), &storage.Client{
		ID: cl.ID, T: storage.ClientKey, Remote: cl.Net.Remote, Listener: cl.Net.Listener,
		Username: cl.Properties.Username, Clean: cl.Properties.Clean, ProtocolVersion: cl.Properties.ProtocolVersion,
		Properties: storage.ClientProperties{
			SessionExpiryInterval: p.SessionExpiryInterval, AuthenticationMethod: p.AuthenticationMethod,
			AuthenticationData: p.AuthenticationData, RequestProblemInfo: p.RequestProblemInfo,
			RequestResponseInfo: p.RequestResponseInfo, ReceiveMaximum: p.ReceiveMaximum,
			TopicAliasMaximum: p.TopicAliasMaximum, User: p.User, MaximumPacketSize: p.MaximumPacketSize,
		},
		Will: storage.ClientWill(cl.Properties.Will),
	}, true)
}

func (f *sessionFile) OnDisconnect(cl *mochi.Client, _ error, expire bool) {
	if expire && cl.StopCause() != packets.ErrSessionTakenOver {
		f.del(sessionClientKey(cl.ID), true)
	}
}

func (f *sessionFile) OnClientExpired(cl *mochi.Client) { f.del(sessionClientKey(cl.ID), true) }

func (f *sessionFile) OnSubscribed(cl *mochi.Client, pk packets.Packet, codes []byte) {
	for i, s := range pk.Filters {
		k := sessionSubscriptionKey(cl.ID, s.Filter)
		f.put(k, &storage.Subscription{
			ID: k, T: storage.SubscriptionKey, Client: cl.ID, Qos: codes[i], Filter: s.Filter,
			Identifier: s.Identifier, NoLocal: s.NoLocal, RetainHandling: s.RetainHandling, RetainAsPublished: s.RetainAsPublished,
		}, i == len(pk.Filters)-1)
	}
}

func (f *sessionFile) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	for i, s := range pk.Filters {
		f.del(sessionSubscriptionKey(cl.ID, s.Filter), i == len(pk.Filters)-1)
	}
}

func (f *sessionFile) OnRetainMessage(cl *mochi.Client, pk packets.Packet, r int64) {
	k := sessionRetainedKey(pk.TopicName)
	if r == -1 {
		f.del(k, true)
		return
	}
	m := message(k, storage.RetainedKey, cl.ID, pk)
	f.put(k, &m, true)
}

func (f *sessionFile) OnRetainedExpired(topic string) { f.del(sessionRetainedKey(topic), true) }

// OnQosPublish queues a message in flight to a session (written behind).
func (f *sessionFile) OnQosPublish(cl *mochi.Client, pk packets.Packet, sent int64, _ int) {
	k := sessionInflightKey(cl.ID, pk)
	m := message(k, storage.InflightKey, cl.ID, pk)
	m.Sent = sent
	m.PacketID = pk.PacketID
	f.put(k, &m, false)
}

// OnQosComplete queues the removal of an acknowledged message.
func (f *sessionFile) OnQosComplete(cl *mochi.Client, pk packets.Packet) {
	f.del(sessionInflightKey(cl.ID, pk), false)
}

func (f *sessionFile) OnQosDropped(cl *mochi.Client, pk packets.Packet) { f.OnQosComplete(cl, pk) }

func (f *sessionFile) OnSysInfoTick(sys *system.Info) {
	f.put(storage.SysInfoKey, &storage.SystemInfo{ID: storage.SysInfoKey, T: storage.SysInfoKey, Info: *sys}, false)
}

func message(key, kind, client string, pk packets.Packet) storage.Message {
	p := pk.Properties.Copy(false)
	return storage.Message{
		ID: key, T: kind, Client: client, Origin: pk.Origin, FixedHeader: pk.FixedHeader,
		TopicName: pk.TopicName, Payload: pk.Payload, Created: pk.Created,
		Properties: storage.MessageProperties{
			PayloadFormat: p.PayloadFormat, MessageExpiryInterval: p.MessageExpiryInterval,
			ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData,
			SubscriptionIdentifier: p.SubscriptionIdentifier, TopicAlias: p.TopicAlias, User: p.User,
		},
	}
}

// records decodes every record whose key starts with prefix.
func records[T any, P interface {
	*T
	storage.Serializable
}](f *sessionFile, prefix string) ([]T, error) {
	out := []T{}
	err := f.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket([]byte(sessionBucket)).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			var r T
			if err := P(&r).UnmarshalBinary(v); err != nil {
				return fmt.Errorf("record %s: %w", k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("mqtt session file %s: %w", f.path, err)
	}
	return out, err
}

func (f *sessionFile) StoredClients() ([]storage.Client, error) {
	return records[storage.Client](f, storage.ClientKey+"_")
}

func (f *sessionFile) StoredSubscriptions() ([]storage.Subscription, error) {
	return records[storage.Subscription](f, storage.SubscriptionKey+"_")
}

func (f *sessionFile) StoredRetainedMessages() ([]storage.Message, error) {
	return records[storage.Message](f, storage.RetainedKey+"_")
}

// StoredInflightMessages also repairs records written by mochi's own bolt
// hook (flexhub before the session file was its own): mochi 2.7.9 stored
// a message in flight without its packet id, and a session restored from
// it fails to resend ("missing packet id"). The id is the last part of
// the record's key.
func (f *sessionFile) StoredInflightMessages() ([]storage.Message, error) {
	ms, err := records[storage.Message](f, storage.InflightKey+"_")
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

func (f *sessionFile) StoredSysInfo() (storage.SystemInfo, error) {
	var v storage.SystemInfo
	err := f.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte(sessionBucket)).Get([]byte(storage.SysInfoKey)); b != nil {
			return v.UnmarshalBinary(b)
		}
		return nil
	})
	return v, err
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
