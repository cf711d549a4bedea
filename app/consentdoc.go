package app

import (
	"context"

	"github.com/flexhub/flexhub"
)

// ConsentDocument is a consent with the parties it names, for the consent
// document (docs/CONSENT_DOCUMENT.md): its XML rendering names parties by
// EIC as well as by flexhub id.
type ConsentDocument struct {
	Consent     *flexhub.Consent
	Owner       *flexhub.Party
	DataUser    *flexhub.Party
	RequestedBy *flexhub.Party
}

// GetConsentDocument returns a consent and its parties to the consent's
// owner and data user (and the register), like GetConsent.
func (s *Service) GetConsentDocument(ctx context.Context, id string) (*ConsentDocument, error) {
	c, err := s.GetConsent(ctx, id)
	if err != nil {
		return nil, err
	}
	doc := &ConsentDocument{Consent: c}
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		for _, p := range []struct {
			id  string
			out **flexhub.Party
		}{{c.OwnerID, &doc.Owner}, {c.DataUserID, &doc.DataUser}, {c.RequestedBy, &doc.RequestedBy}} {
			party, err := tx.Party(ctx, p.id)
			if err != nil {
				return err
			}
			*p.out = party
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return doc, nil
}
