package sqlstore

import (
	"context"
	"strings"

	"github.com/flexhub/flexhub"
)

var (
	partyTable = &table{kind: flexhub.KindParty, name: "party", noun: "party",
		cols:    []string{"eic", "roles"},
		filters: map[string]string{"role": "roles LIKE ?"}}
	controlAreaTable = &table{kind: flexhub.KindControlArea, name: "control_area", noun: "control area",
		cols:    []string{"eic", "tso_id"},
		filters: map[string]string{"tso_id": "tso_id = ?"}}
	gridAreaTable = &table{kind: flexhub.KindGridArea, name: "grid_area", noun: "grid area",
		cols:    []string{"eic", "dso_id", "control_area_id"},
		filters: map[string]string{"dso_id": "dso_id = ?", "control_area_id": "control_area_id = ?"}}
	connectionPointTable = &table{kind: flexhub.KindConnectionPoint, name: "connection_point", noun: "connection point",
		cols:    []string{"code", "grid_area_id", "dso_id"},
		filters: map[string]string{"dso_id": "dso_id = ?", "grid_area_id": "grid_area_id = ?"}}
	meteringPointTable = &table{kind: flexhub.KindMeteringPoint, name: "metering_point", noun: "metering point",
		cols: []string{"code", "connection_point_id", "dso_id", "consumer_id"},
		filters: map[string]string{"dso_id": "dso_id = ?", "consumer_id": "consumer_id = ?",
			"connection_point_id": "connection_point_id = ?"}}
	resourceTable = &table{kind: flexhub.KindResource, name: "resource", noun: "resource",
		cols: []string{"fsp_id", "owner_id", "dso_id", "metering_point_id", "connection_point_id", "status"},
		filters: map[string]string{"fsp_id": "fsp_id = ?", "owner_id": "owner_id = ?", "dso_id": "dso_id = ?",
			"metering_point_id": "metering_point_id = ?", "connection_point_id": "connection_point_id = ?", "status": "status = ?"}}
	productTable = &table{kind: flexhub.KindProduct, name: "product", noun: "product",
		cols:    []string{"system_operator_id", "status"},
		filters: map[string]string{"system_operator_id": "system_operator_id = ?", "status": "status = ?"}}
	prequalificationTable = &table{kind: flexhub.KindPrequalification, name: "prequalification", noun: "prequalification",
		cols: []string{"resource_id", "product_id", "fsp_id", "system_operator_id", "status"},
		filters: map[string]string{"resource_id": "resource_id = ?", "product_id": "product_id = ?", "fsp_id": "fsp_id = ?",
			"system_operator_id": "system_operator_id = ?", "status": "status = ?"}}
	gridPrequalificationTable = &table{kind: flexhub.KindGridPrequalification, name: "grid_prequalification", noun: "grid prequalification",
		cols:    []string{"resource_id", "dso_id", "fsp_id", "status"},
		filters: map[string]string{"resource_id": "resource_id = ?", "dso_id": "dso_id = ?", "fsp_id": "fsp_id = ?", "status": "status = ?"}}
	contractTable = &table{kind: flexhub.KindContract, name: "contract", noun: "contract",
		cols: []string{"fsp_id", "system_operator_id", "product_id", "status"},
		filters: map[string]string{"fsp_id": "fsp_id = ?", "system_operator_id": "system_operator_id = ?",
			"product_id": "product_id = ?", "status": "status = ?"}}
)

func rolesColumn(rs []flexhub.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return "," + strings.Join(s, ",") + ","
}

// CreateParty implements flexhub.Tx.
func (t *Tx) CreateParty(ctx context.Context, p *flexhub.Party) error {
	return t.insertObject(ctx, partyTable, p.ID, &p.Version, p.CreatedAt, []any{p.EIC, rolesColumn(p.Roles)}, p)
}

// UpdateParty implements flexhub.Tx.
func (t *Tx) UpdateParty(ctx context.Context, p *flexhub.Party) error {
	return t.updateObject(ctx, partyTable, p.ID, &p.Version, p.UpdatedAt, []any{p.EIC, rolesColumn(p.Roles)}, p)
}

// Party implements flexhub.Tx.
func (t *Tx) Party(ctx context.Context, id string) (*flexhub.Party, error) {
	return getObject[flexhub.Party](ctx, t, partyTable, "id", id)
}

// PartyByEIC implements flexhub.Tx.
func (t *Tx) PartyByEIC(ctx context.Context, eic string) (*flexhub.Party, error) {
	return getObject[flexhub.Party](ctx, t, partyTable, "eic", eic)
}

// ListParties implements flexhub.Tx.
func (t *Tx) ListParties(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Party, string, error) {
	if r, ok := f["role"]; ok {
		g := flexhub.Filter{}
		for k, v := range f {
			g[k] = v
		}
		g["role"] = "%," + r + ",%"
		f = g
	}
	return listObjects[flexhub.Party](ctx, t, partyTable, f, pg)
}

// CountParties implements flexhub.Tx.
func (t *Tx) CountParties(ctx context.Context) (int64, error) {
	var n int64
	err := t.queryRow(ctx, "SELECT COUNT(*) FROM party").Scan(&n)
	return n, err
}

