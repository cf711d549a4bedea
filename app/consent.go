package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/flexhub/flexhub"
)

// Consent (docs/CONSENT.md): a consumer grants a data user access to a
// scope of their metering points' data for a purpose and a period, or a
// data user asks and the consumer approves or declines; either side can
// end it. Every change is in the audit chain and in both parties'
// notifications. dataAccess (below) decides every read of consumer data.

// Rules of refused consent operations and reads.
const (
	RuleConsentNotOwner  = "consent.not_owner"
	RuleConsentNone      = "consent.none"
	RuleConsentExpired   = "consent.expired"
	RuleConsentRevoked   = "consent.revoked"
	RuleConsentScope     = "consent.scope"
	RuleConsentNotYet    = "consent.not_yet_valid"
	RuleConsentState     = "consent.state"
	RuleConsentDataUser  = "consent.data_user"
	NotifyConsentChanged = "consent.changed"
)

// GiveConsent stores a consent: the owner's grant (in force at once), or
// a data user's request (the owner decides). Who the caller is decides
// which: a consumer naming itself (or no one) as owner grants; the data
// user named in the spec requests.
func (s *Service) GiveConsent(ctx context.Context, spec flexhub.ConsentSpec, key string) (*Created[flexhub.Consent], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	request := snapshot(spec)
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	grant := spec.OwnerID == "" || spec.OwnerID == by.ID
	switch {
	case grant && !by.HasRole(flexhub.RoleConsumer):
		return nil, flexhub.RuleErrorf(flexhub.EForbidden, RuleConsentNotOwner, "owner_id",
			"only a consumer grants consent to its data; a data user asks with owner_id set to the consumer and data_user_id to itself")
	case grant && spec.DataUserID == by.ID:
		return nil, flexhub.RuleErrorf(flexhub.EInvalid, RuleConsentDataUser, "data_user_id", "you need no consent to read your own data")
	case !grant && spec.DataUserID != by.ID:
		return nil, flexhub.RuleErrorf(flexhub.EForbidden, RuleConsentDataUser, "data_user_id",
			"a request for consent names the caller as data_user_id (%s); only the owner grants consent to others", by.ID)
	}
	now := s.now()
	if !spec.ValidTo.After(now) {
		return nil, flexhub.FieldErrorf("valid_to", "valid_to %s has passed", spec.ValidTo.Format(time.RFC3339))
	}
	if grant {
		spec.OwnerID = by.ID
	}
	return create(ctx, s, by, key, flexhub.KindConsent, request,
		func(tx flexhub.Tx, id string) (*flexhub.Consent, error) { return tx.Consent(ctx, id) },
		func(tx flexhub.Tx) (*flexhub.Consent, string, error) {
			if _, err := tx.Party(ctx, spec.DataUserID); err != nil {
				if flexhub.ErrorKind(err) == flexhub.ENotFound {
					return nil, "", flexhub.FieldErrorf("data_user_id", "party %s does not exist", spec.DataUserID)
				}
				return nil, "", err
			}
			owner, err := tx.Party(ctx, spec.OwnerID)
			if err != nil || !owner.HasRole(flexhub.RoleConsumer) {
				return nil, "", flexhub.FieldErrorf("owner_id", "%s is not a consumer", spec.OwnerID)
			}
			for i, id := range spec.MeteringPointIDs {
				mp, err := tx.MeteringPoint(ctx, id)
				if err != nil && flexhub.ErrorKind(err) != flexhub.ENotFound {
					return nil, "", err
				}
				if err != nil || mp.ConsumerID != spec.OwnerID {
					return nil, "", flexhub.RuleErrorf(flexhub.EForbidden, RuleConsentNotOwner, fmt.Sprintf("metering_point_ids[%d]", i),
						"metering point %s is not owned by %s (or does not exist): consent is given by the consumer who owns the data", id, spec.OwnerID)
				}
			}
			c := &flexhub.Consent{ID: flexhub.NewID(), ConsentSpec: spec, RequestedBy: by.ID, Channel: consentChannel(ctx), CreatedAt: now, UpdatedAt: now}
			action := "consent.requested"
			c.Status = flexhub.ConsentRequested
			if grant {
				c.Status, c.DecidedAt, action = flexhub.ConsentActive, &now, "consent.granted"
			}
			if err := tx.CreateConsent(ctx, c); err != nil {
				return nil, "", err
			}
			if err := s.consentChanged(ctx, tx, by, action, c); err != nil {
				return nil, "", err
			}
			return c, c.ID, nil
		})
}

