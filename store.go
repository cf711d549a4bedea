package flexhub

import (
	"context"
	"time"
)

// Store persists flexhub's state. Implementations: sqlite (embedded
// default) and postgres. Both pass the same conformance suite
// (storetest). A store only persists; authorisation and rules live in the
// service layer (app).
type Store interface {
	// Update runs fn in one read-write transaction: everything fn did is
	// committed together, or nothing is.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction with a consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// Page asks for one page of a list, ordered by id (creation time).
type Page struct {
	After string // cursor: the last id of the previous page
	Limit int    // at most this many; 0 means DefaultPageLimit
}

// Page limits.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
)

// Filter narrows a list to rows whose indexed column equals a value; the
// keys are the column names each List method documents.
type Filter map[string]string

// Tx is one transaction. Getters return an ENotFound error for missing
// objects. Updates are optimistic: they take the version the caller read
// and fail with EConflict if the stored version moved on; on success the
// object's Version is incremented. Every version of every object is kept
// and can be read with AsOf.
type Tx interface {
	MeterTx        // metering.go
	ActivationTx   // activation.go
	WebhookTx      // webhook.go
	SettlementTx   // settlementstore.go
	NominationTx   // nomination.go
	TrafficLightTx // trafficlight.go
	ConsentTx      // consent.go
	OAuthTx        // oauth.go
	GridForecastTx // gridforecast.go

	CreateParty(ctx context.Context, p *Party) error
	UpdateParty(ctx context.Context, p *Party) error
	Party(ctx context.Context, id string) (*Party, error)
	PartyByEIC(ctx context.Context, eic string) (*Party, error)
	// ListParties filters on "role" (a party holding it).
	ListParties(ctx context.Context, f Filter, pg Page) ([]*Party, string, error)
	CountParties(ctx context.Context) (int64, error)

	CreateCredential(ctx context.Context, c *Credential) error
	Credential(ctx context.Context, id string) (*Credential, error)
	RevokeCredential(ctx context.Context, id string, at time.Time) error
	TouchCredential(ctx context.Context, id string, at time.Time) error
	ListCredentials(ctx context.Context, partyID string) ([]*Credential, error)

	CreateControlArea(ctx context.Context, a *ControlArea) error
	ControlArea(ctx context.Context, id string) (*ControlArea, error)
	ListControlAreas(ctx context.Context, f Filter, pg Page) ([]*ControlArea, string, error)

	CreateGridArea(ctx context.Context, a *GridArea) error
	GridArea(ctx context.Context, id string) (*GridArea, error)
	// ListGridAreas filters on "dso_id", "control_area_id".
	ListGridAreas(ctx context.Context, f Filter, pg Page) ([]*GridArea, string, error)

	CreateConnectionPoint(ctx context.Context, c *ConnectionPoint) error
	UpdateConnectionPoint(ctx context.Context, c *ConnectionPoint) error
	ConnectionPoint(ctx context.Context, id string) (*ConnectionPoint, error)
	// ListConnectionPoints filters on "dso_id", "grid_area_id".
	ListConnectionPoints(ctx context.Context, f Filter, pg Page) ([]*ConnectionPoint, string, error)

	GridModelTx // gridmodel.go: grid model versions, connection point → bus mappings

	CreateMeteringPoint(ctx context.Context, m *MeteringPoint) error
	UpdateMeteringPoint(ctx context.Context, m *MeteringPoint) error
	MeteringPoint(ctx context.Context, id string) (*MeteringPoint, error)
	// MeteringPoints reads the metering points with the given ids; ids
	// not found are absent from the map.
	MeteringPoints(ctx context.Context, ids []string) (map[string]*MeteringPoint, error)
	// ListMeteringPoints filters on "dso_id", "consumer_id", "connection_point_id".
	ListMeteringPoints(ctx context.Context, f Filter, pg Page) ([]*MeteringPoint, string, error)

	CreateResource(ctx context.Context, r *Resource) error
	UpdateResource(ctx context.Context, r *Resource) error
	Resource(ctx context.Context, id string) (*Resource, error)
	// ListResources filters on "fsp_id", "owner_id", "dso_id",
	// "metering_point_id", "connection_point_id", "status".
	ListResources(ctx context.Context, f Filter, pg Page) ([]*Resource, string, error)

	// Resources reads the resources with the given ids; ids not found
	// are absent from the map (an order batch checks thousands at once).
	Resources(ctx context.Context, ids []string) (map[string]*Resource, error)

	CreateProduct(ctx context.Context, p *Product) error
	UpdateProduct(ctx context.Context, p *Product) error
	Product(ctx context.Context, id string) (*Product, error)
	// ListProducts filters on "system_operator_id", "status".
	ListProducts(ctx context.Context, f Filter, pg Page) ([]*Product, string, error)

	CreatePrequalification(ctx context.Context, p *Prequalification) error
	UpdatePrequalification(ctx context.Context, p *Prequalification) error
	Prequalification(ctx context.Context, id string) (*Prequalification, error)
	// ListPrequalifications filters on "resource_id", "product_id",
	// "fsp_id", "system_operator_id", "status".
	ListPrequalifications(ctx context.Context, f Filter, pg Page) ([]*Prequalification, string, error)

	// PrequalificationsFor lists the prequalifications (any status) of
	// the given resources for one product, as ListPrequalifications with
	// resource_id and product_id for each resource would.
	PrequalificationsFor(ctx context.Context, productID string, resourceIDs []string) ([]*Prequalification, error)

	CreateGridPrequalification(ctx context.Context, g *GridPrequalification) error
	UpdateGridPrequalification(ctx context.Context, g *GridPrequalification) error
	GridPrequalification(ctx context.Context, id string) (*GridPrequalification, error)
	// ListGridPrequalifications filters on "resource_id", "dso_id", "fsp_id", "status".
	ListGridPrequalifications(ctx context.Context, f Filter, pg Page) ([]*GridPrequalification, string, error)

	CreateContract(ctx context.Context, c *Contract) error
	UpdateContract(ctx context.Context, c *Contract) error
	Contract(ctx context.Context, id string) (*Contract, error)
	// ListContracts filters on "fsp_id", "system_operator_id", "product_id", "status".
	ListContracts(ctx context.Context, f Filter, pg Page) ([]*Contract, string, error)

	CreateNeed(ctx context.Context, n *Need) error
	UpdateNeed(ctx context.Context, n *Need) error
	Need(ctx context.Context, id string) (*Need, error)
	// ListNeeds filters on "product_id", "system_operator_id",
	// "session_id", "status".
	ListNeeds(ctx context.Context, f Filter, pg Page) ([]*Need, string, error)

	CreateMarketSession(ctx context.Context, m *MarketSession) error
	UpdateMarketSession(ctx context.Context, m *MarketSession) error
	MarketSession(ctx context.Context, id string) (*MarketSession, error)
	// ListMarketSessions filters on "operator_id", "product_id",
	// "system_operator_id", "status".
	ListMarketSessions(ctx context.Context, f Filter, pg Page) ([]*MarketSession, string, error)
	// DueMarketSessions lists, earliest gate first, at most limit sessions
	// due for a gate transition at now: scheduled ones whose gate opening
	// has passed and open ones whose gate closure has passed.
	DueMarketSessions(ctx context.Context, now time.Time, limit int) ([]*MarketSession, error)

	CreateBid(ctx context.Context, b *Bid) error
	UpdateBid(ctx context.Context, b *Bid) error
	Bid(ctx context.Context, id string) (*Bid, error)
	// ListBids filters on "session_id", "need_id", "fsp_id",
	// "resource_id", "status".
	ListBids(ctx context.Context, f Filter, pg Page) ([]*Bid, string, error)

	// CreateAward stores a clearing's verdict on a bid; at most one award
	// per bid (EConflict for a second).
	CreateAward(ctx context.Context, a *Award) error
	Award(ctx context.Context, id string) (*Award, error)
	// ListAwards filters on "session_id", "need_id", "bid_id", "fsp_id",
	// "system_operator_id", "status".
	ListAwards(ctx context.Context, f Filter, pg Page) ([]*Award, string, error)

	// CreateObligation stores an awarded bid's duty to deliver; at most
	// one per award (EConflict for a second).
	CreateObligation(ctx context.Context, o *Obligation) error
	UpdateObligation(ctx context.Context, o *Obligation) error
	Obligation(ctx context.Context, id string) (*Obligation, error)
	// ListObligations filters on "session_id", "need_id", "fsp_id",
	// "resource_id", "system_operator_id", "status".
	ListObligations(ctx context.Context, f Filter, pg Page) ([]*Obligation, string, error)

	// CreateNeedResult stores a need's clearing result; at most one per
	// need (EConflict for a second).
	CreateNeedResult(ctx context.Context, r *NeedResult) error
	NeedResult(ctx context.Context, id string) (*NeedResult, error)
	// ListNeedResults filters on "session_id", "need_id",
	// "system_operator_id".
	ListNeedResults(ctx context.Context, f Filter, pg Page) ([]*NeedResult, string, error)

	// CreateSecondaryOffer stores an offer; at most one open or reserved
	// offer per obligation (EConflict for a second).
	CreateSecondaryOffer(ctx context.Context, o *SecondaryOffer) error
	UpdateSecondaryOffer(ctx context.Context, o *SecondaryOffer) error
	SecondaryOffer(ctx context.Context, id string) (*SecondaryOffer, error)
	// ListSecondaryOffers filters on "obligation_id", "seller_fsp_id",
	// "buyer_fsp_id", "product_id", "system_operator_id", "status".
	ListSecondaryOffers(ctx context.Context, f Filter, pg Page) ([]*SecondaryOffer, string, error)
	// DueSecondaryOffers lists, earliest expiry first, at most limit open
	// offers whose expiry has passed at now.
	DueSecondaryOffers(ctx context.Context, now time.Time, limit int) ([]*SecondaryOffer, error)

	CreateTrade(ctx context.Context, t *Trade) error
	UpdateTrade(ctx context.Context, t *Trade) error
	Trade(ctx context.Context, id string) (*Trade, error)
	// ListTrades filters on "offer_id", "obligation_id", "seller_fsp_id",
	// "buyer_fsp_id", "system_operator_id", "status".
	ListTrades(ctx context.Context, f Filter, pg Page) ([]*Trade, string, error)
	// DueTrades lists, earliest window end first, at most limit confirmed
	// trades whose objection window has ended at now.
	DueTrades(ctx context.Context, now time.Time, limit int) ([]*Trade, error)

	// CreateNotification fills Seq and appends the notification to its
	// party's feed. Seq grows in commit order across the whole store, so a
	// reader paging with "after" never skips a notification committed
	// later with a smaller number.
	CreateNotification(ctx context.Context, n *Notification) error
	// CreateNotifications is CreateNotification for many, numbered in
	// slice order.
	CreateNotifications(ctx context.Context, ns []*Notification) error
	// ListNotifications lists a party's notifications with Seq > after,
	// in Seq order, at most limit (0: DefaultPageLimit).
	ListNotifications(ctx context.Context, partyID string, after int64, limit int) ([]*Notification, error)
	// NotificationsAfter lists every party's notifications with Seq >
	// after, in Seq order, at most limit (0: DefaultPageLimit): what the
	// MQTT push sends on.
	NotificationsAfter(ctx context.Context, after int64, limit int) ([]*Notification, error)
	// NotificationHead returns the highest Seq (0 for none).
	NotificationHead(ctx context.Context) (int64, error)

	// AsOf decodes into dst the version of object kind/id that was in
	// force at t (kinds: "party", "resource", ... as in AuditEntry).
	AsOf(ctx context.Context, kind, id string, t time.Time, dst any) error
	// Versions lists every version of an object, oldest first.
	Versions(ctx context.Context, kind, id string) ([]ObjectVersion, error)

	// AppendAudit fills Seq, PrevHash and Hash and appends the entry. The
	// chain stays linear under concurrent transactions.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// AppendAudits is AppendAudit for many entries, chained in slice
	// order.
	AppendAudits(ctx context.Context, es []*AuditEntry) error
	// ListAudit lists entries in sequence order after seq `after`; with
	// partyID set, only entries naming that party; with objectID set,
	// only entries about that object.
	ListAudit(ctx context.Context, partyID, objectID string, after int64, limit int) ([]*AuditEntry, error)

	// Idempotency records which object a party's idempotency key created.
	Idempotency(ctx context.Context, partyID, key string) (*IdempotencyRecord, error)
	PutIdempotency(ctx context.Context, r *IdempotencyRecord) error
}

// ObjectVersion is one stored version of an object.
type ObjectVersion struct {
	Version   int64      `json:"version"`
	ValidFrom time.Time  `json:"valid_from"`
	ValidTo   *time.Time `json:"valid_to,omitempty"`
	Body      []byte     `json:"-"`
}

// IdempotencyRecord ties a retried create to the object the first attempt
// made. Fingerprint is a hash of the request body: the same key with a
// different body is an error, not a replay.
type IdempotencyRecord struct {
	PartyID     string
	Key         string
	Fingerprint string
	ObjectKind  string
	ObjectID    string
	CreatedAt   time.Time
}

// Object kinds, as used in audit entries, history and AsOf.
const (
	KindParty                = "party"
	KindCredential           = "credential"
	KindControlArea          = "control_area"
	KindGridArea             = "grid_area"
	KindConnectionPoint      = "connection_point"
	KindMeteringPoint        = "metering_point"
	KindResource             = "resource"
	KindProduct              = "product"
	KindPrequalification     = "prequalification"
	KindGridPrequalification = "grid_prequalification"
	KindContract             = "contract"
)
