package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// What flexhub takes in over MQTT (docs/MQTT.md has the topic tree):
//
//	flexhub/v1/parties/{party}/activations/acks   FSP reports on orders
//	flexhub/v1/parties/{party}/meter/{resource}   meter readings of a resource
//
// The broker lets a party publish only under its own subtree (and meter
// data only for resources it operates), so the party in the topic is the
// sender. A message flexhub refuses is answered on the sender's errors
// topic with the problem (type urn:flexhub:rule:..., the field, the
// detail) and the topic it came on; nothing of it is stored.

// Subscriber is the part of the MQTT bus that delivers messages to
// flexhub's handlers.
type Subscriber interface {
	Subscribe(ctx context.Context, filter string, qos byte, handler func(topic string, payload []byte)) error
}

// HoldingSubscriber is a Subscriber whose handlers can take over a
// message's acknowledgement to the broker: the broker is acknowledged
// when the handler calls release, which may be after it returned
// (mqtt.Handlers on an external broker).
type HoldingSubscriber interface {
	SubscribeHeld(ctx context.Context, filter string, qos byte, handler func(topic string, payload []byte, release func())) error
}

// MQTT topic filters flexhub subscribes to.
const (
	AcksFilter  = "flexhub/v1/parties/+/activations/acks"
	MeterFilter = "flexhub/v1/parties/+/meter/+"
)

// MeterMessage is the payload of a meter topic.
type MeterMessage struct {
	Readings []flexhub.MeterReading `json:"readings"`
}

// ErrorMessage is what flexhub publishes on a party's errors topic.
type ErrorMessage struct {
	Topic  string    `json:"topic" doc:"the topic of the refused message"`
	At     time.Time `json:"at"`
	Type   string    `json:"type" doc:"urn:flexhub:rule:<rule> when a rule failed, else about:blank"`
	Title  string    `json:"title"`
	Field  string    `json:"field,omitempty"`
	Detail string    `json:"detail"`
	// OrderID names the order an acknowledgement was about.
	OrderID string `json:"order_id,omitempty"`
}

// ServeMQTT subscribes flexhub's handlers and processes acknowledgements
// in batches (one transaction for all that arrived within a few
// milliseconds) until ctx ends.
func (s *Service) ServeMQTT(ctx context.Context, sub Subscriber) error {
	acks := make(chan ackIn, 65536)
	onAck := func(topic string, payload []byte, release func()) {
		a, err := s.decodeAck(ctx, topic, payload)
		if err != nil {
			s.refuse(ctx, topic, partyOfTopic(topic), "", err)
			release()
			return
		}
		a.release = release
		select {
		case acks <- a:
		case <-ctx.Done():
		}
	}
	// A holding subscriber acknowledges a report to the broker (PUBACK)
	// once its batch is committed: an acknowledged report is stored.
	hs, holds := sub.(HoldingSubscriber)
	if holds {
		if err := hs.SubscribeHeld(ctx, AcksFilter, 1, onAck); err != nil {
			return err
		}
	} else if err := sub.Subscribe(ctx, AcksFilter, 1, func(topic string, payload []byte) { onAck(topic, payload, func() {}) }); err != nil {
		return err
	}
	meter := make(chan *meterMsg, meterQueue)
	if holds {
		err := hs.SubscribeHeld(ctx, MeterFilter, 1, func(topic string, payload []byte, release func()) {
			s.handleMeter(ctx, meter, topic, payload, release)
		})
		if err != nil {
			return err
		}
	} else if err := sub.Subscribe(ctx, MeterFilter, 1, func(topic string, payload []byte) {
		s.handleMeter(ctx, meter, topic, payload, nil)
	}); err != nil {
		return err
	}
	go s.ackBatches(ctx, acks)
	go s.meterBatches(ctx, meter)
	go s.runConsumerStream(ctx)
	return nil
}

type ackIn struct {
	topic   string
	rep     OrderReport
	release func() // acknowledges the message to the broker
}