// consentChanged records a consent change in the audit chain and tells
// the other party.
func (s *Service) consentChanged(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, action string, c *flexhub.Consent) error {
	if err := s.record(ctx, tx, by, action, flexhub.KindConsent, c.ID, c.Version, c, c.OwnerID, c.DataUserID); err != nil {
		return err
	}
	other := c.DataUserID
	if by.ID == c.DataUserID {
		other = c.OwnerID
	}
	text := fmt.Sprintf("consent %s (%s) for %d metering point(s), %v, %s to %s: %s by %s", c.ID, c.Purpose, len(c.MeteringPointIDs), c.Scopes,
		c.ValidFrom.Format(time.RFC3339), c.ValidTo.Format(time.RFC3339), c.Status, by.ID)
	return s.notify(ctx, tx, []string{other}, NotifyConsentChanged, flexhub.KindConsent, c.ID, "", text)
}

// Consent decisions.
const (
	ConsentApprove = "approve"
	ConsentDecline = "decline"
	ConsentRevoke  = "revoke"
)

// DecideConsent applies a decision to a consent: the owner approves or
// declines a request; the owner revokes (or the data user gives up) a
// consent at any time, in force or requested. Revocation takes effect at
// once: the next read is refused.
func (s *Service) DecideConsent(ctx context.Context, id, decision string) (*flexhub.Consent, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var out *flexhub.Consent
	err = s.store.Update(ctx, func(tx flexhub.Tx) error {
		c, err := tx.Consent(ctx, id)
		if err != nil {
			return err
		}
		if by.ID != c.OwnerID && by.ID != c.DataUserID && !privileged(by) {
			return notFound("consent", id)
		}
		now := s.now()
		shown := c.Shown(now).Status
		action := ""
		switch decision {
		case ConsentApprove, ConsentDecline:
			if by.ID != c.OwnerID {
				return flexhub.RuleErrorf(flexhub.EForbidden, RuleConsentNotOwner, "", "only the owner (%s) decides on a request for consent", c.OwnerID)
			}
			if c.Status != flexhub.ConsentRequested {
				return flexhub.RuleErrorf(flexhub.EConflict, RuleConsentState, "", "consent %s is %s: only a requested consent is approved or declined", id, shown)
			}
			if decision == ConsentApprove && !c.ValidTo.After(now) {
				return flexhub.RuleErrorf(flexhub.EConflict, RuleConsentState, "", "consent %s asked for a period that ended at %s: ask again", id, c.ValidTo.Format(time.RFC3339))
			}
			c.Status, c.DecidedAt, action = flexhub.ConsentActive, &now, "consent.approved"
			if decision == ConsentDecline {
				c.Status, action = flexhub.ConsentDeclined, "consent.declined"
			}
		case ConsentRevoke:
			if c.Status != flexhub.ConsentActive && c.Status != flexhub.ConsentRequested {
				return flexhub.RuleErrorf(flexhub.EConflict, RuleConsentState, "", "consent %s is %s: nothing to revoke", id, shown)
			}
			c.Status, c.RevokedAt, action = flexhub.ConsentRevoked, &now, "consent.revoked"
		default:
			return flexhub.FieldErrorf("decision", "%q is not a decision: approve, decline or revoke", decision)
		}
		c.UpdatedAt = now
		if err := tx.UpdateConsent(ctx, c); err != nil {
			return err
		}
		out = c
		return s.consentChanged(ctx, tx, by, action, c)
	})
	if err != nil {
		return nil, err
	}
	return out.Shown(s.now()), nil
}

// GetConsent returns a consent to its owner and data user (and the
// register).
func (s *Service) GetConsent(ctx context.Context, id string) (*flexhub.Consent, error) {
	return readAs(ctx, s, func(tx flexhub.Tx, by *flexhub.Party) (*flexhub.Consent, error) {
		c, err := tx.Consent(ctx, id)
		if err != nil {
			return nil, err
		}
		if by.ID != c.OwnerID && by.ID != c.DataUserID && !privileged(by) {
			return nil, notFound("consent", id)
		}
		return c.Shown(s.now()), nil
	})
}

// ConsentVersion is one version of a consent.
type ConsentVersion struct {
	flexhub.Consent
	ValidUntil *time.Time `json:"superseded_at,omitempty" doc:"when the next version replaced this one; absent for the current version"`
}

