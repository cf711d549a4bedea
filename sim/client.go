package sim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/flexhub/flexhub"
)

// The MQTT topics of a party (docs/SIMULATOR.md).
func TopicActivations(party string) string { return "flexhub/v1/parties/" + party + "/activations" }
func TopicAcks(party string) string        { return "flexhub/v1/parties/" + party + "/activations/acks" }
func TopicErrors(party string) string      { return "flexhub/v1/parties/" + party + "/errors" }
func TopicMeter(party, resource string) string {
	return "flexhub/v1/parties/" + party + "/meter/" + resource
}

// FSPStats are an FSP connection's running totals.
type FSPStats struct {
	Connected    atomic.Bool
	Connects     atomic.Int64 // connections made (the first and every reconnection)
	AcksSent     atomic.Int64 // order reports the broker (or REST) took
	Readings     atomic.Int64 // readings the broker took
	Messages     atomic.Int64 // meter messages the broker took
	PublishErr   atomic.Int64 // publishes that failed for the connection (meter data is kept and resent)
	Refused      atomic.Int64 // publishes the server refused (PUBACK reason code ≥ 0x80)
	ServerErrors atomic.Int64 // messages flexhub sent on the party's errors topic
	BadOrders    atomic.Int64 // activation messages that were not an order
	Drops        atomic.Int64 // connections dropped on purpose (fault)
	Lost         atomic.Int64 // readings dropped because the buffer was full
	Buffered     atomic.Int64 // readings waiting to be sent (gauge)
}

// maxBacklog bounds the readings one resource keeps while the broker is
// unreachable (two flows × 720 intervals: two hours at PT10S).
const maxBacklog = 1440

// FSP is one simulated FSP: one MQTT connection (whatever the number of
// its resources), its Fleet, and bounded goroutines: one takes orders,
// one steps the fleet per interval, Publishers send.
type FSP struct {
	Party string
	Name  string
	Fleet *Fleet
	Stats FSPStats

	key   string
	opts  *Options
	api   *API
	clock Clock
	log   *slog.Logger

	cm     *autopaho.ConnectionManager
	orders chan []byte
	acks   chan []Report
	meter  chan Batch

	mu          sync.Mutex
	conn        net.Conn
	downUntil   time.Time
	backlog     map[string][]Reading
	pendingAcks [][]Report
	lastErr     string
}

// LastError is the most recent connection or publish problem, if any.
func (f *FSP) LastError() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

func (f *FSP) setErr(err error) {
	f.mu.Lock()
	f.lastErr = err.Error()
	f.mu.Unlock()
}

// Run connects and simulates until ctx ends, then disconnects cleanly.
func (f *FSP) Run(ctx context.Context) error {
	u, err := url.Parse(f.opts.MQTT)
	if err != nil {
		return fmt.Errorf("--mqtt %q: %w", f.opts.MQTT, err)
	}
	n := len(f.Fleet.Units) + f.Fleet.Groups()
	f.orders = make(chan []byte, 4096)
	f.acks = make(chan []Report, 4096)
	f.meter = make(chan Batch, n+1)
	f.backlog = map[string][]Reading{}

	// The connection manager lives until the workers have stopped, so
	// that they never publish into a closed client.
	cmCtx, cmCancel := context.WithCancel(context.Background())
	defer cmCancel()
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: false, // a persistent session: orders sent while away wait for us
		SessionExpiryInterval:         3600,
		ConnectUsername:               f.Party,
		ConnectPassword:               []byte(f.key),
		ConnectTimeout:                10 * time.Second,
		ReconnectBackoff:              backoff,
		AttemptConnection:             f.dial,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			f.Stats.Connected.Store(true)
			if f.Stats.Connects.Add(1) > 1 {
				f.log.Info("reconnected", "party", f.Party)
			}
			go f.subscribe(cmCtx, cm)
		},
		OnConnectionDown: func() bool {
			f.Stats.Connected.Store(false)
			f.log.Info("connection lost", "party", f.Party)
			return true
		},
		OnConnectError: func(err error) { f.setErr(err); f.log.Debug("connect failed", "party", f.Party, "err", err) },
		ClientConfig: paho.ClientConfig{
			ClientID:          "sim-" + f.Party,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){f.onPublish(ctx)},
			OnClientError:     func(err error) { f.setErr(err) },
		},
	}
	cm, err := autopaho.NewConnection(cmCtx, cfg)
	if err != nil {
		return err
	}
	f.cm = cm

	var wg sync.WaitGroup
	wg.Add(2 + f.opts.Publishers)
	go func() { defer wg.Done(); f.takeOrders(ctx) }()
	go func() { defer wg.Done(); f.tick(ctx) }()
	for i := 0; i < f.opts.Publishers; i++ {
		go func() { defer wg.Done(); f.publish(ctx) }()
	}
	wg.Wait()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = cm.Disconnect(dctx)
	f.Stats.Connected.Store(false)
	return nil
}

