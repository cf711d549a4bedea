package app

import (
	"context"
	"slices"
	"time"

	"github.com/flexhub/flexhub"
)

// The consumer's overview (docs/MYDATA.md): in one answer, what flexhub
// holds about a consumer's premises and who uses it — its metering
// points with their DSO, supplier and BRP; the resources there and the
// FSPs operating them; the activation orders of the last 90 days that
// touched those resources; the settlement of those orders (verified
// energy, and the statement lines naming the resources: what the
// aggregator earned); its consents and the last reads of its data. A
// consumer reads this about itself only: everything in it is its own
// data (the premises' metering points and the units behind them).

// OverviewLookback is how far back the overview lists activations.
const OverviewLookback = 90 * 24 * time.Hour

// overviewLastAccesses is how many of the latest access-log entries the
// overview shows (GET /v1/data-access has all of them).
const overviewLastAccesses = 50

// PartyRef names a party.
type PartyRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// OverviewMeteringPoint is one of the consumer's metering points.
type OverviewMeteringPoint struct {
	ID                string    `json:"id"`
	Code              string    `json:"code"`
	ConnectionPointID string    `json:"connection_point_id"`
	DSO               PartyRef  `json:"dso"`
	Supplier          *PartyRef `json:"supplier,omitempty" doc:"at the time of the overview"`
	BRP               *PartyRef `json:"brp,omitempty" doc:"at the time of the overview"`
}

// OverviewResource is a unit at the consumer's premises.
type OverviewResource struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	UnitType        string   `json:"unit_type,omitempty"`
	Status          string   `json:"status"`
	MeteringPointID string   `json:"metering_point_id,omitempty"`
	OwnerID         string   `json:"owner_id,omitempty"`
	FSP             PartyRef `json:"fsp" doc:"the FSP (aggregator) operating it"`
}

// OverviewOrder is an activation order that touched one of the resources.
type OverviewOrder struct {
	ID             string    `json:"id"`
	ResourceID     string    `json:"resource_id"`
	Type           string    `json:"type"`
	Status         string    `json:"status"`
	Direction      string    `json:"direction"`
	Start          time.Time `json:"start" doc:"the first set-point's start"`
	End            time.Time `json:"end" doc:"the last set-point's end"`
	SystemOperator PartyRef  `json:"system_operator" doc:"who ordered it"`
	FSP            PartyRef  `json:"fsp"`
}

// OverviewVerification is the settlement's verification of one of those
// orders.
type OverviewVerification struct {
	ID         string    `json:"id"`
	OrderID    string    `json:"order_id"`
	ResourceID string    `json:"resource_id"`
	Unit       string    `json:"unit" enum:"mWh,mvarh"`
	Ordered    int64     `json:"ordered" doc:"energy ordered, in unit"`
	Delivered  int64     `json:"delivered" doc:"energy delivered against the baseline, in unit"`
	Verdict    string    `json:"verdict"`
	CreatedAt  time.Time `json:"created_at"`
}

// OverviewEarning is a statement line naming one of the resources: what
// the system operator pays (or charges) the FSP for it.
type OverviewEarning struct {
	StatementID    string                `json:"statement_id"`
	FSP            PartyRef              `json:"fsp"`
	SystemOperator PartyRef              `json:"system_operator"`
	Line           flexhub.StatementLine `json:"line"`
}

// ConsumerOverview is GET /v1/me/overview.
type ConsumerOverview struct {
	ConsumerID     string                  `json:"consumer_id"`
	At             time.Time               `json:"at"`
	ActivityFrom   time.Time               `json:"activity_from" doc:"orders and their settlement from this time (90 days back)"`
	MeteringPoints []OverviewMeteringPoint `json:"metering_points" nullable:"false"`
	Resources      []OverviewResource      `json:"resources" nullable:"false" doc:"units at the consumer's metering points, or owned by it"`
	Orders         []OverviewOrder         `json:"activation_orders" nullable:"false"`
	Verifications  []OverviewVerification  `json:"verifications" nullable:"false"`
	Earnings       []OverviewEarning       `json:"fsp_earnings" nullable:"false"`
	EarningsNote   string                  `json:"fsp_earnings_note"`
	Consents       []*flexhub.Consent      `json:"consents" nullable:"false"`
	LastAccesses   []*flexhub.DataAccess   `json:"last_accesses" nullable:"false" doc:"the latest reads of the consumer's data by others, newest last (all: GET /v1/data-access)"`
}

// EarningsNote says what the earnings are and are not.
const EarningsNote = "The amounts are what the system operator pays the aggregator (FSP) for activations and availability of your units. " +
	"flexhub does not know your contract with the aggregator, so it cannot say what share of these amounts is yours."

