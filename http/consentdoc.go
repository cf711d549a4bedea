package http

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
)

// The consent document (docs/CONSENT_DOCUMENT.md): CIM has no consent
// message, so flexhub defines one — the JSON of GET /v1/consents/{id}
// (docs/schemas/consent.schema.json) and an XML rendering in the style of
// the ENTSO-E ESMP market documents (docs/schemas/consent.xsd), which
// GET /v1/consents/{id} answers when asked with Accept: application/xml
// or ?format=xml.

// After registerConsents (consent.go): files initialise in name order.
func init() { extraRoutes = append(extraRoutes, (*Server).documentConsentXML) }

// ConsentXMLNamespace is the consent document's XML namespace.
const ConsentXMLNamespace = "urn:flexhub:consent:1:0"

// ConsentDocumentType is the document type code: Z codes are left by the
// ESMP code lists for use outside ENTSO-E's own documents.
const ConsentDocumentType = "Z01"

// Coding schemes of identifiers in the consent document: A01 is ENTSO-E's
// code for an EIC; FHB marks a flexhub register id.
const (
	codingEIC     = "A01"
	codingFlexhub = "FHB"
)

type xmlCoded struct {
	CodingScheme string `xml:"codingScheme,attr"`
	Value        string `xml:",chardata"`
}

type xmlInterval struct {
	Start string `xml:"start"`
	End   string `xml:"end"`
}

type xmlEvaluationPoint struct {
	MRID xmlCoded `xml:"mRID"`
}

// ConsentXML is the XML rendering of a consent (Consent_MarketDocument).
type ConsentXML struct {
	XMLName          xml.Name             `xml:"urn:flexhub:consent:1:0 Consent_MarketDocument"`
	MRID             string               `xml:"mRID"`
	RevisionNumber   int64                `xml:"revisionNumber"`
	Type             string               `xml:"type"`
	CreatedDateTime  string               `xml:"createdDateTime"`
	Sender           xmlCoded             `xml:"sender_MarketParticipant.mRID"`
	Receiver         xmlCoded             `xml:"receiver_MarketParticipant.mRID"`
	Owner            xmlCoded             `xml:"dataOwner_MarketParticipant.mRID"`
	OwnerID          xmlCoded             `xml:"dataOwner_MarketParticipant.registeredID"`
	DataUser         xmlCoded             `xml:"dataUser_MarketParticipant.mRID"`
	DataUserID       xmlCoded             `xml:"dataUser_MarketParticipant.registeredID"`
	RequestedBy      xmlCoded             `xml:"requestedBy_MarketParticipant.registeredID"`
	Status           string               `xml:"status"`
	Channel          string               `xml:"channel"`
	Purpose          string               `xml:"purpose"`
	Period           xmlInterval          `xml:"consent_Period.timeInterval"`
	DecidedDateTime  string               `xml:"decidedDateTime,omitempty"`
	RevokedDateTime  string               `xml:"revokedDateTime,omitempty"`
	RegisteredAt     string               `xml:"registeredDateTime"`
	Scopes           []string             `xml:"scope"`
	EvaluationPoints []xmlEvaluationPoint `xml:"MarketEvaluationPoint"`
}

func xmlTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// NewConsentXML renders a consent document.
func NewConsentXML(d *app.ConsentDocument) *ConsentXML {
	c := d.Consent
	eic := func(p *flexhub.Party) xmlCoded { return xmlCoded{codingEIC, p.EIC} }
	fh := func(id string) xmlCoded { return xmlCoded{codingFlexhub, id} }
	receiver := d.DataUser
	if c.RequestedBy == c.DataUserID {
		receiver = d.Owner
	}
	x := &ConsentXML{
		MRID: c.ID, RevisionNumber: c.Version, Type: ConsentDocumentType, CreatedDateTime: xmlTime(c.UpdatedAt),
		Sender: eic(d.RequestedBy), Receiver: eic(receiver),
		Owner: eic(d.Owner), OwnerID: fh(c.OwnerID), DataUser: eic(d.DataUser), DataUserID: fh(c.DataUserID), RequestedBy: fh(c.RequestedBy),
		Status: c.Status, Channel: c.Channel, Purpose: c.Purpose,
		Period:       xmlInterval{Start: xmlTime(c.ValidFrom), End: xmlTime(c.ValidTo)},
		RegisteredAt: xmlTime(c.CreatedAt), Scopes: c.Scopes,
	}
	if c.DecidedAt != nil {
		x.DecidedDateTime = xmlTime(*c.DecidedAt)
	}
	if c.RevokedAt != nil {
		x.RevokedDateTime = xmlTime(*c.RevokedAt)
	}
	for _, id := range c.MeteringPointIDs {
		x.EvaluationPoints = append(x.EvaluationPoints, xmlEvaluationPoint{MRID: fh(id)})
	}
	return x
}

