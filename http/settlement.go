package http

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerSettlement) }

type settlementRunInput struct {
	IdempotencyInput
	Body flexhub.SettlementRunSpec
}

type verificationListInput struct {
	PageInput
	RunID            string `query:"run_id"`
	OrderID          string `query:"order_id"`
	ResourceID       string `query:"resource_id"`
	FSPID            string `query:"fsp_id" doc:"\"self\": your verifications as FSP"`
	SystemOperatorID string `query:"system_operator_id" doc:"\"self\": the verifications of your orders"`
	BRPID            string `query:"brp_id" doc:"\"self\": as BRP, verifications of notify_brp products that moved energy at your metering points"`
	Versions         string `query:"versions" enum:"latest,all" doc:"latest (default unless run_id is given): only each order's latest verification; all: those of earlier runs too"`
}

type statementListInput struct {
	PageInput
	FSPID            string `query:"fsp_id" doc:"\"self\": your statements as FSP"`
	SystemOperatorID string `query:"system_operator_id" doc:"\"self\": the statements you issued"`
	RunID            string `query:"run_id"`
	Currency         string `query:"currency"`
	PeriodStart      string `query:"period_start" doc:"RFC 3339: statements of the period starting then"`
	PeriodEnd        string `query:"period_end" doc:"RFC 3339: statements of the period ending then"`
	Versions         string `query:"versions" enum:"latest,all" doc:"latest (default): only the statement in force per FSP, system operator, period and currency; all: superseded versions too"`
}

type adjustmentListInput struct {
	PageInput
	BRPID            string `query:"brp_id" doc:"\"self\": adjustments at the metering points you are balance responsible for"`
	SupplierID       string `query:"supplier_id" doc:"\"self\": adjustments at the metering points you supply"`
	FSPID            string `query:"fsp_id"`
	SystemOperatorID string `query:"system_operator_id"`
	OrderID          string `query:"order_id"`
	RunID            string `query:"run_id"`
	MeteringPointID  string `query:"metering_point_id"`
	From             string `query:"from" doc:"RFC 3339: ISPs starting at or after"`
	To               string `query:"to" doc:"RFC 3339: ISPs starting before"`
	Versions         string `query:"versions" enum:"latest,all" doc:"latest (default unless run_id is given): only the adjustments in force, those no later run replaced by settling the order again over the ISP; all: earlier runs' too"`
	Format           string `query:"format" enum:"json,csv" doc:"csv: the page as text/csv (as Accept: text/csv)"`
	Accept           string `header:"Accept"`
}

// rawOutput is a body the handler encodes itself (JSON or CSV).
type rawOutput struct {
	ContentType string `header:"Content-Type"`
	NextCursor  string `header:"X-Next-Cursor" doc:"pass as ?after= for the next page; absent on the last page"`
	Body        []byte
}

// adjustmentCSVColumns are the CSV columns of imbalance adjustments: one
// row per metering point and ISP, what the imbalance settlement imports.
var adjustmentCSVColumns = []string{"id", "run_id", "brp_id", "supplier_id", "metering_point_id", "start", "end", "volume_mwh", "order_id", "verification_id", "resource_id", "fsp_id", "system_operator_id"}

const settlementVisibility = "Verifications are visible to the FSP and the system operator of the order, and — where the product's settlement.notify_brp is set — to the BRPs of the metering points; " +
	"statements to their FSP and system operator; imbalance adjustments to the BRP and supplier of the metering point, the system operator and FSP of the order, and every party " +
	"holding the imbalance_settlement_responsible role. To anyone else they do not exist (404)."

