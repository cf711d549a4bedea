package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// CreateParty registers a party. The administrator and the flexibility
// register operator register anyone; a DSO may register consumers (its
// customers). Only an administrator grants the admin role.
func (s *Service) CreateParty(ctx context.Context, spec flexhub.PartySpec, key string) (*Created[flexhub.Party], error) {
	by, err := actor(ctx, flexhub.RoleAdmin, flexhub.RoleFlexibilityRegisterOperator, flexhub.RoleDSO)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if !privileged(by) && !(len(spec.Roles) == 1 && spec.Roles[0] == flexhub.RoleConsumer) {
		return nil, flexhub.Errorf(flexhub.EForbidden, "a DSO registers consumers only; ask the flexibility register operator for other parties")
	}
	for _, r := range spec.Roles {
		if r == flexhub.RoleAdmin && !by.HasRole(flexhub.RoleAdmin) {
			return nil, flexhub.FieldErrorf("roles", "only an administrator can grant the admin role").WithKind(flexhub.EForbidden)
		}
	}
	return create(ctx, s, by, key, flexhub.KindParty, spec,
		func(tx flexhub.Tx, id string) (*flexhub.Party, error) { return tx.Party(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Party, string, error) {
			if other, err := tx.PartyByEIC(ctx, spec.EIC); err == nil {
				return nil, "", (&flexhub.Error{Kind: flexhub.EConflict, Field: "eic", Message: "EIC " + spec.EIC + " is already registered to party " + other.ID})
			}
			now := s.now()
			p := &flexhub.Party{ID: flexhub.NewID(), PartySpec: spec, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateParty(ctx, p); err != nil {
				return nil, "", err
			}
			return p, p.ID, s.record(ctx, tx, by, "party.registered", flexhub.KindParty, p.ID, p.Version, p, p.ID)
		})
}

// UpdateParty changes a party. The party itself may change its name and
// email; roles and EIC change only through the register operator.
func (s *Service) UpdateParty(ctx context.Context, id string, spec flexhub.PartySpec, version int64) (*flexhub.Party, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var out *flexhub.Party
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		p, err := tx.Party(ctx, id)
		if err != nil {
			return err
		}
		if !privileged(by) {
			if by.ID != p.ID {
				if s.canSeeParty(ctx, tx, by, p) {
					return flexhub.Errorf(flexhub.EForbidden, "only the party itself or the register operator may change party %s", id)
				}
				return notFound("party", id)
			}
			if spec.EIC != p.EIC || !sameRoles(spec.Roles, p.Roles) {
				return flexhub.Errorf(flexhub.EForbidden, "a party cannot change its own EIC or roles; ask the flexibility register operator")
			}
		}
		if !by.HasRole(flexhub.RoleAdmin) && !p.HasRole(flexhub.RoleAdmin) {
			for _, r := range spec.Roles {
				if r == flexhub.RoleAdmin {
					return flexhub.Errorf(flexhub.EForbidden, "only an administrator can grant the admin role")
				}
			}
		}
		if err := checkVersion("party", id, version, p.Version); err != nil {
			return err
		}
		if spec.EIC != p.EIC {
			if other, err := tx.PartyByEIC(ctx, spec.EIC); err == nil && other.ID != p.ID {
				return &flexhub.Error{Kind: flexhub.EConflict, Field: "eic", Message: "EIC " + spec.EIC + " is already registered to party " + other.ID}
			}
		}
		p.PartySpec = spec
		p.UpdatedAt = s.now()
		if err := tx.UpdateParty(ctx, p); err != nil {
			return err
		}
		out = p
		return s.record(ctx, tx, by, "party.updated", flexhub.KindParty, p.ID, p.Version, p, p.ID)
	})
	return out, err
}

func sameRoles(a, b []flexhub.Role) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[flexhub.Role]bool{}
	for _, r := range a {
		m[r] = true
	}
	for _, r := range b {
		if !m[r] {
			return false
		}
	}
	return true
}

// canSeeParty: companies are public master data; a consumer (a person) is
// visible to itself, the register, and the parties that serve it: the DSO
// of its metering points, its suppliers and BRPs, the FSPs operating its
// active resources. A resource pending the consumer's confirmation,
// rejected by it or deregistered does not count: registering a unit must
// not be a way to look up a household.
func (s *Service) canSeeParty(ctx context.Context, tx flexhub.Tx, by, p *flexhub.Party) bool {
	if privileged(by) || by.ID == p.ID {
		return true
	}
	if !p.HasRole(flexhub.RoleConsumer) || len(p.Roles) > 1 {
		return true
	}
	mps, _, err := tx.ListMeteringPoints(ctx, flexhub.Filter{"consumer_id": p.ID}, flexhub.Page{Limit: flexhub.MaxPageLimit})
	if err == nil {
		for _, mp := range mps {
			if mp.DSOID == by.ID {
				return true
			}
			for _, a := range mp.Assignments {
				if a.SupplierID == by.ID || a.BRPID == by.ID {
					return true
				}
			}
		}
	}
	rs, _, err := tx.ListResources(ctx, flexhub.Filter{"owner_id": p.ID, "fsp_id": by.ID, "status": flexhub.ResourceActive}, flexhub.Page{Limit: 1})
	return err == nil && len(rs) > 0
}