// wantsXML reads ?format= and Accept: the consent document as XML or as
// JSON (the default).
func wantsXML(ctx huma.Context) (bool, error) {
	switch ctx.Query("format") {
	case "xml":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, flexhub.FieldErrorf("query.format", "format %q: xml or json", ctx.Query("format"))
	}
	for _, part := range strings.Split(ctx.Header("Accept"), ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch mt {
		case "application/xml", "text/xml":
			return true, nil
		case "application/json", "application/problem+json", "*/*", "application/*":
			return false, nil
		}
	}
	return false, nil
}

// consentXML answers GET /v1/consents/{id} in XML when asked; the JSON
// answer is the operation's own.
func (s *Server) consentXML(ctx huma.Context, next func(huma.Context)) {
	asXML, err := wantsXML(ctx)
	if err == nil && !asXML {
		next(ctx)
		return
	}
	var doc *app.ConsentDocument
	if err == nil {
		doc, err = s.svc.GetConsentDocument(ctx.Context(), ctx.Param("id"))
	}
	if err != nil {
		var se huma.StatusError
		if errors.As(problem(err), &se) {
			huma.WriteErr(s.api, ctx, se.GetStatus(), flexhub.ErrorMessage(err))
		} else {
			huma.WriteErr(s.api, ctx, http.StatusInternalServerError, "internal error")
		}
		return
	}
	body, err := xml.MarshalIndent(NewConsentXML(doc), "", "  ")
	if err != nil {
		huma.WriteErr(s.api, ctx, http.StatusInternalServerError, "render the consent document")
		return
	}
	ctx.SetHeader("Content-Type", "application/xml")
	ctx.SetHeader("ETag", strconv.Quote(strconv.FormatInt(doc.Consent.Version, 10)))
	ctx.SetStatus(http.StatusOK)
	ctx.BodyWriter().Write([]byte(xml.Header))
	ctx.BodyWriter().Write(body)
	ctx.BodyWriter().Write([]byte("\n"))
}

// documentConsentXML adds the XML answer and ?format= to the OpenAPI
// description of GET /v1/consents/{id}.
func (s *Server) documentConsentXML() {
	p := s.api.OpenAPI().Paths["/v1/consents/{id}"]
	if p == nil || p.Get == nil {
		return
	}
	op := p.Get
	op.Description += " The consent document (docs/CONSENT_DOCUMENT.md): JSON by default (schema docs/schemas/consent.schema.json); " +
		"XML in the style of an ESMP market document (Consent_MarketDocument, namespace " + ConsentXMLNamespace + ", schema docs/schemas/consent.xsd) " +
		"with Accept: application/xml or ?format=xml."
	op.Parameters = append(op.Parameters, &huma.Param{Name: "format", In: "query", Description: "xml: the consent document as XML; json (the default)",
		Schema: &huma.Schema{Type: "string", Enum: []any{"json", "xml"}}})
	if r := op.Responses["200"]; r != nil {
		r.Content["application/xml"] = &huma.MediaType{Schema: &huma.Schema{Type: "string",
			Description: "Consent_MarketDocument (" + ConsentXMLNamespace + "), valid against docs/schemas/consent.xsd"}}
	}
}
