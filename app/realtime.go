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
	if err := sub.Subscribe(ctx, AcksFilter, 1, func(topic string, payload []byte) {
		a, err := s.decodeAck(ctx, topic, payload)
		if err != nil {
			s.refuse(ctx, topic, partyOfTopic(topic), "", err)
			return
		}
		select {
		case acks <- a:
		case <-ctx.Done():
		}
	}); err != nil {
		return err
	}
	if err := sub.Subscribe(ctx, MeterFilter, 1, func(topic string, payload []byte) {
		s.handleMeter(ctx, topic, payload)
	}); err != nil {
		return err
	}
	go s.ackBatches(ctx, acks)
	return nil
}

type ackIn struct {
	topic string
	rep   OrderReport
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
		if !stored(err) {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if len(batch) == 0 {
			continue
		}
		reps := make([]OrderReport, len(batch))
		for i, a := range batch {
			reps[i] = a.rep
		}
		if !stored(s.ReportActivationOrders(ctx, reps)) {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		for i, r := range reps {
			if r.Err != nil {
				s.refuse(ctx, batch[i].topic, r.By.ID, r.Report.OrderID, r.Err)
			}
		}
	}
}

// handleMeter stores the readings of one meter message.
func (s *Service) handleMeter(ctx context.Context, topic string, payload []byte) {
	party := partyOfTopic(topic)
	resource := topic[strings.LastIndexByte(topic, '/')+1:]
	by, err := s.sender(ctx, topic)
	if err != nil {
		s.refuse(ctx, topic, party, "", err)
		return
	}
	var m MeterMessage
	if err := strictJSON(payload, &m); err != nil {
		s.refuse(ctx, topic, party, "", err)
		return
	}
	for i, r := range m.Readings {
		if r.ResourceID != resource || r.MeteringPointID != "" {
			s.refuse(ctx, topic, party, "", flexhub.RuleErrorf(flexhub.EInvalid, "meter.topic", "readings["+strconv.Itoa(i)+"].resource_id",
				"a meter topic carries readings of its own resource %s only", resource))
			return
		}
	}
	if _, err := s.IngestMeterReadings(WithActor(ctx, by), m.Readings); err != nil {
		s.refuse(ctx, topic, party, "", err)
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
