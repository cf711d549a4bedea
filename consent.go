package flexhub

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Consent (docs/CONSENT.md): the consumer who owns a metering point's data
// grants a named data user access to a scope of it — which metering
// points, which kinds of data — for a stated purpose and a period, and can
// revoke it at any time. Every read of consumer data is checked at the
// moment of the read against the reader's basis: the owner, a role with a
// legal basis (the DSO of the metering point, its supplier and BRP), or a
// consent in force; and every read by someone other than the owner is
// logged (DataAccess), refused ones too.

// KindConsent is the audit and object kind of consents.
const KindConsent = "consent"

// Kinds of consumer data a consent covers.
const (
	ScopeMeterHistory  = "meter_history"  // stored meter data of the metering points and the resources behind them
	ScopeMeterRealtime = "meter_realtime" // the live stream of new readings (MQTT)
	ScopeMasterData    = "master_data"    // the metering point's register data: code, connection, supplier, BRP, resources
	ScopeSettlement    = "settlement"     // verifications, imbalance adjustments and statement lines of activations there
)

// ConsentScopes are the scopes in the order documents list them.
var ConsentScopes = []string{ScopeMeterHistory, ScopeMeterRealtime, ScopeMasterData, ScopeSettlement}

// Consent statuses. A consent is in force while active and inside its
// period; "expired" is reported for an active consent whose period has
// ended (it is not stored: time expires it).
const (
	ConsentRequested = "requested" // a data user asked; the owner has not decided
	ConsentActive    = "active"
	ConsentDeclined  = "declined"
	ConsentRevoked   = "revoked"
	ConsentExpired   = "expired"
)

// Bases on which a party reads consumer data (DataAccess.Basis).
const (
	BasisOwner       = "owner"          // the consumer's own data (not logged)
	BasisConsent     = "consent"        // a consent in force (DataAccess.ConsentID)
	BasisDSO         = "legal_dso"      // the DSO operating the metering point
	BasisSupplier    = "legal_supplier" // the metering point's supplier, for billing
	BasisBRP         = "legal_brp"      // the metering point's BRP, for settlement
	BasisFSPOperator = "fsp_operator"   // the FSP operating a resource the consumer confirmed: that resource's own data
	BasisRegister    = "register"       // the platform's administrator or register operator
	// BasisSystemOperator: a system operator that prequalifies or
	// activates the resource reads that resource's data to verify delivery.
	BasisSystemOperator = "legal_system_operator"
)

// Channels through which consumer data leaves flexhub (DataAccess.Channel).
const (
	ChannelREST        = "rest"
	ChannelMQTT        = "mqtt"
	ChannelExport      = "export"
	ChannelGreenButton = "green_button"
	ChannelOAuth       = "oauth" // a read with an OAuth token (Connect My Data)
	// ChannelNotification: pushed to the party (its feed, webhooks and
	// MQTT), e.g. a delivery alert carrying a unit's measurement.
	ChannelNotification = "notification"
)

// ConsentSpec is what a data owner grants or a data user requests.
type ConsentSpec struct {
	DataUserID       string    `json:"data_user_id" doc:"the party that may read the data"`
	OwnerID          string    `json:"owner_id,omitempty" doc:"the consumer who owns the data; a data user's request names them, the owner's grant may leave it out"`
	MeteringPointIDs []string  `json:"metering_point_ids" minItems:"1" maxItems:"1000" doc:"the metering points whose data is covered; all owned by owner_id"`
	Scopes           []string  `json:"scopes" minItems:"1" doc:"which data: meter_history, meter_realtime, master_data, settlement"`
	Purpose          string    `json:"purpose" minLength:"3" maxLength:"500" doc:"what the data user will use the data for, as shown to the owner"`
	ValidFrom        time.Time `json:"valid_from" doc:"from when the data user may read (RFC 3339)"`
	ValidTo          time.Time `json:"valid_to" doc:"until when (exclusive); at most 5 years after valid_from"`
}

// MaxConsentPeriod is the longest period a consent can have.
const MaxConsentPeriod = 5 * 366 * 24 * time.Hour

// Consent is a stored consent.
type Consent struct {
	ID string `json:"id" readOnly:"true"`
	ConsentSpec
	Status      string     `json:"status" readOnly:"true" enum:"requested,active,declined,revoked,expired"`
	RequestedBy string     `json:"requested_by" readOnly:"true" doc:"the owner (a grant) or the data user (a request)"`
	Channel     string     `json:"channel" readOnly:"true" enum:"api,oauth" doc:"how it was given: the REST API or the OAuth consent page"`
	DecidedAt   *time.Time `json:"decided_at,omitempty" readOnly:"true" doc:"when the owner granted, approved or declined"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty" readOnly:"true"`
	Version     int64      `json:"version" readOnly:"true"`
	CreatedAt   time.Time  `json:"created_at" readOnly:"true"`
	UpdatedAt   time.Time  `json:"updated_at" readOnly:"true"`
}