// CreateControlArea implements flexhub.Tx.
func (t *Tx) CreateControlArea(ctx context.Context, a *flexhub.ControlArea) error {
	return t.insertObject(ctx, controlAreaTable, a.ID, &a.Version, a.CreatedAt, []any{a.EIC, a.TSOID}, a)
}

// ControlArea implements flexhub.Tx.
func (t *Tx) ControlArea(ctx context.Context, id string) (*flexhub.ControlArea, error) {
	return getObject[flexhub.ControlArea](ctx, t, controlAreaTable, "id", id)
}

// ListControlAreas implements flexhub.Tx.
func (t *Tx) ListControlAreas(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.ControlArea, string, error) {
	return listObjects[flexhub.ControlArea](ctx, t, controlAreaTable, f, pg)
}

// CreateGridArea implements flexhub.Tx.
func (t *Tx) CreateGridArea(ctx context.Context, a *flexhub.GridArea) error {
	return t.insertObject(ctx, gridAreaTable, a.ID, &a.Version, a.CreatedAt, []any{a.EIC, a.DSOID, a.ControlAreaID}, a)
}

// GridArea implements flexhub.Tx.
func (t *Tx) GridArea(ctx context.Context, id string) (*flexhub.GridArea, error) {
	return getObject[flexhub.GridArea](ctx, t, gridAreaTable, "id", id)
}

// ListGridAreas implements flexhub.Tx.
func (t *Tx) ListGridAreas(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.GridArea, string, error) {
	return listObjects[flexhub.GridArea](ctx, t, gridAreaTable, f, pg)
}

func connectionPointIdx(c *flexhub.ConnectionPoint) []any {
	return []any{c.Code, c.GridAreaID, c.DSOID}
}

// CreateConnectionPoint implements flexhub.Tx.
func (t *Tx) CreateConnectionPoint(ctx context.Context, c *flexhub.ConnectionPoint) error {
	return t.insertObject(ctx, connectionPointTable, c.ID, &c.Version, c.CreatedAt, connectionPointIdx(c), c)
}

// UpdateConnectionPoint implements flexhub.Tx.
func (t *Tx) UpdateConnectionPoint(ctx context.Context, c *flexhub.ConnectionPoint) error {
	return t.updateObject(ctx, connectionPointTable, c.ID, &c.Version, c.UpdatedAt, connectionPointIdx(c), c)
}

// ConnectionPoint implements flexhub.Tx.
func (t *Tx) ConnectionPoint(ctx context.Context, id string) (*flexhub.ConnectionPoint, error) {
	return getObject[flexhub.ConnectionPoint](ctx, t, connectionPointTable, "id", id)
}

// ListConnectionPoints implements flexhub.Tx.
func (t *Tx) ListConnectionPoints(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.ConnectionPoint, string, error) {
	return listObjects[flexhub.ConnectionPoint](ctx, t, connectionPointTable, f, pg)
}

func meteringPointIdx(m *flexhub.MeteringPoint) []any {
	return []any{m.Code, m.ConnectionPointID, m.DSOID, m.ConsumerID}
}

// CreateMeteringPoint implements flexhub.Tx.
func (t *Tx) CreateMeteringPoint(ctx context.Context, m *flexhub.MeteringPoint) error {
	return t.insertObject(ctx, meteringPointTable, m.ID, &m.Version, m.CreatedAt, meteringPointIdx(m), m)
}

// UpdateMeteringPoint implements flexhub.Tx.
func (t *Tx) UpdateMeteringPoint(ctx context.Context, m *flexhub.MeteringPoint) error {
	return t.updateObject(ctx, meteringPointTable, m.ID, &m.Version, m.UpdatedAt, meteringPointIdx(m), m)
}

// MeteringPoint implements flexhub.Tx.
func (t *Tx) MeteringPoint(ctx context.Context, id string) (*flexhub.MeteringPoint, error) {
	return getObject[flexhub.MeteringPoint](ctx, t, meteringPointTable, "id", id)
}

// ListMeteringPoints implements flexhub.Tx.
func (t *Tx) ListMeteringPoints(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.MeteringPoint, string, error) {
	return listObjects[flexhub.MeteringPoint](ctx, t, meteringPointTable, f, pg)
}

func resourceIdx(r *flexhub.Resource) []any {
	return []any{r.FSPID, ns(r.OwnerID), ns(r.DSOID), ns(r.MeteringPointID), ns(r.ConnectionPointID), r.Status}
}

// CreateResource implements flexhub.Tx.
func (t *Tx) CreateResource(ctx context.Context, r *flexhub.Resource) error {
	return t.insertObject(ctx, resourceTable, r.ID, &r.Version, r.ValidFrom, resourceIdx(r), r)
}

// UpdateResource implements flexhub.Tx.
func (t *Tx) UpdateResource(ctx context.Context, r *flexhub.Resource) error {
	return t.updateObject(ctx, resourceTable, r.ID, &r.Version, r.ValidFrom, resourceIdx(r), r)
}

