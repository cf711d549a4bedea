package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// Provisioning on mosquitto's Dynamic Security plugin, over MQTT
// ($CONTROL/dynamic-security/v1).
//
// Scheme. Every party gets one role, flexhub-party-{party_id}, whose ACLs
// are the topic rules (CheckSubscribe, CheckPublishTopic) written for its
// own subtree. Every API key gets a dynsec client whose user name is the
// key's credential id (the 32 hex digits after "fh_"), password the key,
// role the party's: a party with three keys has three clients, and
// revoking one deletes only that client (mosquitto then disconnects its
// sessions). Besides, the user name = party id (what the embedded broker
// and the simulator use) is a client too, holding the party's most
// recently issued key; its textname records that key's credential id, so
// revoking that key deletes it as well. With a dynsec user name unique,
// this is how both "party id + its key" and "credential id + key" log in.
//
// The resource rule (a party publishes meter data only for resources it
// operates) changes with every registration, so it is not in the ACLs:
// the role allows meter/+ below the party's subtree, and External (with
// an Authorizer) drops a message for a resource the party does not
// operate and explains it on the party's errors topic.

const (
	dynsecTopic    = "$CONTROL/dynamic-security/v1"
	dynsecResponse = dynsecTopic + "/response"
	// ServerRole is the dynsec role flexhub gives its own client:
	// publish, subscribe and receive everything under flexhub/.
	ServerRole = "flexhub-server"
)

// RoleOf is the dynsec role of a party.
func RoleOf(partyID string) string { return "flexhub-party-" + partyID }

type acl struct {
	Type     string `json:"acltype"`
	Topic    string `json:"topic"`
	Allow    bool   `json:"allow"`
	Priority int    `json:"priority,omitempty"`
}

// partyACLs are the topic rules of one party in dynsec form. Higher
// priority wins; a party→server topic is neither subscribed to nor
// received, a server→party topic of its own subtree is, nothing else of
// flexhub's tree is received.
func partyACLs(partyID string) []acl {
	own := Root + partyID + "/"
	acks, meter := Topic(partyID, Acks), own+Meter
	return []acl{
		{"subscribeLiteral", acks, false, 10},
		{"subscribePattern", meter + "/#", false, 10},
		{"publishClientReceive", acks, false, 10},
		{"publishClientReceive", meter + "/#", false, 10},
		{"subscribePattern", own + "#", true, 0},
		{"publishClientReceive", own + "#", true, 0},
		{"publishClientSend", acks, true, 0},
		{"publishClientSend", meter + "/+", true, 0},
		// Nothing else of flexhub's tree reaches the party, not even
		// through a session it took over by another party's client id
		// (mosquitto 2.0 lets a client with another user name inherit a
		// session; receiving is allowed by default).
		{"publishClientReceive", "flexhub/#", false, -10},
	}
}

// DynsecProvisioner provisions parties on mosquitto through an External
// connection whose user may send dynsec commands (the admin client made
// by `mosquitto_ctrl dynsec init`, or any client with its role).
type DynsecProvisioner struct {
	e   *External
	seq atomic.Int64
}

// Dynsec returns the provisioner over e.
func (e *External) Dynsec() *DynsecProvisioner { return &DynsecProvisioner{e: e} }

type dynsecCmd map[string]any

type dynsecReply struct {
	Command         string          `json:"command"`
	Error           string          `json:"error"`
	CorrelationData string          `json:"correlationData"`
	Data            json.RawMessage `json:"data"`
}

// do sends a batch of commands and returns the replies in order.
func (d *DynsecProvisioner) do(ctx context.Context, cmds ...dynsecCmd) ([]dynsecReply, error) {
	d.e.ctrl.Lock()
	defer d.e.ctrl.Unlock()
	for {
		select {
		case <-d.e.replies: // stale replies of a timed-out batch
			continue
		default:
		}
		break
	}
	// A command that changes flexhub's own client makes mosquitto
	// disconnect it; the answer may then be lost. Every command here is
	// safe to repeat, so a batch without an answer is sent again.
	for attempt := 1; ; attempt++ {
		rs, err := d.try(ctx, cmds)
		if err == nil || attempt == 3 || ctx.Err() != nil {
			return rs, err
		}
	}
}

