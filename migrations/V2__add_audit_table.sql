-- V2: tenant isolation helper and the audit log (the seed's migration name).
--
-- Every tenant table: tenant_id first in its primary key and in every foreign key to
-- another tenant table (Citus co-location), ENABLE + FORCE ROW LEVEL SECURITY, and the
-- policy tenant_isolation below. The catalog test in tests/integration enforces this.

-- The tenant bound to the current transaction (SET LOCAL app.tenant_id), or NULL.
-- After a SET LOCAL ends the setting reads '' rather than NULL: nullif keeps a pooled
-- session that forgot to bind a tenant seeing nothing instead of failing.
CREATE FUNCTION current_tenant_id() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::bigint $$;
GRANT EXECUTE ON FUNCTION current_tenant_id() TO wms_app, wms_admin;

CREATE TABLE audit_log (
    tenant_id    bigint      NOT NULL REFERENCES tenants (id),
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    entity       text        NOT NULL,
    entity_id    text        NOT NULL,
    action       text        NOT NULL,
    before       jsonb,
    after        jsonb,
    request_id   text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_entity_idx ON audit_log (tenant_id, entity, entity_id, id);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());

-- Append-only for the runtime role: no UPDATE or DELETE.
GRANT SELECT, INSERT ON audit_log TO wms_app;
GRANT SELECT, INSERT, DELETE ON audit_log TO wms_admin;