// Resource implements flexhub.Tx.
func (t *Tx) Resource(ctx context.Context, id string) (*flexhub.Resource, error) {
	return getObject[flexhub.Resource](ctx, t, resourceTable, "id", id)
}

// ListResources implements flexhub.Tx.
func (t *Tx) ListResources(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Resource, string, error) {
	return listObjects[flexhub.Resource](ctx, t, resourceTable, f, pg)
}

// CreateProduct implements flexhub.Tx.
func (t *Tx) CreateProduct(ctx context.Context, p *flexhub.Product) error {
	return t.insertObject(ctx, productTable, p.ID, &p.Version, p.CreatedAt, []any{p.SystemOperatorID, p.Status}, p)
}

// UpdateProduct implements flexhub.Tx.
func (t *Tx) UpdateProduct(ctx context.Context, p *flexhub.Product) error {
	return t.updateObject(ctx, productTable, p.ID, &p.Version, p.UpdatedAt, []any{p.SystemOperatorID, p.Status}, p)
}

// Product implements flexhub.Tx.
func (t *Tx) Product(ctx context.Context, id string) (*flexhub.Product, error) {
	return getObject[flexhub.Product](ctx, t, productTable, "id", id)
}

// ListProducts implements flexhub.Tx.
func (t *Tx) ListProducts(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Product, string, error) {
	return listObjects[flexhub.Product](ctx, t, productTable, f, pg)
}

func prequalificationIdx(p *flexhub.Prequalification) []any {
	return []any{p.ResourceID, p.ProductID, p.FSPID, p.SystemOperatorID, p.Status}
}

// CreatePrequalification implements flexhub.Tx.
func (t *Tx) CreatePrequalification(ctx context.Context, p *flexhub.Prequalification) error {
	return t.insertObject(ctx, prequalificationTable, p.ID, &p.Version, p.CreatedAt, prequalificationIdx(p), p)
}

// UpdatePrequalification implements flexhub.Tx.
func (t *Tx) UpdatePrequalification(ctx context.Context, p *flexhub.Prequalification) error {
	return t.updateObject(ctx, prequalificationTable, p.ID, &p.Version, p.UpdatedAt, prequalificationIdx(p), p)
}

// Prequalification implements flexhub.Tx.
func (t *Tx) Prequalification(ctx context.Context, id string) (*flexhub.Prequalification, error) {
	return getObject[flexhub.Prequalification](ctx, t, prequalificationTable, "id", id)
}

// ListPrequalifications implements flexhub.Tx.
func (t *Tx) ListPrequalifications(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Prequalification, string, error) {
	return listObjects[flexhub.Prequalification](ctx, t, prequalificationTable, f, pg)
}

func gridPrequalificationIdx(g *flexhub.GridPrequalification) []any {
	return []any{g.ResourceID, g.DSOID, g.FSPID, g.Status}
}

// CreateGridPrequalification implements flexhub.Tx.
func (t *Tx) CreateGridPrequalification(ctx context.Context, g *flexhub.GridPrequalification) error {
	return t.insertObject(ctx, gridPrequalificationTable, g.ID, &g.Version, g.CreatedAt, gridPrequalificationIdx(g), g)
}

// UpdateGridPrequalification implements flexhub.Tx.
func (t *Tx) UpdateGridPrequalification(ctx context.Context, g *flexhub.GridPrequalification) error {
	return t.updateObject(ctx, gridPrequalificationTable, g.ID, &g.Version, g.UpdatedAt, gridPrequalificationIdx(g), g)
}

// GridPrequalification implements flexhub.Tx.
func (t *Tx) GridPrequalification(ctx context.Context, id string) (*flexhub.GridPrequalification, error) {
	return getObject[flexhub.GridPrequalification](ctx, t, gridPrequalificationTable, "id", id)
}

// ListGridPrequalifications implements flexhub.Tx.
func (t *Tx) ListGridPrequalifications(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.GridPrequalification, string, error) {
	return listObjects[flexhub.GridPrequalification](ctx, t, gridPrequalificationTable, f, pg)
}

func contractIdx(c *flexhub.Contract) []any {
	return []any{c.FSPID, c.SystemOperatorID, c.ProductID, c.Status}
}

// CreateContract implements flexhub.Tx.
func (t *Tx) CreateContract(ctx context.Context, c *flexhub.Contract) error {
	return t.insertObject(ctx, contractTable, c.ID, &c.Version, c.CreatedAt, contractIdx(c), c)
}

// UpdateContract implements flexhub.Tx.
func (t *Tx) UpdateContract(ctx context.Context, c *flexhub.Contract) error {
	return t.updateObject(ctx, contractTable, c.ID, &c.Version, c.UpdatedAt, contractIdx(c), c)
}

// Contract implements flexhub.Tx.
func (t *Tx) Contract(ctx context.Context, id string) (*flexhub.Contract, error) {
	return getObject[flexhub.Contract](ctx, t, contractTable, "id", id)
}

// ListContracts implements flexhub.Tx.
func (t *Tx) ListContracts(ctx context.Context, f flexhub.Filter, pg flexhub.Page) ([]*flexhub.Contract, string, error) {
	return listObjects[flexhub.Contract](ctx, t, contractTable, f, pg)
}
