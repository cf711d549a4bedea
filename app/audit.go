package app

import (
	"context"

	"github.com/flexhub/flexhub"
)

// ListAudit lists audit entries after seq `after`: all of them for the
// administrator and the register operator, otherwise the entries naming
// the caller. objectID narrows to one object.
func (s *Service) ListAudit(ctx context.Context, objectID string, after int64, limit int) ([]*flexhub.AuditEntry, error) {
	by, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > flexhub.MaxPageLimit {
		limit = flexhub.DefaultPageLimit
	}
	party := by.ID
	if privileged(by) {
		party = ""
	}
	var out []*flexhub.AuditEntry
	err = s.store.View(ctx, func(tx flexhub.Tx) error {
		out, err = tx.ListAudit(ctx, party, objectID, after, limit)
		return err
	})
	return out, err
}

// VerifyAudit recomputes the whole chain and reports the first broken
// entry. Any authenticated party may verify: the report reveals hashes and
// counts, not content.
func (s *Service) VerifyAudit(ctx context.Context) (*flexhub.ChainReport, error) {
	if _, err := actor(ctx); err != nil {
		return nil, err
	}
	return VerifyStore(ctx, s.store)
}

// VerifyStore checks the audit chain of a store directly (the
// `flexhub audit verify` command, which runs beside the server).
func VerifyStore(ctx context.Context, store flexhub.Store) (*flexhub.ChainReport, error) {
	v := flexhub.NewChainVerifier()
	err := store.View(ctx, func(tx flexhub.Tx) error {
		var after int64
		for {
			page, err := tx.ListAudit(ctx, "", "", after, 1000)
			if err != nil {
				return err
			}
			for _, e := range page {
				if !v.Add(e) {
					return nil
				}
				after = e.Seq
			}
			if len(page) < 1000 {
				return nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return &v.Report, nil
}
