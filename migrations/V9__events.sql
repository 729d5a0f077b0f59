-- V9: what the event relay, the event feed and their retention need (DESIGN §6.4).

-- The relay scans only unpublished rows, in (xid, id) order.
CREATE INDEX outbox_unpublished_idx ON outbox (xid, id) WHERE published_at IS NULL;
-- Retention prunes by age, published or not.
CREATE INDEX outbox_occurred_idx ON outbox (occurred_at);
-- The feed reads one tenant's rows in (xid, id) order.
CREATE INDEX outbox_tenant_xid_idx ON outbox (tenant_id, xid, id);

-- Wakes the relay (LISTEN wms_outbox) when a transaction that wrote events commits;
-- notifications are delivered at commit and folded into one per transaction.
CREATE FUNCTION outbox_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('wms_outbox', '');
        RETURN NULL;
    END
    $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- The newest (xid, id) retention removed per tenant: a feed cursor before it has
-- missed events and is answered 410.
CREATE TABLE outbox_pruned (
    tenant_id   bigint      NOT NULL PRIMARY KEY REFERENCES tenants (id),
    xid         xid8        NOT NULL,
    id          bigint      NOT NULL,
    pruned_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE outbox_pruned ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox_pruned FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox_pruned
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
GRANT SELECT ON outbox_pruned TO wms_app;
GRANT SELECT, INSERT, UPDATE ON outbox_pruned TO wms_admin;