// partyOfTopic returns the party id in flexhub/v1/parties/{party}/...
func partyOfTopic(topic string) string {
	parts := strings.Split(topic, "/")
	if len(parts) >= 4 && parts[0] == "flexhub" && parts[1] == "v1" && parts[2] == "parties" {
		return parts[3]
	}
	return ""
}

// sender loads the party a topic belongs to.
func (s *Service) sender(ctx context.Context, topic string) (*flexhub.Party, error) {
	id := partyOfTopic(topic)
	var p *flexhub.Party
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		var err error
		p, err = tx.Party(ctx, id)
		return err
	})
	return p, err
}

func strictJSON(payload []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.DisallowUnknownFields()
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return flexhub.RuleErrorf(flexhub.EInvalid, "mqtt.payload", "", "malformed JSON payload: %v", err)
	}
	if d.More() {
		return flexhub.RuleErrorf(flexhub.EInvalid, "mqtt.payload", "", "one JSON object per message, got more")
	}
	return nil
}

// decodeAck parses an acknowledgement; its sender (the party of the
// topic) is read by ackBatches, once per party and batch.
func (s *Service) decodeAck(_ context.Context, topic string, payload []byte) (ackIn, error) {
	var rep flexhub.ActivationOrderReport
	if err := strictJSON(payload, &rep); err != nil {
		return ackIn{}, err
	}
	return ackIn{topic: topic, rep: OrderReport{Report: rep, Channel: "mqtt"}}, nil
}

