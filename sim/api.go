package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flexhub/flexhub"
)

// API is the part of flexhub's REST API a simulated FSP uses: who it is,
// its resources, and (optionally) its order reports.
type API struct {
	Base string // e.g. http://localhost:8080
	Key  string // the FSP's API key (fh_...)
	HTTP *http.Client
}

func (a *API) client() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// do sends a request and decodes a 2xx JSON answer into out.
func (a *API) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.Base, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.client().Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		var p struct {
			Title, Detail string
		}
		_ = json.Unmarshal(raw, &p)
		msg := strings.TrimSpace(p.Title + ": " + p.Detail)
		if p.Title == "" {
			msg = strings.TrimSpace(string(raw))
		}
		return &HTTPError{Status: res.StatusCode, Msg: fmt.Sprintf("%s %s: %s: %s", method, path, res.Status, msg)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// HTTPError is a non-2xx answer.
type HTTPError struct {
	Status int
	Msg    string
}

func (e *HTTPError) Error() string { return e.Msg }

// Me returns the party the key belongs to.
func (a *API) Me(ctx context.Context) (*flexhub.Party, error) {
	var p flexhub.Party
	if err := a.do(ctx, http.MethodGet, "/v1/me", nil, &p); err != nil {
		return nil, err
	}
	if p.ID == "" {
		return nil, fmt.Errorf("GET /v1/me: no party id in the answer")
	}
	return &p, nil
}

// Resources lists the FSP's own resources, following the pages.
func (a *API) Resources(ctx context.Context) ([]*flexhub.Resource, error) {
	var all []*flexhub.Resource
	after := ""
	for {
		q := url.Values{"fsp_id": {"self"}, "limit": {"500"}}
		if after != "" {
			q.Set("after", after)
		}
		var page struct {
			Items      []*flexhub.Resource `json:"items"`
			NextCursor string              `json:"next_cursor"`
		}
		if err := a.do(ctx, http.MethodGet, "/v1/resources?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" || len(page.Items) == 0 {
			return all, nil
		}
		after = page.NextCursor
	}
}

// Report posts an order report over REST.
func (a *API) Report(ctx context.Context, r Report) error {
	return a.do(ctx, http.MethodPost, "/v1/activation-orders/"+url.PathEscape(r.OrderID)+"/status",
		Report{Status: r.Status, Reason: r.Reason}, nil)
}
