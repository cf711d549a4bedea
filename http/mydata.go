package http

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

func init() { extraRoutes = append(extraRoutes, (*Server).registerMyData) }

// MaxGreenButtonBody is the largest Green Button feed an import takes.
const MaxGreenButtonBody = 20 << 20

type exportInput struct {
	MeteringPointIDs []string `query:"metering_point_id,explode" doc:"the metering points, repeated or comma-separated, at most 1,000"`
	From             string   `query:"from" required:"true" doc:"RFC 3339: readings with start >= from"`
	To               string   `query:"to" required:"true" doc:"RFC 3339: readings with start < to; at most 5 years after from"`
	Format           string   `query:"format" enum:"csv,greenbutton" doc:"csv (the default) or greenbutton (ESPI Atom feed); or Accept: text/csv / application/atom+xml"`
	Accept           string   `header:"Accept"`
}

type myDataInput struct {
	From   string `query:"from" doc:"RFC 3339; default: 366 days before to"`
	To     string `query:"to" doc:"RFC 3339; default: the next UTC midnight"`
	Format string `query:"format" enum:"csv,greenbutton" doc:"csv (the default) or greenbutton; or Accept: text/csv / application/atom+xml"`
	Accept string `header:"Accept"`
}

type exportOutput struct {
	ContentType        string `header:"Content-Type"`
	ContentDisposition string `header:"Content-Disposition"`
	Body               func(huma.Context)
}

type greenButtonImportInput struct {
	MeteringPointID string `query:"metering_point_id" required:"true" doc:"the metering point whose series take the readings"`
	RawBody         []byte `contentType:"application/atom+xml"`
}

// exportFormat picks the format from ?format= or the Accept header.
func exportFormat(format, accept string) string {
	if format != "" {
		return format
	}
	for _, part := range strings.Split(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch mt {
		case "text/csv":
			return app.ExportCSV
		case "application/atom+xml", "application/xml", "text/xml":
			return app.ExportGreenButton
		}
	}
	return app.ExportCSV
}

// streamExport answers with the export, streamed. An error after the
// first byte aborts the response (the client sees a broken transfer,
// never a document that looks complete).
func (s *Server) streamExport(ctx context.Context, q app.ExportQuery) (*exportOutput, error) {
	ex, err := s.svc.ExportMeterData(ctx, q)
	if err != nil {
		return nil, problem(err)
	}
	ext := "csv"
	if ex.Format == app.ExportGreenButton {
		ext = "xml"
	}
	name := fmt.Sprintf("flexhub-meter-data-%s-%s.%s", ex.From.Format("20060102T150405Z"), ex.To.Format("20060102T150405Z"), ext)
	return &exportOutput{ContentType: ex.ContentType(), ContentDisposition: `attachment; filename="` + name + `"`,
		Body: func(hc huma.Context) {
			hc.SetStatus(http.StatusOK)
			if err := ex.Write(hc.Context(), hc.BodyWriter()); err != nil {
				s.log.Error("meter data export aborted", "reader", ex.By, "error", err)
				panic(http.ErrAbortHandler)
			}
		}}, nil
}

func splitIDs(in []string) []string {
	var out []string
	for _, v := range in {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				out = append(out, id)
			}
		}
	}
	return out
}

const exportDoc = "Streamed: the active-energy series (import and export, every resolution stored) of the metering points, readings with from <= start < to. " +
	"CSV (RFC 4180, CRLF) with the header row metering_point_id,metering_point_code,quantity,flow,resolution,start,end,value,unit — value in kWh, exact " +
	"(at least 3 decimals, up to 6 when the reading has mWh); or a Green Button (NAESB ESPI) Atom feed, values in mWh (docs/GREENBUTTON.md). " +
	"Every metering point's access is checked before the first byte (scope meter_history, channel export for CSV, green_button for Green Button): " +
	"the owner reads its own; the DSO, supplier and BRP on their legal basis; anyone else needs a consent in force. If one metering point is refused, " +
	"the whole request is refused (403, naming it) and the refusal is logged; every allowed read by someone other than the owner is logged, one entry per metering point. " +
	"A failure after streaming started aborts the connection. docs/MYDATA.md."