// backoff waits 0.5 s, 1 s, 2 s, then 5 s between connection attempts.
func backoff(attempt int) time.Duration {
	if attempt <= 0 {
		return 0
	}
	return min(5*time.Second, 250*time.Millisecond<<min(attempt, 5))
}

// dial opens the network connection, or refuses while a simulated outage
// lasts. The connection is kept so that a drop fault can close it.
func (f *FSP) dial(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	f.mu.Lock()
	until := f.downUntil
	f.mu.Unlock()
	if f.clock.Now().Before(until) {
		return nil, fmt.Errorf("simulated outage until %s", until.Format(time.RFC3339))
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var (
		c   net.Conn
		err error
	)
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt", "":
		var d net.Dialer
		c, err = d.DialContext(dctx, "tcp", u.Host)
	case "tls", "ssl", "mqtts", "tcps":
		d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}}
		c, err = d.DialContext(dctx, "tcp", u.Host)
		if err == nil {
			c = packets.NewThreadSafeConn(c)
		}
	default:
		return nil, fmt.Errorf("MQTT URL scheme %q: use tcp:// or tls://", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.conn = c
	f.mu.Unlock()
	return c, nil
}

// drop closes the connection and refuses to reconnect for d (fault).
func (f *FSP) drop(d time.Duration) {
	f.mu.Lock()
	f.downUntil = f.clock.Now().Add(d)
	c := f.conn
	f.mu.Unlock()
	f.Stats.Drops.Add(1)
	f.log.Info("dropping the MQTT connection (fault)", "party", f.Party, "for", d)
	if c != nil {
		c.Close()
	}
}

func (f *FSP) subscribe(ctx context.Context, cm *autopaho.ConnectionManager) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sa, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: TopicActivations(f.Party), QoS: 1},
		{Topic: TopicErrors(f.Party), QoS: 1},
	}})
	if err != nil {
		f.setErr(fmt.Errorf("subscribe: %w", err))
		f.log.Warn("subscribe failed", "party", f.Party, "err", err)
		return
	}
	for i, rc := range sa.Reasons {
		if rc >= 0x80 {
			err := fmt.Errorf("subscription %d refused by the broker (reason code 0x%02x)", i, rc)
			f.setErr(err)
			f.log.Warn("subscribe refused", "party", f.Party, "err", err)
		}
	}
}

// onPublish routes what the broker sends: orders to the order taker,
// the server's complaints to the log.
func (f *FSP) onPublish(ctx context.Context) func(paho.PublishReceived) (bool, error) {
	act, errs := TopicActivations(f.Party), TopicErrors(f.Party)
	return func(pr paho.PublishReceived) (bool, error) {
		switch pr.Packet.Topic {
		case act:
			raw := append([]byte(nil), pr.Packet.Payload...)
			select {
			case f.orders <- raw:
			case <-ctx.Done():
			}
		case errs:
			f.Stats.ServerErrors.Add(1)
			msg := string(pr.Packet.Payload)
			if len(msg) > 500 {
				msg = msg[:500] + "…"
			}
			f.setErr(errors.New("server: " + msg))
			f.log.Warn("flexhub refused a message", "party", f.Party, "error", msg)
		}
		return true, nil
	}
}

