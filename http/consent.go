package http

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerConsents) }

type consentCreateInput struct {
	IdempotencyInput
	Body flexhub.ConsentSpec
}

type consentListInput struct {
	PageInput
	OwnerID         string `query:"owner_id" doc:"self: the consents you gave (a consumer's default)"`
	DataUserID      string `query:"data_user_id" doc:"self: the consents you hold (everyone else's default)"`
	Status          string `query:"status" enum:"requested,active,declined,revoked" doc:"stored status (an expired consent is stored active)"`
	MeteringPointID string `query:"metering_point_id" doc:"consents naming this metering point"`
}

type consentVersionsOutput struct {
	Body struct {
		Items []*app.ConsentVersion `json:"items" nullable:"false" doc:"every version, oldest first"`
	}
}

type accessListInput struct {
	After           string `query:"after" doc:"the next_cursor of the previous page; empty for the start of the log"`
	Limit           int    `query:"limit" minimum:"0" maximum:"500" doc:"at most this many, default 50"`
	OwnerID         string `query:"owner_id" doc:"self: the reads of your data (the default)"`
	ReaderID        string `query:"reader_id" doc:"self: your own reads of others' data"`
	MeteringPointID string `query:"metering_point_id"`
	Outcome         string `query:"outcome" enum:"allowed,refused"`
}

type accessListOutput struct {
	Body *app.AccessPage
}

func (s *Server) registerConsents() {
	tags := []string{"Consent"}
	huma.Register(s.api, huma.Operation{OperationID: "give-consent", Method: http.MethodPost, Path: "/v1/consents", Tags: tags,
		Summary: "Grant or request consent", DefaultStatus: http.StatusCreated,
		Description: "A consumer grants a data user access to a scope of its metering points' data (meter_history, meter_realtime, master_data, settlement) for a purpose and a period: " +
			"in force at once (status active). A data user asks instead, naming the consumer as owner_id and itself as data_user_id: status requested, until the owner approves or declines. " +
			"Every metering point must be owned by owner_id (403 urn:flexhub:rule:consent.not_owner). Consents are in the audit chain and in both parties' notifications. docs/CONSENT.md."},
		func(ctx context.Context, in *consentCreateInput) (*ObjectOutput[flexhub.Consent], error) {
			c, err := s.svc.GiveConsent(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/consents/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-consents", Method: http.MethodGet, Path: "/v1/consents", Tags: tags,
		Summary: "List consents", Description: "An owner sees every consent it gave or was asked for, past and present; a data user those it holds or asked for. An active consent past valid_to is shown as expired."},
		func(ctx context.Context, in *consentListInput) (*ListOutput[flexhub.Consent], error) {
			f := flexhub.Filter{}
			for k, v := range map[string]string{"owner_id": in.OwnerID, "data_user_id": in.DataUserID, "status": in.Status, "metering_point_id": in.MeteringPointID} {
				if v != "" {
					f[k] = v
				}
			}
			res, err := s.svc.ListConsents(ctx, f, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-consent", Method: http.MethodGet, Path: "/v1/consents/{id}", Tags: tags,
		Summary: "Read a consent", Description: "To its owner and its data user.", Middlewares: huma.Middlewares{s.consentXML}},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Consent], error) {
			c, err := s.svc.GetConsent(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(c, c.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-consent-versions", Method: http.MethodGet, Path: "/v1/consents/{id}/versions", Tags: tags,
		Summary: "Every version of a consent", Description: "Oldest first: requested, granted or approved, revoked."},
		func(ctx context.Context, in *IDPath) (*consentVersionsOutput, error) {
			vs, err := s.svc.ConsentVersions(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			out := &consentVersionsOutput{}
			out.Body.Items = vs
			return out, nil
		})
	for _, d := range []struct{ decision, summary, desc string }{
		{app.ConsentApprove, "Approve a request for consent", "By the owner: the requested consent is in force (status active) for its period."},
		{app.ConsentDecline, "Decline a request for consent", "By the owner."},
		{app.ConsentRevoke, "Revoke a consent", "By the owner at any time (or the data user, giving it up): the next read is refused, " +
			"REST and MQTT alike (an open real-time subscription receives nothing more). The consent stays listed as revoked."},
	} {
		decision := d.decision
		huma.Register(s.api, huma.Operation{OperationID: decision + "-consent", Method: http.MethodPost, Path: "/v1/consents/{id}/" + decision, Tags: tags,
			Summary: d.summary, Description: d.desc},
			func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Consent], error) {
				c, err := s.svc.DecideConsent(ctx, in.ID, decision)
				if err != nil {
					return nil, problem(err)
				}
				return object(c, c.Version), nil
			})
	}
	huma.Register(s.api, huma.Operation{OperationID: "list-data-access", Method: http.MethodGet, Path: "/v1/data-access", Tags: tags,
		Summary: "Who read your data",
		Description: "The access log, oldest first: every read of consumer data by someone other than its owner — who, which metering point, what, when, through which channel " +
			"(rest, mqtt, export, green_button, oauth), on which basis (consent, legal_dso, legal_supplier, legal_brp, legal_system_operator, fsp_operator, register), allowed or refused and why. " +
			"An owner reads the reads of its data; a data user its own reads (reader_id=self). Poll with ?after=<next_cursor>."},
		func(ctx context.Context, in *accessListInput) (*accessListOutput, error) {
			f := flexhub.Filter{}
			for k, v := range map[string]string{"owner_id": in.OwnerID, "reader_id": in.ReaderID, "metering_point_id": in.MeteringPointID, "outcome": in.Outcome} {
				if v != "" {
					f[k] = v
				}
			}
			page, err := s.svc.ListDataAccess(ctx, f, in.After, in.Limit)
			if err != nil {
				return nil, problem(err)
			}
			return &accessListOutput{Body: page}, nil
		})
}