func (d *DynsecProvisioner) try(ctx context.Context, cmds []dynsecCmd) ([]dynsecReply, error) {
	// Every instance on the broker sees every answer: the correlation
	// data names this one.
	corr := d.e.cfg.ClientID + "-" + strconv.FormatInt(d.seq.Add(1), 10)
	for i, c := range cmds {
		c["correlationData"] = corr + "-" + strconv.Itoa(i)
	}
	body, _ := json.Marshal(map[string]any{"commands": cmds})
	if err := d.e.cm.AwaitConnection(ctx); err != nil {
		return nil, err
	}
	// (Re-)subscribe to the answers first: after a reconnection the
	// subscription may not be back yet. Idempotent on the broker.
	if _, err := d.e.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: dynsecResponse, QoS: 1}}}); err != nil {
		return nil, fmt.Errorf("dynsec: subscribe %s: %w", dynsecResponse, err)
	}
	if err := d.e.Publish(ctx, dynsecTopic, body, 1, false); err != nil {
		return nil, fmt.Errorf("dynsec %s: %w", cmds[0]["command"], err)
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, fmt.Errorf("dynsec %s: no answer from the broker in 5 s (is the dynamic security plugin loaded, and may %q use it?)", cmds[0]["command"], d.e.cfg.Username)
		case b := <-d.e.replies:
			var r struct {
				Responses []dynsecReply `json:"responses"`
			}
			if err := json.Unmarshal(b, &r); err != nil || len(r.Responses) == 0 || r.Responses[0].CorrelationData != corr+"-0" {
				continue // someone else's answer
			}
			return r.Responses, nil
		}
	}
}

// one sends one command and returns its error text ("" when it worked).
func (d *DynsecProvisioner) one(ctx context.Context, c dynsecCmd) (dynsecReply, error) {
	rs, err := d.do(ctx, c)
	if err != nil {
		return dynsecReply{}, err
	}
	return rs[0], nil
}

func exists(msg string) bool { return strings.Contains(strings.ToLower(msg), "already exists") }
func missing(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "not found")
}

// Setup gives flexhub's own client the ServerRole unless it has it
// (idempotent). Call it once after connecting. Adding the role makes
// mosquitto disconnect flexhub once; autopaho reconnects.
func (d *DynsecProvisioner) Setup(ctx context.Context) error {
	has, err := d.hasServerRole(ctx)
	if err != nil || has {
		return err
	}
	r, err := d.one(ctx, dynsecCmd{"command": "createRole", "rolename": ServerRole, "textname": "flexhub itself: every flexhub topic",
		"acls": []acl{
			{"publishClientSend", "flexhub/#", true, 0},
			{"publishClientReceive", "flexhub/#", true, 0},
			{"subscribePattern", "flexhub/#", true, 0},
			{"unsubscribePattern", "flexhub/#", true, 0},
			// mosquitto 2.0 checks a shared subscription with its prefix
			{"subscribePattern", "$share/+/flexhub/#", true, 0},
			{"unsubscribePattern", "$share/+/flexhub/#", true, 0},
		}})
	if err != nil {
		return err
	}
	if r.Error != "" && !exists(r.Error) {
		return fmt.Errorf("dynsec createRole %s: %s", ServerRole, r.Error)
	}
	r, err = d.one(ctx, dynsecCmd{"command": "addClientRole", "username": d.e.cfg.Username, "rolename": ServerRole, "priority": 100})
	if err != nil {
		return err
	}
	// mosquitto 2.0 may answer "Internal error" here because it
	// disconnects the very client that asked: what counts is the result.
	if has, err := d.hasServerRole(ctx); err != nil || !has {
		return fmt.Errorf("dynsec addClientRole %s %s: %s (%v)", d.e.cfg.Username, ServerRole, r.Error, err)
	}
	return nil
}