func (f *FSP) takeOrders(ctx context.Context) {
	for {
		select {
		case raw := <-f.orders:
			var o flexhub.ActivationOrder
			if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
				f.Stats.BadOrders.Add(1)
				f.log.Warn("not an activation order", "party", f.Party, "err", err, "payload", truncate(raw, 200))
				continue
			}
			if reps := f.Fleet.Receive(&o, f.clock.Now()); len(reps) > 0 {
				select {
				case f.acks <- reps:
				case <-ctx.Done():
					return
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// publish sends reports (first) and meter data until ctx ends.
func (f *FSP) publish(ctx context.Context) {
	for {
		select {
		case reps := <-f.acks:
			f.sendReports(ctx, reps)
			continue
		case <-ctx.Done():
			return
		default:
		}
		select {
		case reps := <-f.acks:
			f.sendReports(ctx, reps)
		case b := <-f.meter:
			f.sendMeter(ctx, b)
		case <-ctx.Done():
			return
		}
	}
}

// sendReports sends one order's reports in order; what cannot be sent now
// waits for the next tick.
func (f *FSP) sendReports(ctx context.Context, reps []Report) {
	for i, r := range reps {
		var err error
		if f.opts.ReportsOver == "rest" {
			err = f.api.Report(ctx, r)
			var he *HTTPError
			if errors.As(err, &he) && he.Status/100 == 4 {
				if he.Status == 409 { // the order is final already (flexhub completed or ended it)
					f.Stats.AcksSent.Add(1)
				} else {
					f.Stats.Refused.Add(1)
					f.setErr(fmt.Errorf("report %s %s: %w", r.OrderID, r.Status, err))
					f.log.Warn("report refused", "party", f.Party, "order", r.OrderID, "status", r.Status, "err", err)
				}
				continue // sending it again would not change the answer
			}
		} else {
			err = f.publishJSON(ctx, TopicAcks(f.Party), r)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.setErr(fmt.Errorf("report %s %s: %w", r.OrderID, r.Status, err))
			f.mu.Lock()
			f.pendingAcks = append(f.pendingAcks, reps[i:])
			f.mu.Unlock()
			return
		}
		f.Stats.AcksSent.Add(1)
	}
}

var errRefused = errors.New("refused by the server")

// publishJSON publishes v at QoS 1 and waits for the broker's PUBACK. A
// publish that went out but whose acknowledgement the connection lost is
// kept in the session and resent by the client: it counts as sent.
func (f *FSP) publishJSON(ctx context.Context, topic string, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !f.Stats.Connected.Load() {
		return autopaho.ConnectionDownError
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pr, err := f.cm.Publish(pctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload,
		Properties: &paho.PublishProperties{ContentType: "application/json"}})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, paho.ErrNetworkErrorAfterStored):
		return nil
	case pr != nil && pr.ReasonCode >= 0x80:
		f.Stats.Refused.Add(1)
		reason := ""
		if pr.Properties != nil {
			reason = pr.Properties.ReasonString
		}
		f.log.Warn("publish refused", "party", f.Party, "topic", topic, "reason_code", fmt.Sprintf("0x%02x", pr.ReasonCode), "reason", reason)
		return fmt.Errorf("%w: reason code 0x%02x %s", errRefused, pr.ReasonCode, reason)
	default:
		if ctx.Err() == nil { // not our own shutdown
			f.Stats.PublishErr.Add(1)
		}
		return err
	}
}

// sendMeter publishes one resource's readings; if the connection is down
// they go back to the buffer for the next tick.
func (f *FSP) sendMeter(ctx context.Context, b Batch) {
	err := f.publishJSON(ctx, TopicMeter(f.Party, b.ResourceID), MeterMessage{Readings: b.Readings})
	switch {
	case err == nil:
		f.Stats.Messages.Add(1)
		f.Stats.Readings.Add(int64(len(b.Readings)))
	case errors.Is(err, errRefused):
		f.setErr(fmt.Errorf("meter data for %s: %w", b.ResourceID, err))
	default:
		if ctx.Err() == nil {
			f.keep(b)
		}
	}
}

// keep puts readings back in front of the resource's buffer.
func (f *FSP) keep(b Batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := append(b.Readings, f.backlog[b.ResourceID]...)
	if over := len(rs) - maxBacklog; over > 0 {
		rs = rs[over:]
		f.Stats.Lost.Add(int64(over))
	}
	f.Stats.Buffered.Add(int64(len(rs) - len(f.backlog[b.ResourceID])))
	f.backlog[b.ResourceID] = rs
}

// tick steps the fleet at every interval boundary and queues what it
// produced.
func (f *FSP) tick(ctx context.Context) {
	res := f.opts.Resolution
	// Send a little after each boundary so that the interval is over on
	// the server's clock too.
	lag := min(res/10, 500*time.Millisecond)
	f.Fleet.Advance(f.clock.Now())
	next := alignUp(f.clock.Now(), res)
	for {
		if f.clock.SleepUntil(ctx, next.Add(lag)) != nil {
			return
		}
		now := f.clock.Now()
		tk := f.Fleet.Advance(now)
		next = alignDown(now, res).Add(res)

		f.mu.Lock()
		retry := f.pendingAcks
		f.pendingAcks = nil
		f.mu.Unlock()
		for _, r := range tk.Reports {
			retry = append(retry, []Report{r})
		}
		for _, reps := range retry {
			select {
			case f.acks <- reps:
			case <-ctx.Done():
				return
			}
		}
		for _, b := range tk.Batches {
			f.mu.Lock()
			if old := f.backlog[b.ResourceID]; len(old) > 0 {
				b.Readings = append(old, b.Readings...)
				delete(f.backlog, b.ResourceID)
				f.Stats.Buffered.Add(-int64(len(old)))
			}
			f.mu.Unlock()
			select {
			case f.meter <- b:
			case <-ctx.Done():
				return
			}
		}
		if tk.Drop > 0 {
			f.drop(tk.Drop)
		}
	}
}