// ConsentVersions returns every version of a consent, oldest first: how
// it was asked for, granted and ended.
func (s *Service) ConsentVersions(ctx context.Context, id string) ([]*ConsentVersion, error) {
	if _, err := s.GetConsent(ctx, id); err != nil {
		return nil, err
	}
	out := []*ConsentVersion{}
	err := s.store.View(ctx, func(tx flexhub.Tx) error {
		vs, err := tx.Versions(ctx, flexhub.KindConsent, id)
		if err != nil {
			return err
		}
		for _, v := range vs {
			cv := &ConsentVersion{ValidUntil: v.ValidTo}
			if err := json.Unmarshal(v.Body, &cv.Consent); err != nil {
				return fmt.Errorf("decode consent %s version %d: %w", id, v.Version, err)
			}
			out = append(out, cv)
		}
		return nil
	})
	return out, err
}

// ListConsents lists the consents the caller gave or holds: an owner
// every grant and request, past and present; a data user those naming it.
func (s *Service) ListConsents(ctx context.Context, f flexhub.Filter, pg flexhub.Page) (*ListResult[flexhub.Consent], error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if !privileged(by) {
		switch {
		case f["owner_id"] == "self" || f["owner_id"] == by.ID:
			f["owner_id"] = by.ID
		case f["data_user_id"] == "self" || f["data_user_id"] == by.ID:
			f["data_user_id"] = by.ID
		case by.HasRole(flexhub.RoleConsumer) && f["owner_id"] == "" && f["data_user_id"] == "":
			f["owner_id"] = by.ID
		case f["owner_id"] == "" && f["data_user_id"] == "":
			f["data_user_id"] = by.ID
		default:
			return nil, flexhub.Errorf(flexhub.EForbidden, "you see the consents you gave (owner_id=self) and those you hold (data_user_id=self)")
		}
	}
	res, err := listIn(ctx, s, func(tx flexhub.Tx) ([]*flexhub.Consent, string, error) { return tx.ListConsents(ctx, f, pg) })
	if err != nil {
		return nil, err
	}
	now := s.now()
	for i, c := range res.Items {
		res.Items[i] = c.Shown(now)
	}
	return res, nil
}

// AccessPage is a slice of the access log and the cursor to read next.
type AccessPage struct {
	Items      []*flexhub.DataAccess `json:"items" nullable:"false"`
	NextCursor string                `json:"next_cursor" doc:"pass as ?after= next time; unchanged when nothing is new"`
}

// ListDataAccess lists the access log: an owner sees every read of its
// data (who, what, when, on which basis, allowed or refused); a data user
// its own reads; the register everything.
func (s *Service) ListDataAccess(ctx context.Context, f flexhub.Filter, after string, limit int) (*AccessPage, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	var from int64
	if after != "" {
		if from, err = strconv.ParseInt(after, 10, 64); err != nil || from < 0 {
			return nil, flexhub.FieldErrorf("query.after", "%q is not a cursor: pass the next_cursor of the previous page", after)
		}
	}
	if !privileged(by) {
		switch {
		case f["reader_id"] == "self" || f["reader_id"] == by.ID:
			f["reader_id"] = by.ID
		case f["owner_id"] == "" || f["owner_id"] == "self" || f["owner_id"] == by.ID:
			f["owner_id"] = by.ID
		default:
			return nil, flexhub.Errorf(flexhub.EForbidden, "you see the reads of your own data (owner_id=self) and your own reads (reader_id=self)")
		}
	}
	out := &AccessPage{Items: []*flexhub.DataAccess{}, NextCursor: strconv.FormatInt(from, 10)}
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		items, err := tx.ListDataAccess(ctx, f, from, limit)
		if len(items) > 0 {
			out.Items = items
			out.NextCursor = strconv.FormatInt(items[len(items)-1].Seq, 10)
		}
		return err
	})
	return out, err
}