// ConsumerOverview builds the calling consumer's overview.
func (s *Service) ConsumerOverview(ctx context.Context) (*ConsumerOverview, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if !by.HasRole(flexhub.RoleConsumer) {
		return nil, flexhub.Errorf(flexhub.EForbidden, "the overview is a consumer's: of its metering points, the units there and who uses their data")
	}
	now := s.now()
	out := &ConsumerOverview{ConsumerID: by.ID, At: now, ActivityFrom: now.Add(-OverviewLookback), EarningsNote: EarningsNote,
		MeteringPoints: []OverviewMeteringPoint{}, Resources: []OverviewResource{}, Orders: []OverviewOrder{}, Verifications: []OverviewVerification{},
		Earnings: []OverviewEarning{}, Consents: []*flexhub.Consent{}, LastAccesses: []*flexhub.DataAccess{}}
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		names := map[string]string{}
		ref := func(id string) PartyRef {
			if n, ok := names[id]; ok {
				return PartyRef{id, n}
			}
			n := ""
			if p, err := tx.Party(ctx, id); err == nil {
				n = p.Name
			}
			names[id] = n
			return PartyRef{id, n}
		}
		mps, err := ownMeteringPoints(ctx, tx, by.ID)
		if err != nil {
			return err
		}
		for _, mp := range mps {
			o := OverviewMeteringPoint{ID: mp.ID, Code: mp.Code, ConnectionPointID: mp.ConnectionPointID, DSO: ref(mp.DSOID)}
			if a, ok := mp.AssignmentAt(now); ok {
				if a.SupplierID != "" {
					r := ref(a.SupplierID)
					o.Supplier = &r
				}
				if a.BRPID != "" {
					r := ref(a.BRPID)
					o.BRP = &r
				}
			}
			out.MeteringPoints = append(out.MeteringPoints, o)
		}
		// Resources at the premises, and those the consumer owns.
		seen := map[string]bool{}
		var resources []*flexhub.Resource
		filters := []flexhub.Filter{{"owner_id": by.ID}}
		for _, mp := range mps {
			filters = append(filters, flexhub.Filter{"metering_point_id": mp.ID})
		}
		for _, f := range filters {
			pg := flexhub.Page{Limit: flexhub.MaxPageLimit}
			for {
				rs, next, err := tx.ListResources(ctx, f, pg)
				if err != nil {
					return err
				}
				for _, r := range rs {
					if !seen[r.ID] {
						seen[r.ID] = true
						resources = append(resources, r)
					}
				}
				if next == "" || len(rs) == 0 {
					break
				}
				pg.After = next
			}
		}
		ids := make([]string, 0, len(resources))
		fsps := map[string]bool{}
		for _, r := range resources {
			ids = append(ids, r.ID)
			fsps[r.FSPID] = true
			out.Resources = append(out.Resources, OverviewResource{ID: r.ID, Name: r.Name, UnitType: r.UnitType, Status: r.Status,
				MeteringPointID: r.MeteringPointID, OwnerID: r.OwnerID, FSP: ref(r.FSPID)})
		}
		// Orders of the last 90 days, and their verifications.
		orders, err := tx.ResourceActivationOrders(ctx, ids, out.ActivityFrom, now.Add(OverviewLookback))
		if err != nil {
			return err
		}
		slices.SortFunc(orders, func(a, b *flexhub.ActivationOrder) int { return orderStart(a).Compare(orderStart(b)) })
		for _, o := range orders {
			out.Orders = append(out.Orders, OverviewOrder{ID: o.ID, ResourceID: o.ResourceID, Type: o.Type, Status: o.Status, Direction: o.Direction,
				Start: orderStart(o), End: orderEnd(o), SystemOperator: ref(o.SystemOperatorID), FSP: ref(o.FSPID)})
			vs, _, err := tx.ListVerifications(ctx, flexhub.Filter{"order_id": o.ID, "superseded": "false"}, flexhub.Page{Limit: flexhub.MaxPageLimit})
			if err != nil {
				return err
			}
			for _, v := range vs {
				out.Verifications = append(out.Verifications, OverviewVerification{ID: v.ID, OrderID: v.OrderID, ResourceID: v.ResourceID, Unit: v.Unit,
					Ordered: v.Ordered, Delivered: v.Delivered, Verdict: v.Verdict, CreatedAt: v.CreatedAt})
			}
		}
		// Statement lines naming the resources, from the current
		// statements of their FSPs over the period.
		for fsp := range fsps {
			pg := flexhub.Page{Limit: flexhub.MaxPageLimit}
			for {
				sts, next, err := tx.ListStatements(ctx, flexhub.Filter{"fsp_id": fsp, "superseded": "false"}, pg)
				if err != nil {
					return err
				}
				for _, st := range sts {
					if !st.PeriodEnd.After(out.ActivityFrom) {
						continue
					}
					for _, l := range st.Lines {
						if seen[l.ResourceID] {
							out.Earnings = append(out.Earnings, OverviewEarning{StatementID: st.ID, FSP: ref(st.FSPID), SystemOperator: ref(st.SystemOperatorID), Line: l})
						}
					}
				}
				if next == "" || len(sts) == 0 {
					break
				}
				pg.After = next
			}
		}
		// Consents, and the latest reads of the consumer's data.
		pg := flexhub.Page{Limit: flexhub.MaxPageLimit}
		for {
			cs, next, err := tx.ListConsents(ctx, flexhub.Filter{"owner_id": by.ID}, pg)
			if err != nil {
				return err
			}
			for _, c := range cs {
				out.Consents = append(out.Consents, c.Shown(now))
			}
			if next == "" || len(cs) == 0 {
				break
			}
			pg.After = next
		}
		var after int64
		for {
			as, err := tx.ListDataAccess(ctx, flexhub.Filter{"owner_id": by.ID}, after, 1000)
			if err != nil {
				return err
			}
			if len(as) == 0 {
				break
			}
			out.LastAccesses = append(out.LastAccesses, as...)
			if n := len(out.LastAccesses); n > overviewLastAccesses {
				out.LastAccesses = slices.Clone(out.LastAccesses[n-overviewLastAccesses:])
			}
			after = as[len(as)-1].Seq
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func orderStart(o *flexhub.ActivationOrder) time.Time {
	if len(o.Setpoints) == 0 {
		return o.CreatedAt
	}
	return o.Setpoints[0].Start
}

func orderEnd(o *flexhub.ActivationOrder) time.Time {
	if len(o.Setpoints) == 0 {
		return o.CreatedAt
	}
	return o.Setpoints[len(o.Setpoints)-1].End
}
