package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/mqtt"
)

// MQTT access (docs/MQTT.md). The Service is the broker's Authorizer
// (mqtt.Authorizer): a connection logs in with user name = its party id
// (or the key's credential id) and password = a flexhub API key of that
// party; the topic rules are mqtt.CheckSubscribe and
// mqtt.CheckPublishTopic, plus the one rule only the register knows: a
// party streams meter data only for resources it operates.

var _ mqtt.Authorizer = mqttAuthorizer{}

// MQTTAuthenticate checks an MQTT CONNECT: password a valid API key, user
// name the key's party id or its credential id.
func (s *Service) MQTTAuthenticate(ctx context.Context, username, password string) (string, error) {
	p, err := s.Authenticate(ctx, password)
	if err != nil {
		if k := flexhub.ErrorKind(err); k == flexhub.EUnauthorized || k == flexhub.ENotFound {
			return "", fmt.Errorf("%w: %v", mqtt.ErrBadCredentials, err)
		}
		return "", err
	}
	credID, _, _ := ParseToken(password)
	if username != p.ID && username != credID {
		return "", fmt.Errorf("%w: the key belongs to party %s; log in with user name = its party id", mqtt.ErrNotAuthorized, p.ID)
	}
	return p.ID, nil
}

// mqttAuthorizer adapts the Service to mqtt.Authorizer (its own
// Authenticate takes an API key alone).
type mqttAuthorizer struct{ s *Service }

// MQTTAuthorizer returns the Service as the broker's Authorizer.
func (s *Service) MQTTAuthorizer() mqtt.Authorizer { return mqttAuthorizer{s} }

func (a mqttAuthorizer) Authenticate(ctx context.Context, username, password string) (string, error) {
	return a.s.MQTTAuthenticate(ctx, username, password)
}

// CredentialOf names the credential of a key (mqtt.CredentialNamer), so
// the embedded broker can drop a revoked key's connections.
func (a mqttAuthorizer) CredentialOf(password string) string {
	id, _, _ := ParseToken(password)
	return id
}

func (a mqttAuthorizer) CanSubscribe(_ context.Context, partyID, filter string) error {
	return mqtt.CheckSubscribe(partyID, filter)
}

func (a mqttAuthorizer) CanPublish(ctx context.Context, partyID, topic string) error {
	rid, err := mqtt.CheckPublishTopic(partyID, topic)
	if err != nil || rid == "" {
		return err
	}
	ok, err := a.s.operates(ctx, partyID, rid)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: party %s does not operate a resource %s; meter data goes on the topic of a resource the party operates", mqtt.ErrNotAuthorized, partyID, rid)
	}
	return nil
}

// operatorTTL is how long a resource's operating FSP is remembered: a
// meter stream asks for every message, a resource changes hands rarely.
const operatorTTL = 10 * time.Second

type operatorEntry struct {
	fsp string
	at  time.Time
}

// operators caches resource id → operating FSP per Service (kept beside
// the Service rather than in it, to keep MQTT out of the shared struct).
var operators sync.Map // *Service → *sync.Map[string]operatorEntry

// operates reports whether party operates resource (its FSPID).
func (s *Service) operates(ctx context.Context, partyID, resourceID string) (bool, error) {
	v, _ := operators.LoadOrStore(s, &sync.Map{})
	cache := v.(*sync.Map)
	if e, ok := cache.Load(resourceID); ok && time.Since(e.(operatorEntry).at) < operatorTTL {
		return e.(operatorEntry).fsp == partyID, nil
	}
	var fsp string
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		r, err := tx.Resource(ctx, resourceID)
		if err != nil {
			return err
		}
		fsp = r.FSPID
		return nil
	})
	if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
		return false, err
	}
	cache.Store(resourceID, operatorEntry{fsp, time.Now()})
	return fsp != "" && fsp == partyID, nil
}

// provisioners holds each Service's MQTT provisioner: an external
// broker's, or the embedded broker (which only drops revoked keys'
// connections: it asks the Service at every CONNECT).
var provisioners sync.Map // *Service → mqtt.Provisioner

// SetMQTTProvisioner makes key issue, rotation and revocation provision
// and withdraw MQTT access on an external broker; nil stops it.
func (s *Service) SetMQTTProvisioner(p mqtt.Provisioner) {
	if p == nil {
		provisioners.Delete(s)
		return
	}
	provisioners.Store(s, p)
}

func (s *Service) mqttProvisioner() mqtt.Provisioner {
	p, _ := provisioners.Load(s)
	pr, _ := p.(mqtt.Provisioner)
	return pr
}

// mqttProvision gives a freshly issued key MQTT access. The key is issued
// either way (the transaction committed); a broker that is away is
// logged, and rotating the key provisions it again.
func (s *Service) mqttProvision(ctx context.Context, c *IssuedCredential) {
	p := s.mqttProvisioner()
	if p == nil || c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := p.ProvisionParty(ctx, c.PartyID, c.ID, c.Token); err != nil {
		s.log.Error("MQTT access not provisioned for the new key; rotate it once the broker is back", "party", c.PartyID, "credential", c.ID, "err", err)
	}
}

// mqttRevoke withdraws a revoked key's MQTT access.
func (s *Service) mqttRevoke(ctx context.Context, partyID, credentialID string) {
	p := s.mqttProvisioner()
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := p.RevokeCredential(ctx, partyID, credentialID); err != nil {
		s.log.Error("MQTT access of a revoked key NOT withdrawn on the broker; delete its dynsec client by hand", "party", partyID, "credential", credentialID, "err", err)
	}
}
