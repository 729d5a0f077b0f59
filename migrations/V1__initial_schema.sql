-- V1: the global tables every tenant-owned table hangs from.
-- Runs as wms_owner with search_path = wms (see wms.store.migrations).
-- Flyway users: set FLYWAY_SCHEMAS=wms and FLYWAY_INIT_SQL='SET ROLE wms_owner'.
-- No Flyway placeholders (dollar-brace) are used in any migration.

CREATE TABLE tenants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text        NOT NULL UNIQUE
                CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id        text        PRIMARY KEY CHECK (key_id ~ '^[a-z0-9]{8,32}$'),
    tenant_id     bigint      NOT NULL REFERENCES tenants (id),
    name          text,
    role          text        NOT NULL
                  CHECK (role IN ('admin', 'supervisor', 'operator', 'integration', 'readonly')),
    secret_hash   bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

-- Global tables: the runtime role never reads them directly (DESIGN §4).
REVOKE ALL ON tenants, api_keys FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON tenants, api_keys TO wms_admin;