// GetParty returns a party the caller may see.
func (s *Service) GetParty(ctx context.Context, id string) (*flexhub.Party, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Party
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		p, err := tx.Party(ctx, id)
		if err != nil {
			return err
		}
		if !s.canSeeParty(ctx, tx, by, p) {
			return notFound("party", id)
		}
		out = p
		return nil
	})
	return out, err
}

// ListParties lists parties, optionally those holding role. Consumers are
// listed only to the register operator and the administrator; a page may
// therefore hold fewer items than its limit: follow Next until it is empty.
func (s *Service) ListParties(ctx context.Context, role string, pg flexhub.Page) (*ListResult[flexhub.Party], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	f := flexhub.Filter{}
	if role != "" {
		if !flexhub.Role(role).Valid() {
			return nil, flexhub.FieldErrorf("query.role", "unknown role %q", role)
		}
		f["role"] = role
	}
	var out ListResult[flexhub.Party]
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		items, next, err := tx.ListParties(ctx, f, pg)
		if err != nil {
			return err
		}
		for _, p := range items {
			if privileged(by) || p.ID == by.ID || !(p.HasRole(flexhub.RoleConsumer) && len(p.Roles) == 1) {
				out.Items = append(out.Items, p)
			}
		}
		out.Next = next
		return nil
	})
	return &out, err
}

// Token format: "fh_" + credential id (32 hex digits) + "_" + secret
// (256 random bits, base64url). Only SHA-256 of the secret is stored: the
// secret has full entropy, so a slow password hash would add nothing but
// latency to every call.
const tokenPrefix = "fh_"

// NewToken returns a fresh API key and its parts.
func NewToken() (token, id string, hash []byte) {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	id = strings.ReplaceAll(flexhub.NewID(), "-", "")
	enc := base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(enc))
	return tokenPrefix + id + "_" + enc, id, sum[:]
}

// ParseToken splits an API key into credential id and secret hash.
func ParseToken(token string) (id string, hash []byte, ok bool) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return "", nil, false
	}
	rest := token[len(tokenPrefix):]
	if len(rest) < 34 || rest[32] != '_' {
		return "", nil, false
	}
	id, secret := rest[:32], rest[33:]
	if _, err := hex.DecodeString(id); err != nil || len(secret) < 32 {
		return "", nil, false
	}
	sum := sha256.Sum256([]byte(secret))
	return id, sum[:], true
}

// Authenticate returns the party an API key belongs to.
func (s *Service) Authenticate(ctx context.Context, token string) (*flexhub.Party, error) {
	id, hash, ok := ParseToken(token)
	if !ok {
		return nil, flexhub.Errorf(flexhub.EUnauthorized, "malformed API key: expected fh_<id>_<secret>")
	}
	var party *flexhub.Party
	var cred *flexhub.Credential
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		c, err := tx.Credential(ctx, id)
		if err != nil {
			return err
		}
		cred = c
		party, err = tx.Party(ctx, c.PartyID)
		return err
	})
	if err != nil || subtle.ConstantTimeCompare(cred.SecretHash, hash) != 1 {
		if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
			return nil, err
		}
		return nil, flexhub.Errorf(flexhub.EUnauthorized, "unknown API key")
	}
	if !cred.Active() {
		return nil, flexhub.Errorf(flexhub.EUnauthorized, "API key %s was revoked at %s", id, cred.RevokedAt.Format(time.RFC3339))
	}
	// Record use at most once a minute, so reads do not all become writes.
	if now := s.now(); cred.LastUsed == nil || now.Sub(*cred.LastUsed) > time.Minute {
		if err := s.store.Update(ctx, func(tx flexhub.Tx) error { return tx.TouchCredential(ctx, id, now) }); err != nil {
			s.log.Warn("record credential use", "credential", id, "err", err)
		}
	}
	return party, nil
}

// IssuedCredential is a new credential with its token, shown once.
type IssuedCredential struct {
	flexhub.Credential
	Token string `json:"token" doc:"the API key; shown only now, store it safely"`
}

func (s *Service) credentialOwner(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, partyID string) error {
	if by.ID == partyID {
		return nil
	}
	if !privileged(by) {
		return flexhub.Errorf(flexhub.EForbidden, "a party manages only its own API keys")
	}
	_, err := tx.Party(ctx, partyID)
	return err
}

// IssueCredential creates an API key for a party: the party itself or the
// register operator.
func (s *Service) IssueCredential(ctx context.Context, partyID, label string) (*IssuedCredential, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if len(label) > 200 {
		return nil, flexhub.FieldErrorf("label", "keep labels under 200 characters")
	}
	var out *IssuedCredential
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		if err := s.credentialOwner(ctx, tx, by, partyID); err != nil {
			return err
		}
		var err error
		out, err = s.issue(ctx, tx, by, partyID, label, "")
		return err
	})
	if err == nil { // MQTT hook (app/mqttauth.go): external broker access for the new key
		s.mqttProvision(ctx, out)
	}
	return out, err
}