// dataAccess decides whether by may read scope of a metering point's
// data now, and on which basis. It returns the access to log (nil for
// the owner's own reads, which are not logged) and, when the read is
// refused, an error saying why — the refused access is logged too. Bases
// without consent: the DSO of the metering point; its supplier and BRP
// at the time (billing and settlement: stored meter data, master data,
// settlement); the platform's register. Everyone else needs a consent in
// force covering the metering point and the scope.
func (s *Service) dataAccess(ctx context.Context, tx flexhub.Tx, by *flexhub.Party, mp *flexhub.MeteringPoint, scope, channel, what string) (*flexhub.DataAccess, error) {
	if g := oauthGrantOf(ctx); g != nil { // an OAuth access token: its consent only (app/oauth.go)
		return s.grantAccess(ctx, tx, g, by, mp, scope, what)
	}
	if by.ID == mp.ConsumerID {
		return nil, nil
	}
	now := s.now()
	a := &flexhub.DataAccess{At: now, ReaderID: by.ID, OwnerID: mp.ConsumerID, MeteringPointID: mp.ID, Scope: scope, Channel: channel, What: what, Outcome: flexhub.AccessAllowed}
	if a.Basis = legalBasis(by, mp, scope, now); a.Basis != "" {
		return a, nil
	}
	cs, err := tx.ConsentsOf(ctx, mp.ConsumerID, by.ID)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.Covers(mp.ID, scope, now) {
			a.Basis, a.ConsentID = flexhub.BasisConsent, c.ID
			return a, nil
		}
	}
	a.Outcome = flexhub.AccessRefused
	rule, why := RuleConsentNone, fmt.Sprintf("you hold no consent from the owner of metering point %s to read its %s", mp.ID, scope)
	// Say what is wrong with the closest consent there is.
	all, _, err := tx.ListConsents(ctx, flexhub.Filter{"owner_id": mp.ConsumerID, "data_user_id": by.ID, "metering_point_id": mp.ID}, flexhub.Page{Limit: flexhub.MaxPageLimit})
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		sh := c.Shown(now)
		switch {
		case sh.Status == flexhub.ConsentRevoked:
			rule, why = RuleConsentRevoked, fmt.Sprintf("consent %s was revoked at %s", c.ID, c.RevokedAt.Format(time.RFC3339))
		case sh.Status == flexhub.ConsentExpired:
			rule, why = RuleConsentExpired, fmt.Sprintf("consent %s expired at %s", c.ID, c.ValidTo.Format(time.RFC3339))
		case sh.Status == flexhub.ConsentActive && now.Before(c.ValidFrom):
			rule, why = RuleConsentNotYet, fmt.Sprintf("consent %s is valid from %s", c.ID, c.ValidFrom.Format(time.RFC3339))
		case sh.Status == flexhub.ConsentActive:
			rule, why = RuleConsentScope, fmt.Sprintf("consent %s covers %v, not %s", c.ID, c.Scopes, scope)
		case sh.Status == flexhub.ConsentRequested:
			rule, why = RuleConsentNone, fmt.Sprintf("consent %s is requested and not yet approved by the owner", c.ID)
		}
		if sh.Status == flexhub.ConsentActive {
			break // a consent in force (another scope or not yet): the most telling reason
		}
	}
	a.Reason = rule + ": " + why
	return a, flexhub.RuleErrorf(flexhub.EForbidden, rule, "", "%s; the owner sees this refused read in its access log", why)
}

// legalBasis is the basis on which by reads scope of a metering point's
// data at now without consent ("" for none): its DSO; its supplier and
// BRP at the time (billing and settlement: not the real-time stream);
// the platform's register.
func legalBasis(by *flexhub.Party, mp *flexhub.MeteringPoint, scope string, now time.Time) string {
	billing := scope != flexhub.ScopeMeterRealtime
	switch {
	case by.ID == mp.DSOID:
		return flexhub.BasisDSO
	case billing && assignedAs(mp, by.ID, now, "supplier"):
		return flexhub.BasisSupplier
	case billing && assignedAs(mp, by.ID, now, "brp"):
		return flexhub.BasisBRP
	case privileged(by):
		return flexhub.BasisRegister
	}
	return ""
}

// assignedAs reports whether party is the metering point's supplier or
// BRP at t.
func assignedAs(mp *flexhub.MeteringPoint, party string, t time.Time, role string) bool {
	a, ok := mp.AssignmentAt(t)
	if !ok {
		return false
	}
	if role == "supplier" {
		return a.SupplierID == party
	}
	return a.BRPID == party
}

// logAccess appends accesses to the log in a transaction of their own:
// a refused read is logged although nothing else is written. A read
// whose access cannot be logged fails.
func (s *Service) logAccess(ctx context.Context, as ...*flexhub.DataAccess) error {
	var keep []*flexhub.DataAccess
	for _, a := range as {
		if a != nil {
			keep = append(keep, a)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return s.store.Update(context.WithoutCancel(ctx), func(tx flexhub.Tx) error { return tx.AppendDataAccess(ctx, keep) })
}

// channelKey marks a context whose reads come through another channel
// than the REST API (an OAuth token, an export, the MQTT stream).
type channelKey struct{}

// WithChannel says through which channel the reads of ctx hand data out
// (flexhub.ChannelOAuth, ...); the REST API by default.
func WithChannel(ctx context.Context, channel string) context.Context {
	return context.WithValue(ctx, channelKey{}, channel)
}

func channelOf(ctx context.Context) string {
	if c, ok := ctx.Value(channelKey{}).(string); ok {
		return c
	}
	return flexhub.ChannelREST
}