// ackSenders reads the parties that sent a batch's acknowledgements, in
// one read transaction; an ack whose party is not found is answered on
// its errors topic and dropped from the batch.
func (s *Service) ackSenders(ctx context.Context, batch []ackIn) ([]ackIn, error) {
	parties := map[string]*flexhub.Party{}
	missing := map[string]error{}
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		for _, a := range batch {
			id := partyOfTopic(a.topic)
			if _, ok := parties[id]; ok {
				continue
			}
			if _, ok := missing[id]; ok {
				continue
			}
			p, err := tx.Party(ctx, id)
			switch {
			case err == nil:
				parties[id] = p
			case flexhub.ErrorKind(err) == flexhub.ENotFound:
				missing[id] = err
			default:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := batch[:0]
	for _, a := range batch {
		id := partyOfTopic(a.topic)
		if err, ok := missing[id]; ok {
			s.refuse(ctx, a.topic, id, a.rep.Report.OrderID, err)
			continue
		}
		a.rep.By = parties[id]
		out = append(out, a)
	}
	return out, nil
}

// ackBatches applies acknowledgements in batches: it takes what is queued
// (up to 2,000), reads their senders, applies them in one transaction,
// answers refusals on the senders' errors topics, and goes again.
func (s *Service) ackBatches(ctx context.Context, acks <-chan ackIn) {
	for {
		var batch []ackIn
		select {
		case <-ctx.Done():
			return
		case a := <-acks:
			batch = append(batch, a)
		}
	fill:
		for len(batch) < 2000 {
			select {
			case a := <-acks:
				batch = append(batch, a)
			default:
				break fill
			}
		}
		s.storeAcks(ctx, batch)
		for _, a := range batch {
			a.release()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// storeAcks stores one batch of acknowledgements; refusals go to their
// senders' errors topics.
func (s *Service) storeAcks(ctx context.Context, batch []ackIn) {
	batch = append([]ackIn(nil), batch...) // ackSenders filters in place
	stored := func(err error) bool {
		if err == nil {
			return true
		}
		if ctx.Err() == nil {
			s.log.Error("activation acknowledgements", "batch", len(batch), "err", err)
			for _, a := range batch {
				s.refuse(ctx, a.topic, partyOfTopic(a.topic), a.rep.Report.OrderID, flexhub.Errorf(flexhub.EInternal, "flexhub could not store the report; send it again"))
			}
		}
		return false
	}
	batch, err := s.ackSenders(ctx, batch)
	if !stored(err) || len(batch) == 0 {
		return
	}
	reps := make([]OrderReport, len(batch))
	for i, a := range batch {
		reps[i] = a.rep
	}
	if !stored(s.ReportActivationOrders(ctx, reps)) {
		return
	}
	for i, r := range reps {
		if r.Err != nil {
			s.refuse(ctx, batch[i].topic, r.By.ID, r.Report.OrderID, r.Err)
		}
	}
}

// Meter messages over MQTT are stored in groups: every message is checked
// on its own as it arrives (handleMeter, on the broker's delivery
// goroutine), then queued; meterBatches stores what has queued meanwhile,
// from every connection, in one transaction. The broker's acknowledgement
// of a message to flexhub follows its commit: a holding subscriber
// (HoldingSubscriber) acknowledges when the group is committed, while the
// handler goes on with the next message; on a plain Subscriber the handler
// itself waits for the commit. docs/MQTT.md ("Meter data: how it is
// stored, and when a reading counts as accepted") says what that means
// for each broker.
const (
	meterQueue         = 8192   // messages checked and waiting for a group
	meterGroupMessages = 2000   // most messages in one transaction
	meterGroupReadings = 50_000 // most readings in one transaction
)

// meterMsg is a meter message checked on its own, waiting to be stored.
type meterMsg struct {
	topic, party string
	in           *meterIngestion // in.by is set in the group's transaction
	err          error           // the outcome
	done         func()          // called once stored or refused
}

// handleMeter checks one meter message and queues it for storage; a
// message refused, by a check or by the store, is answered on the
// sender's errors topic. release (nil: the handler waits for the commit
// itself) is called once the message is stored or refused.
func (s *Service) handleMeter(ctx context.Context, q chan<- *meterMsg, topic string, payload []byte, release func()) {
	party := partyOfTopic(topic)
	fail := func(err error) {
		s.refuse(ctx, topic, party, "", err)
		if release != nil {
			release()
		}
	}
	resource := topic[strings.LastIndexByte(topic, '/')+1:]
	var m MeterMessage
	if err := decodeMeterMessage(payload, &m); err != nil {
		fail(err)
		return
	}
	for i, r := range m.Readings {
		if r.ResourceID != resource || r.MeteringPointID != "" {
			fail(flexhub.RuleErrorf(flexhub.EInvalid, "meter.topic", "readings["+strconv.Itoa(i)+"].resource_id",
				"a meter topic carries readings of its own resource %s only", resource))
			return
		}
	}
	in, err := s.prepareMeter(nil, m.Readings)
	if err != nil {
		fail(err)
		return
	}
	msg := &meterMsg{topic: topic, party: party, in: in}
	var stored chan struct{}
	if release == nil {
		stored = make(chan struct{})
		msg.done = func() { close(stored) }
	} else {
		msg.done = func() {
			if msg.err != nil {
				s.refuse(ctx, topic, party, "", msg.err)
			}
			release()
		}
	}
	select {
	case q <- msg:
	case <-ctx.Done():
		return
	}
	if stored == nil {
		return
	}
	select {
	case <-stored:
	case <-ctx.Done():
		return
	}
	if msg.err != nil {
		s.refuse(ctx, topic, party, "", msg.err)
	}
}

// meterBatches stores queued meter messages: it takes what is queued (up
// to meterGroupMessages messages or meterGroupReadings readings), stores
// it in one transaction, then reports each message's outcome, and goes
// again. It does not wait for more to arrive: messages that come while a
// transaction commits form the next group.
func (s *Service) meterBatches(ctx context.Context, q <-chan *meterMsg) {
	for {
		var group []*meterMsg
		select {
		case <-ctx.Done():
			return
		case m := <-q:
			group = append(group, m)
		}
		n := len(group[0].in.values)
	fill:
		for len(group) < meterGroupMessages && n < meterGroupReadings {
			select {
			case m := <-q:
				group = append(group, m)
				n += len(m.in.values)
			default:
				break fill
			}
		}
		s.storeMeterGroup(ctx, group)
		for _, m := range group {
			m.done()
		}
	}
}

// storeMeterGroup stores a group of checked meter messages in one
// transaction: the readings of one sender's messages as one ingestion
// (one batch id and audit entry per sender and group). A message whose
// sender may not send its data (checkMeterSendersIn, which writes nothing)
// is refused and the others go on; if the transaction fails otherwise (a
// correction of a reading sent in the same group, a lost race on
// PostgreSQL, an error of the store) every message is stored again on its
// own, so that one message cannot fail the others.
func (s *Service) storeMeterGroup(ctx context.Context, group []*meterMsg) {
	type ingestion struct {
		in  *meterIngestion
		res *flexhub.MeterIngestResult
	}
	var ins []*ingestion
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		ins = ins[:0]
		bySender := map[string]*ingestion{}
		parties := map[string]*flexhub.Party{}
		// The senders of every subject of the group, in one read.
		var subjects []meterSubject
		for _, m := range group {
			subjects = append(subjects, m.in.subjects...)
		}
		senders, err := readMeterSenders(ctx, tx, subjects)
		if err != nil {
			return err
		}
		for _, m := range group {
			m.err = nil
			by, ok := parties[m.party]
			if !ok {
				var err error
				if by, err = tx.Party(ctx, m.party); err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
					return err
				}
				parties[m.party] = by
			}
			if by == nil {
				m.err = flexhub.Errorf(flexhub.ENotFound, "party %s not found", m.party)
				continue
			}
			m.in.by = by
			if err := checkMeterSendersIn(m.in, senders); err != nil {
				m.err = err // a refusal: the others go on
				continue
			}
			g := bySender[by.ID]
			if g == nil {
				g = &ingestion{in: &meterIngestion{by: by, now: m.in.now}}
				bySender[by.ID] = g
				ins = append(ins, g)
			}
			g.in.values = append(g.in.values, m.in.values...)
			g.in.subjects = append(g.in.subjects, m.in.subjects...)
		}
		// The readings of every sender first, then the audit entries: the
		// audit chain's lock (shared with every other writer) is taken
		// last and held only to the commit.
		batchIDs := make([]string, len(ins))
		for i, g := range ins {
			var err error
			if g.res, batchIDs[i], err = s.putMeterReadings(ctx, tx, g.in); err != nil {
				return err
			}
		}
		for i, g := range ins {
			if err := s.recordMeter(ctx, tx, g.in, g.res, batchIDs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, g := range ins {
			s.meterStored(g.in, g.res)
		}
		return
	}
	if ctx.Err() != nil {
		for _, m := range group {
			m.err = flexhub.Errorf(flexhub.EInternal, "flexhub is stopping and did not store the message; send it again")
		}
		return
	}
	if len(group) > 1 {
		s.log.Info("meter messages: the group failed, storing them one by one", "messages", len(group), "err", err)
	}
	for _, m := range group {
		m.err = nil
		if m.in.by == nil {
			if m.in.by, m.err = s.sender(ctx, m.topic); m.err != nil {
				continue
			}
		}
		if _, m.err = s.storeMeter(ctx, m.in); m.err != nil && flexhub.ErrorKind(m.err) == flexhub.EInternal {
			s.log.Error("meter message", "topic", m.topic, "err", m.err)
		}
	}
}

// refuse answers a message on its sender's errors topic.
func (s *Service) refuse(ctx context.Context, topic, party, orderID string, err error) {
	s.log.Info("mqtt message refused", "topic", topic, "err", err)
	if s.pub == nil || party == "" {
		return
	}
	m := ErrorMessage{Topic: topic, At: s.now(), Type: "about:blank", Title: "refused", Detail: err.Error(), OrderID: orderID}
	var fe *flexhub.Error
	if errors.As(err, &fe) {
		m.Detail, m.Field, m.Title = fe.Message, fe.Field, fe.Kind
		if fe.Rule != "" {
			m.Type = "urn:flexhub:rule:" + fe.Rule
		}
	}
	payload, _ := json.Marshal(m)
	if perr := s.pub.Publish(ctx, Topic(party, "errors"), payload, 1, false); perr != nil {
		s.log.Warn("publish error message", "party", party, "err", perr)
	}
}