func (s *Service) issue(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, partyID, label, token string) (*IssuedCredential, error) {
	var id string
	var hash []byte
	if token == "" {
		token, id, hash = NewToken()
	} else {
		var ok bool
		if id, hash, ok = ParseToken(token); !ok {
			return nil, flexhub.Errorf(flexhub.EInvalid, "the given API key is not of the form fh_<32 hex>_<secret of 32+ characters>; make one with `flexhub keygen`")
		}
	}
	c := &flexhub.Credential{ID: id, PartyID: partyID, Label: strings.TrimSpace(label), CreatedAt: s.now(), SecretHash: hash}
	if err := tx.CreateCredential(ctx, c); err != nil {
		return nil, err
	}
	if err := s.record(ctx, tx, by, "credential.issued", flexhub.KindCredential, c.ID, 1, c, partyID); err != nil {
		return nil, err
	}
	return &IssuedCredential{Credential: *c, Token: token}, nil
}

// RotateCredential replaces a key by a new one with the same label; the old
// key stops working at once.
func (s *Service) RotateCredential(ctx context.Context, id string) (*IssuedCredential, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *IssuedCredential
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		c, err := tx.Credential(ctx, id)
		if err != nil {
			return err
		}
		if err := s.credentialOwner(ctx, tx, by, c.PartyID); err != nil {
			return notFound("credential", id)
		}
		if !c.Active() {
			return flexhub.Errorf(flexhub.EConflict, "credential %s is revoked; issue a new one instead", id)
		}
		now := s.now()
		if err := tx.RevokeCredential(ctx, id, now); err != nil {
			return err
		}
		c.RevokedAt = &now
		if err := s.record(ctx, tx, by, "credential.revoked", flexhub.KindCredential, c.ID, 2, c, c.PartyID); err != nil {
			return err
		}
		out, err = s.issue(ctx, tx, by, c.PartyID, c.Label, "")
		return err
	})
	if err == nil { // MQTT hook (app/mqttauth.go): the old key loses broker access, the new one gets it
		s.mqttRevoke(ctx, out.PartyID, id)
		s.mqttProvision(ctx, out)
	}
	return out, err
}

// RevokeCredential stops a key from working.
func (s *Service) RevokeCredential(ctx context.Context, id string) (*flexhub.Credential, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Credential
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		c, err := tx.Credential(ctx, id)
		if err != nil {
			return err
		}
		if err := s.credentialOwner(ctx, tx, by, c.PartyID); err != nil {
			return notFound("credential", id)
		}
		now := s.now()
		if err := tx.RevokeCredential(ctx, id, now); err != nil {
			return err
		}
		c.RevokedAt = &now
		out = c
		return s.record(ctx, tx, by, "credential.revoked", flexhub.KindCredential, c.ID, 2, c, c.PartyID)
	})
	if err == nil { // MQTT hook (app/mqttauth.go): withdraw the key's broker access
		s.mqttRevoke(ctx, out.PartyID, out.ID)
	}
	return out, err
}

// ListCredentials lists a party's keys (without secrets).
func (s *Service) ListCredentials(ctx context.Context, partyID string) ([]*flexhub.Credential, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out []*flexhub.Credential
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		if err := s.credentialOwner(ctx, tx, by, partyID); err != nil {
			return err
		}
		out, err = tx.ListCredentials(ctx, partyID)
		return err
	})
	return out, err
}

// AdminEIC is the EIC of the bootstrap administrator party.
var AdminEIC = flexhub.EICFromStem("10X-FLEXHUB-ADM")

// Bootstrap creates the administrator on a fresh store. With token empty a
// new key is made. It returns nil, nil when the store already has parties.
func (s *Service) Bootstrap(ctx context.Context, token string) (*IssuedCredential, error) {
	var out *IssuedCredential
	err := s.store.Update(ctx, func(tx flexhub.Tx) error {
		n, err := tx.CountParties(ctx)
		if err != nil || n > 0 {
			return err
		}
		now := s.now()
		p := &flexhub.Party{ID: flexhub.NewID(), PartySpec: flexhub.PartySpec{EIC: AdminEIC, Name: "flexhub administrator",
			Roles: []flexhub.Role{flexhub.RoleAdmin, flexhub.RoleFlexibilityRegisterOperator}}, CreatedAt: now, UpdatedAt: now}
		if err := tx.CreateParty(ctx, p); err != nil {
			return err
		}
		if err := s.record(ctx, tx, p, "party.registered", flexhub.KindParty, p.ID, p.Version, p); err != nil {
			return err
		}
		out, err = s.issue(ctx, tx, p, p.ID, "bootstrap", token)
		return err
	})
	return out, err
}