func optionalTime(name, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := queryTime(name, v)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func (s *Server) registerSettlement() {
	tags := []string{"Settlement"}
	huma.Register(s.api, huma.Operation{OperationID: "create-settlement-run", Method: http.MethodPost, Path: "/v1/settlement-runs", Tags: tags,
		Summary: "Settle a period", DefaultStatus: http.StatusCreated,
		Description: "By a TSO or DSO, for its own orders and obligations: period_start and period_end on the 15-minute grid, end after start, at most 31 days, end not in the future " +
			"(422 settlement.period). Every activate order of the caller (except rejected ones and those never delivered) whose set-points reach into the period and whose last set-point " +
			"has ended is verified against its product's baseline from the stored meter data; per FSP and currency a statement prices the availability of active obligations " +
			"in the period and the verified activations (docs/SETTLEMENT.md). A statement with the same lines and totals as the latest one of its FSP, period and currency is not " +
			"issued again (outcome unchanged); different numbers (corrected meter data) make a new version that supersedes it, with the difference. The energy moved in the period " +
			"becomes imbalance adjustments per metering point and 15-minute ISP for its BRP and supplier; a metering point without a BRP fails the run (422 settlement.no_brp) " +
			"and nothing is stored. One transaction; the FSP and system operator are notified of statements, BRPs and suppliers of adjustments."},
		func(ctx context.Context, in *settlementRunInput) (*ObjectOutput[flexhub.SettlementRun], error) {
			c, err := s.svc.RunSettlement(ctx, in.Body, in.IdempotencyKey)
			if err != nil {
				return nil, problem(err)
			}
			return created(c, c.Object.Version, "/v1/settlement-runs/"+c.Object.ID), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-settlement-runs", Method: http.MethodGet, Path: "/v1/settlement-runs", Tags: tags,
		Summary: "List your settlement runs", Description: "A TSO or DSO lists the runs it made, oldest first."},
		func(ctx context.Context, in *PageInput) (*ListOutput[flexhub.SettlementRun], error) {
			res, err := s.svc.ListSettlementRuns(ctx, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-settlement-run", Method: http.MethodGet, Path: "/v1/settlement-runs/{id}", Tags: tags,
		Summary: "Read a settlement run", Description: "Its verifications, what it did with each statement (issued, revised, unchanged) and how many adjustments it made. Visible to the system operator that ran it."},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.SettlementRun], error) {
			r, err := s.svc.GetSettlementRun(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(r, r.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-verifications", Method: http.MethodGet, Path: "/v1/verifications", Tags: tags,
		Summary: "List verifications", Description: "What each activation order delivered, per interval, against its baseline. " + settlementVisibility},
		func(ctx context.Context, in *verificationListInput) (*ListOutput[flexhub.Verification], error) {
			res, err := s.svc.ListVerifications(ctx, app.VerificationFilter{RunID: in.RunID, OrderID: in.OrderID, ResourceID: in.ResourceID,
				FSPID: in.FSPID, SystemOperatorID: in.SystemOperatorID, BRPID: in.BRPID, AllVersions: in.Versions == "all"}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-verification", Method: http.MethodGet, Path: "/v1/verifications/{id}", Tags: tags,
		Summary: "Read a verification", Description: settlementVisibility},
		func(ctx context.Context, in *IDPath) (*struct{ Body *flexhub.Verification }, error) {
			v, err := s.svc.GetVerification(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *flexhub.Verification }{v}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-settlement-statements", Method: http.MethodGet, Path: "/v1/settlement-statements", Tags: tags,
		Summary: "List settlement statements", Description: "The latest version per FSP, system operator, period and currency unless versions=all. " + settlementVisibility},
		func(ctx context.Context, in *statementListInput) (*ListOutput[flexhub.Statement], error) {
			ps, err := optionalTime("period_start", in.PeriodStart)
			if err != nil {
				return nil, problem(err)
			}
			pe, err := optionalTime("period_end", in.PeriodEnd)
			if err != nil {
				return nil, problem(err)
			}
			res, err := s.svc.ListStatements(ctx, app.StatementFilter{FSPID: in.FSPID, SystemOperatorID: in.SystemOperatorID, RunID: in.RunID, Currency: in.Currency,
				PeriodStart: ps, PeriodEnd: pe, AllVersions: in.Versions == "all"}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			return listOutput(res.Items, res.Next), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-settlement-statement", Method: http.MethodGet, Path: "/v1/settlement-statements/{id}", Tags: tags,
		Summary: "Read a settlement statement", Description: "Every line names its award, bid, obligation, order and verification. " + settlementVisibility},
		func(ctx context.Context, in *IDPath) (*ObjectOutput[flexhub.Statement], error) {
			m, err := s.svc.GetStatement(ctx, in.ID)
			if err != nil {
				return nil, problem(err)
			}
			return object(m, m.Version), nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-imbalance-adjustments", Method: http.MethodGet, Path: "/v1/imbalance-adjustments", Tags: tags,
		Summary: "List imbalance adjustments (JSON or CSV)",
		Description: "Per metering point and 15-minute ISP, the mWh to add to the BRP's metered consumption because an FSP activated flexibility there (positive for up, negative for down). " +
			"As CSV with Accept: text/csv or ?format=csv (columns " + strings.Join(adjustmentCSVColumns, ",") + "; the next page's cursor, for ?after=, in the X-Next-Cursor header). " +
			settlementVisibility},
		func(ctx context.Context, in *adjustmentListInput) (*rawOutput, error) {
			from, err := optionalTime("from", in.From)
			if err != nil {
				return nil, problem(err)
			}
			to, err := optionalTime("to", in.To)
			if err != nil {
				return nil, problem(err)
			}
			res, err := s.svc.ListImbalanceAdjustments(ctx, app.AdjustmentFilter{BRPID: in.BRPID, SupplierID: in.SupplierID, FSPID: in.FSPID, SystemOperatorID: in.SystemOperatorID,
				OrderID: in.OrderID, RunID: in.RunID, MeteringPointID: in.MeteringPointID, From: from, To: to, AllVersions: in.Versions == "all"}, in.page())
			if err != nil {
				return nil, problem(err)
			}
			if in.Format == "csv" || (in.Format == "" && strings.HasPrefix(strings.TrimSpace(in.Accept), "text/csv")) {
				return &rawOutput{ContentType: "text/csv; charset=utf-8", NextCursor: res.Next, Body: adjustmentsCSV(res.Items)}, nil
			}
			body, err := json.Marshal(listOutput(res.Items, res.Next).Body)
			if err != nil {
				return nil, problem(err)
			}
			return &rawOutput{ContentType: "application/json", NextCursor: res.Next, Body: body}, nil
		})
	// Document both bodies of the adjustments list.
	if op := s.api.OpenAPI().Paths["/v1/imbalance-adjustments"].Get; op != nil {
		if r := op.Responses["200"]; r != nil {
			r.Content = map[string]*huma.MediaType{
				"application/json": {Schema: s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(ListBody[flexhub.ImbalanceAdjustment]{}), true, "ImbalanceAdjustmentList")},
				"text/csv": {Schema: &huma.Schema{Type: "string", Description: "RFC 4180 CSV with the header row " + strings.Join(adjustmentCSVColumns, ",") +
					"; volume_mwh in mWh (an integer)"}},
			}
		}
	}
}

// adjustmentsCSV renders adjustments as CSV.
func adjustmentsCSV(items []*flexhub.ImbalanceAdjustment) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(adjustmentCSVColumns)
	for _, a := range items {
		w.Write([]string{a.ID, a.RunID, a.BRPID, a.SupplierID, a.MeteringPointID, a.Start.UTC().Format(time.RFC3339), a.End.UTC().Format(time.RFC3339),
			strconv.FormatInt(a.Volume, 10), a.OrderID, a.VerificationID, a.ResourceID, a.FSPID, a.SystemOperatorID})
	}
	w.Flush()
	return b.Bytes()
}
