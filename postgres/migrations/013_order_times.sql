-- An activation order's time span as columns: the start of its first
-- set-point and the end of its last (Unix microseconds; set-points are
-- fixed at creation). A settlement run lists only the orders that reach
-- into its period, and the orders of a resource within a baseline's
-- look-back, not every order ever issued.
ALTER TABLE activation_order ADD COLUMN first_start BIGINT;
ALTER TABLE activation_order ADD COLUMN last_end BIGINT;
UPDATE activation_order SET
    first_start = round(extract(epoch FROM (body::jsonb #>> '{setpoints,0,start}')::timestamptz) * 1000000)::bigint,
    last_end    = round(extract(epoch FROM (body::jsonb -> 'setpoints' -> -1 ->> 'end')::timestamptz) * 1000000)::bigint;
CREATE INDEX activation_order_system_operator_end ON activation_order(system_operator_id, last_end);
CREATE INDEX activation_order_resource_end ON activation_order(resource_id, last_end);