// Validate checks a consent's spec: scopes known, the period sensible.
func (s *ConsentSpec) Validate() error {
	if !ValidID(s.DataUserID) {
		return FieldErrorf("data_user_id", "%q is not a party id", s.DataUserID)
	}
	if s.OwnerID != "" && !ValidID(s.OwnerID) {
		return FieldErrorf("owner_id", "%q is not a party id", s.OwnerID)
	}
	if len(s.MeteringPointIDs) == 0 {
		return FieldErrorf("metering_point_ids", "name at least one metering point")
	}
	seen := map[string]bool{}
	for i, id := range s.MeteringPointIDs {
		if !ValidID(id) {
			return FieldErrorf(fieldIndex("metering_point_ids", i), "%q is not a metering point id", id)
		}
		if seen[id] {
			return FieldErrorf(fieldIndex("metering_point_ids", i), "metering point %s is named twice", id)
		}
		seen[id] = true
	}
	if len(s.Scopes) == 0 {
		return FieldErrorf("scopes", "name at least one scope: %s", strings.Join(ConsentScopes, ", "))
	}
	for i, sc := range s.Scopes {
		if !slices.Contains(ConsentScopes, sc) {
			return FieldErrorf(fieldIndex("scopes", i), "%q is not a scope: %s", sc, strings.Join(ConsentScopes, ", "))
		}
		if slices.Index(s.Scopes, sc) != i {
			return FieldErrorf(fieldIndex("scopes", i), "scope %s is named twice", sc)
		}
	}
	s.Purpose = strings.TrimSpace(s.Purpose)
	if len(s.Purpose) < 3 {
		return FieldErrorf("purpose", "state the purpose the data is for (the owner sees it)")
	}
	if s.ValidFrom.IsZero() || s.ValidTo.IsZero() {
		return FieldErrorf("valid_to", "a consent needs valid_from and valid_to")
	}
	s.ValidFrom, s.ValidTo = s.ValidFrom.UTC(), s.ValidTo.UTC()
	if !s.ValidTo.After(s.ValidFrom) {
		return FieldErrorf("valid_to", "valid_to %s must be after valid_from %s", s.ValidTo.Format(time.RFC3339), s.ValidFrom.Format(time.RFC3339))
	}
	if s.ValidTo.Sub(s.ValidFrom) > MaxConsentPeriod {
		return FieldErrorf("valid_to", "a consent lasts at most 5 years; ask again when it ends")
	}
	return nil
}

// InForce reports whether the consent lets its data user read at t.
func (c *Consent) InForce(t time.Time) bool {
	return c.Status == ConsentActive && !t.Before(c.ValidFrom) && t.Before(c.ValidTo)
}

// Covers reports whether the consent is in force at t for a scope of a
// metering point.
func (c *Consent) Covers(meteringPointID, scope string, t time.Time) bool {
	return c.InForce(t) && slices.Contains(c.MeteringPointIDs, meteringPointID) && slices.Contains(c.Scopes, scope)
}

// Shown is the consent as reported at t: an active one past its period
// is expired.
func (c *Consent) Shown(t time.Time) *Consent {
	out := *c
	if c.Status == ConsentActive && !t.Before(c.ValidTo) {
		out.Status = ConsentExpired
	}
	return &out
}

// MeteringPointOwner is whose a metering point's data is and who
// operates it: what the real-time stream checks a consent against.
type MeteringPointOwner struct {
	ConsumerID string
	DSOID      string
}

// DataAccess is one read of consumer data by someone other than its
// owner, allowed or refused: who, whose, what, when, through which
// channel and on which basis.
type DataAccess struct {
	Seq             int64     `json:"seq" readOnly:"true"`
	At              time.Time `json:"at"`
	ReaderID        string    `json:"reader_id"`
	OwnerID         string    `json:"owner_id"`
	MeteringPointID string    `json:"metering_point_id"`
	Scope           string    `json:"scope" enum:"meter_history,meter_realtime,master_data,settlement"`
	Channel         string    `json:"channel" enum:"rest,mqtt,export,green_button,oauth,notification"`
	Basis           string    `json:"basis,omitempty" doc:"consent, legal_dso, legal_supplier, legal_brp, legal_system_operator, fsp_operator or register; empty when refused"`
	ConsentID       string    `json:"consent_id,omitempty"`
	What            string    `json:"what" doc:"what was read: the series, range or document"`
	Outcome         string    `json:"outcome" enum:"allowed,refused"`
	Reason          string    `json:"reason,omitempty" doc:"why it was refused"`
}

// Access outcomes.
const (
	AccessAllowed = "allowed"
	AccessRefused = "refused"
)

// ConsentTx stores consents and the access log.
type ConsentTx interface {
	CreateConsent(ctx context.Context, c *Consent) error
	// UpdateConsent writes a new version if the stored one is still
	// c.Version (EConflict otherwise); c.Version is then the new one.
	UpdateConsent(ctx context.Context, c *Consent) error
	Consent(ctx context.Context, id string) (*Consent, error)
	// ListConsents filters on "owner_id", "data_user_id", "status" and
	// "metering_point_id" (consents naming it).
	ListConsents(ctx context.Context, f Filter, pg Page) ([]*Consent, string, error)
	// ConsentsOf lists the active consents a data user holds from an
	// owner (any period: the caller checks the time).
	ConsentsOf(ctx context.Context, ownerID, dataUserID string) ([]*Consent, error)
	// ConsentsInForce lists, in one read, the consents in force at t
	// (active, valid_from <= t < valid_to) that cover scope and name at
	// least one of the metering points, each once, ordered by id.
	ConsentsInForce(ctx context.Context, meteringPointIDs []string, scope string, t time.Time) ([]*Consent, error)
	// MeteringPointOwners reads who owns and who operates each of the
	// metering points, in one read (absent: no such metering point).
	MeteringPointOwners(ctx context.Context, ids []string) (map[string]MeteringPointOwner, error)
	// ResourceMeteringPoints reads the metering point of each of the
	// resources, in one read (absent: no such resource, or none).
	ResourceMeteringPoints(ctx context.Context, ids []string) (map[string]string, error)

	// AppendDataAccess logs accesses (Seq assigned, in slice order).
	AppendDataAccess(ctx context.Context, as []*DataAccess) error
	// ListDataAccess lists accesses after seq, oldest first, filtered on
	// "owner_id", "reader_id", "metering_point_id", "outcome".
	ListDataAccess(ctx context.Context, f Filter, after int64, limit int) ([]*DataAccess, error)
}
