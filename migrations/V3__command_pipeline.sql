-- V3: what the command pipeline writes besides the business change itself:
-- idempotency records and the transactional outbox.

CREATE TABLE idempotency_keys (
    tenant_id          bigint      NOT NULL REFERENCES tenants (id),
    key                text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint        bytea       NOT NULL,
    response_status    smallint    NOT NULL,
    -- The exact bytes sent, so a replay is byte-for-byte the first answer.
    response_body      bytea       NOT NULL,
    response_location  text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Events written in the same transaction as the change they describe (DESIGN §6.4).
-- xid orders rows by the transaction that wrote them; readers take only rows whose
-- transaction is older than their snapshot's xmin, so a late commit is never skipped.
CREATE TABLE outbox (
    tenant_id     bigint      NOT NULL REFERENCES tenants (id),
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    xid           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id      uuid        NOT NULL,
    type          text        NOT NULL,
    source        text        NOT NULL,
    subject       text        NOT NULL,
    aggregate     text        NOT NULL,
    aggregate_id  text        NOT NULL,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    data          jsonb       NOT NULL,
    published_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, event_id)
);
CREATE INDEX outbox_xid_idx ON outbox (xid, id);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO wms_app;
GRANT SELECT, INSERT ON outbox TO wms_app;
GRANT SELECT, UPDATE, DELETE ON idempotency_keys, outbox TO wms_admin;

-- API keys are read only through these two functions (DESIGN §4): the runtime role has
-- no privilege on api_keys or tenants. The secret's keyed hash is compared by the
-- caller in constant time.
CREATE FUNCTION api_key_lookup(p_key_id text)
    RETURNS TABLE (tenant_id bigint, tenant_code text, role text, secret_hash bytea,
                   expires_at timestamptz, revoked_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wms, pg_temp
    AS $$
        SELECT k.tenant_id, t.code, k.role, k.secret_hash, k.expires_at, k.revoked_at
        FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE k.key_id = p_key_id
    $$;

-- Records use at most once a minute per key, to keep authentication read-mostly.
CREATE FUNCTION api_key_touch(p_key_id text) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = wms, pg_temp
    AS $$
        UPDATE api_keys SET last_used_at = now()
        WHERE key_id = p_key_id
          AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
    $$;

REVOKE ALL ON FUNCTION api_key_lookup(text), api_key_touch(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_key_lookup(text), api_key_touch(text) TO wms_app;
