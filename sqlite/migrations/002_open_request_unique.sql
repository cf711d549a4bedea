-- At most one open product prequalification per (resource, product), and
-- one open grid prequalification per resource, enforced by the database so
-- that concurrent submissions cannot both pass the check in app/.
CREATE UNIQUE INDEX prequalification_one_open ON prequalification(resource_id, product_id) WHERE status IN ('submitted', 'information_requested');
CREATE UNIQUE INDEX grid_prequalification_one_open ON grid_prequalification(resource_id) WHERE status = 'requested';