func (d *DynsecProvisioner) hasServerRole(ctx context.Context) (bool, error) {
	r, err := d.one(ctx, dynsecCmd{"command": "getClient", "username": d.e.cfg.Username})
	if err != nil {
		return false, err
	}
	if r.Error != "" {
		return false, fmt.Errorf("dynsec getClient %s: %s", d.e.cfg.Username, r.Error)
	}
	var c struct {
		Client struct {
			Roles []struct {
				Name string `json:"rolename"`
			} `json:"roles"`
		} `json:"client"`
	}
	if err := json.Unmarshal(r.Data, &c); err != nil {
		return false, fmt.Errorf("dynsec getClient %s: %w", d.e.cfg.Username, err)
	}
	for _, role := range c.Client.Roles {
		if role.Name == ServerRole {
			return true, nil
		}
	}
	return false, nil
}

// ProvisionParty makes sure the party's role exists and gives the key
// two logins: user name = credential id, and user name = party id (the
// party's newest key).
func (d *DynsecProvisioner) ProvisionParty(ctx context.Context, partyID, credentialID, password string) error {
	if partyID == "" || strings.ContainsAny(partyID, "+#/") || credentialID == "" {
		return fmt.Errorf("dynsec: bad party %q or credential %q", partyID, credentialID)
	}
	role := RoleOf(partyID)
	r, err := d.one(ctx, dynsecCmd{"command": "createRole", "rolename": role, "textname": "flexhub party " + partyID, "acls": partyACLs(partyID)})
	if err != nil {
		return err
	}
	if r.Error != "" && !exists(r.Error) {
		return fmt.Errorf("dynsec createRole %s: %s", role, r.Error)
	}
	roles := []map[string]any{{"rolename": role}}
	for _, c := range []struct{ user, text string }{
		{credentialID, "flexhub credential of party " + partyID},
		{partyID, credentialID}, // textname: which key the party-id login holds
	} {
		r, err := d.one(ctx, dynsecCmd{"command": "createClient", "username": c.user, "password": password, "textname": c.text, "roles": roles})
		if err != nil {
			return err
		}
		if exists(r.Error) {
			r, err = d.one(ctx, dynsecCmd{"command": "modifyClient", "username": c.user, "password": password, "textname": c.text, "roles": roles})
			if err != nil {
				return err
			}
		}
		if r.Error != "" {
			return fmt.Errorf("dynsec %s %s: %s", r.Command, c.user, r.Error)
		}
	}
	return nil
}

// RevokeCredential deletes the key's client, and the party-id client when
// it holds that key. mosquitto disconnects their sessions.
func (d *DynsecProvisioner) RevokeCredential(ctx context.Context, partyID, credentialID string) error {
	r, err := d.one(ctx, dynsecCmd{"command": "deleteClient", "username": credentialID})
	if err != nil {
		return err
	}
	if r.Error != "" && !missing(r.Error) {
		return fmt.Errorf("dynsec deleteClient %s: %s", credentialID, r.Error)
	}
	if partyID == "" {
		return nil
	}
	r, err = d.one(ctx, dynsecCmd{"command": "getClient", "username": partyID})
	if err != nil {
		return err
	}
	if r.Error != "" {
		if missing(r.Error) {
			return nil
		}
		return fmt.Errorf("dynsec getClient %s: %s", partyID, r.Error)
	}
	var c struct {
		Client struct {
			TextName string `json:"textname"`
		} `json:"client"`
	}
	if err := json.Unmarshal(r.Data, &c); err != nil {
		return fmt.Errorf("dynsec getClient %s: %w", partyID, err)
	}
	if c.Client.TextName != credentialID {
		return nil
	}
	r, err = d.one(ctx, dynsecCmd{"command": "deleteClient", "username": partyID})
	if err != nil {
		return err
	}
	if r.Error != "" && !missing(r.Error) {
		return errors.New("dynsec deleteClient " + partyID + ": " + r.Error)
	}
	return nil
}