func (s *Server) registerMyData() {
	tags := []string{"Consent"}
	atom := map[string]*huma.MediaType{
		"text/csv":             {Schema: &huma.Schema{Type: "string", Description: "CSV: metering_point_id,metering_point_code,quantity,flow,resolution,start,end,value,unit"}},
		"application/atom+xml": {Schema: &huma.Schema{Type: "string", Description: "Green Button (NAESB ESPI) Atom feed"}},
	}
	huma.Register(s.api, huma.Operation{OperationID: "export-meter-data", Method: http.MethodGet, Path: "/v1/meter-data/export", Tags: tags,
		Summary: "Bulk export of meter data (CSV or Green Button)", Description: exportDoc,
		Responses: map[string]*huma.Response{"200": {Description: "the export, streamed", Content: atom}}},
		func(ctx context.Context, in *exportInput) (*exportOutput, error) {
			from, err := queryTime("from", in.From)
			if err != nil {
				return nil, problem(err)
			}
			to, err := queryTime("to", in.To)
			if err != nil {
				return nil, problem(err)
			}
			ids := splitIDs(in.MeteringPointIDs)
			if len(ids) == 0 {
				return nil, problem(flexhub.FieldErrorf("query.metering_point_id", "name at least one metering point (a consumer downloads its own with GET /v1/me/data)"))
			}
			return s.streamExport(ctx, app.ExportQuery{MeteringPointIDs: ids, From: from, To: to, Format: exportFormat(in.Format, in.Accept)})
		})
	huma.Register(s.api, huma.Operation{OperationID: "download-my-data", Method: http.MethodGet, Path: "/v1/me/data", Tags: tags,
		Summary: "Download My Data (CSV or Green Button)",
		Description: "The calling consumer's own meter data: every metering point it owns, as GET /v1/meter-data/export (own reads are not logged). " +
			"Default range: the 366 days before the next UTC midnight.",
		Responses: map[string]*huma.Response{"200": {Description: "the export, streamed", Content: atom}}},
		func(ctx context.Context, in *myDataInput) (*exportOutput, error) {
			var from, to time.Time
			if in.To != "" {
				t, err := queryTime("to", in.To)
				if err != nil {
					return nil, problem(err)
				}
				to = t
			} else {
				to = s.svc.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
			}
			if in.From != "" {
				f, err := queryTime("from", in.From)
				if err != nil {
					return nil, problem(err)
				}
				from = f
			} else {
				from = to.Add(-366 * 24 * time.Hour)
			}
			return s.streamExport(ctx, app.ExportQuery{From: from, To: to, Format: exportFormat(in.Format, in.Accept)})
		})
	huma.Register(s.api, huma.Operation{OperationID: "import-green-button", Method: http.MethodPost, Path: "/v1/meter-data/greenbutton", Tags: []string{"Metering"},
		Summary: "Import a Green Button feed into a metering point", MaxBodyBytes: MaxGreenButtonBody,
		Description: "By the metering point's DSO (its meter data sender; 403 meter.not_operator for anyone else, the consumer included — docs/MYDATA.md): " +
			"the interval readings of an ESPI feed (up to 20 MiB, 413 beyond) become readings of the metering point's active_energy series — flow from the ReadingType's " +
			"flowDirection (1 import, 19 export), resolution from each reading's duration, values exact in mWh — through the normal ingestion path: " +
			"all or nothing, versions and corrections, meter.ingested audit entries. Entries that are not usage data are listed in skipped."},
		func(ctx context.Context, in *greenButtonImportInput) (*struct{ Body *app.GreenButtonImport }, error) {
			res, err := s.svc.ImportGreenButton(ctx, in.MeteringPointID, bytes.NewReader(in.RawBody))
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *app.GreenButtonImport }{Body: res}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "consumer-overview", Method: http.MethodGet, Path: "/v1/me/overview", Tags: tags,
		Summary: "The consumer's overview",
		Description: "For the calling consumer: its metering points (DSO, supplier, BRP), the resources at them or owned by it and the FSP operating each, " +
			"the activation orders of the last 90 days that touched those resources, their verifications (energy ordered and delivered), " +
			"the statement lines naming those resources (what the system operator pays the FSP — flexhub does not know the consumer's contract share: fsp_earnings_note), " +
			"its consents and the latest 50 reads of its data by others. docs/MYDATA.md."},
		func(ctx context.Context, _ *struct{}) (*struct{ Body *app.ConsumerOverview }, error) {
			o, err := s.svc.ConsumerOverview(ctx)
			if err != nil {
				return nil, problem(err)
			}
			return &struct{ Body *app.ConsumerOverview }{Body: o}, nil
		})
}
