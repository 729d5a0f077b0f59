-- V5: stock. Balances keyed (warehouse, location, product, lot, status) with CHECKed
-- quantities, lots with expiry, the append-only monthly-partitioned ledger, opening
-- snapshots (written by archival), and cycle counts.

CREATE TABLE lots (
    tenant_id   bigint NOT NULL,
    product_id  bigint NOT NULL,
    lot_code    text   NOT NULL CHECK (lot_code ~ '^[A-Za-z0-9][A-Za-z0-9_./-]{0,39}$'),
    expiry      date,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, product_id, lot_code),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);

-- lot_code is '' for products that are not lot-tracked (the API shows null), so the key
-- has no NULL and one balance row exists per key.
CREATE TABLE inventory_balances (
    tenant_id     bigint  NOT NULL,
    warehouse_id  bigint  NOT NULL,
    location_id   bigint  NOT NULL,
    product_id    bigint  NOT NULL,
    lot_code      text    NOT NULL DEFAULT '',
    status        text    NOT NULL CHECK (status IN ('available', 'quarantine', 'damaged', 'hold')),
    id            bigint  GENERATED ALWAYS AS IDENTITY,
    on_hand       bigint  NOT NULL CHECK (on_hand >= 0),
    allocated     bigint  NOT NULL DEFAULT 0 CHECK (allocated >= 0),
    first_received_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT allocated_within_on_hand CHECK (allocated <= on_hand),
    PRIMARY KEY (tenant_id, warehouse_id, location_id, product_id, lot_code, status),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX inventory_balances_product_idx
    ON inventory_balances (tenant_id, product_id, warehouse_id, status);
CREATE INDEX inventory_balances_location_idx ON inventory_balances (tenant_id, location_id);

-- The ledger: one row per change of on_hand of one balance key, never updated or
-- deleted by the runtime role. Invariant, per key:
--   balance.on_hand = opening snapshot + sum(movements.quantity).
CREATE SEQUENCE inventory_movements_id_seq AS bigint;
CREATE TABLE inventory_movements (
    tenant_id       bigint      NOT NULL,
    id              bigint      NOT NULL DEFAULT nextval('inventory_movements_id_seq'),
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    warehouse_id    bigint      NOT NULL,
    location_id     bigint      NOT NULL,
    product_id      bigint      NOT NULL,
    lot_code        text        NOT NULL DEFAULT '',
    status          text        NOT NULL,
    quantity        bigint      NOT NULL CHECK (quantity <> 0),
    kind            text        NOT NULL CHECK (kind IN ('receipt', 'putaway', 'move',
                        'adjustment', 'status_change', 'pick', 'ship', 'cycle_count',
                        'replenishment', 'return', 'cancellation')),
    reason          text,
    reference_type  text,
    reference_id    text,
    uom             text,
    uom_quantity    bigint,
    actor           text        NOT NULL,
    request_id      text,
    PRIMARY KEY (tenant_id, id, occurred_at)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE inventory_movements_id_seq OWNED BY inventory_movements.id;
CREATE INDEX inventory_movements_key_idx
    ON inventory_movements (tenant_id, location_id, product_id, lot_code, status);
CREATE INDEX inventory_movements_product_idx ON inventory_movements (tenant_id, product_id, id);
-- Rows landing here mean a monthly partition is missing: an alert watches its size.
CREATE TABLE inventory_movements_default PARTITION OF inventory_movements DEFAULT;

-- Creates the monthly partitions from last month to months_ahead months ahead. Run by
-- `wms-server migrate` (and the worker) as the owner; idempotent.
CREATE FUNCTION ensure_movement_partitions(months_ahead integer) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    first_month date := date_trunc('month', now() - interval '1 month')::date;
    month date;
    name text;
    created integer := 0;
BEGIN
    FOR i IN 0..(months_ahead + 1) LOOP
        month := (first_month + make_interval(months => i))::date;
        name := format('inventory_movements_y%sm%s', to_char(month, 'YYYY'), to_char(month, 'MM'));
        IF to_regclass(format('%I.%I', current_schema(), name)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF inventory_movements FOR VALUES FROM (%L) TO (%L)',
                name, month, (month + interval '1 month')::date);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
SELECT ensure_movement_partitions(3);

-- Opening snapshot per balance key, written by archival when it removes old months.
CREATE TABLE inventory_openings (
    tenant_id     bigint NOT NULL,
    warehouse_id  bigint NOT NULL,
    location_id   bigint NOT NULL,
    product_id    bigint NOT NULL,
    lot_code      text   NOT NULL DEFAULT '',
    status        text   NOT NULL,
    quantity      bigint NOT NULL,
    as_of         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, warehouse_id, location_id, product_id, lot_code, status)
);

CREATE TABLE cycle_counts (
    tenant_id     bigint      NOT NULL,
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    warehouse_id  bigint      NOT NULL,
    status        text        NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'counted', 'approved', 'cancelled')),
    blind         boolean     NOT NULL DEFAULT true,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    approved_by   text,
    approved_at   timestamptz,
    accuracy_pct  numeric(5,2),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id)
);

CREATE TABLE cycle_count_lines (
    tenant_id     bigint  NOT NULL,
    count_id      bigint  NOT NULL,
    line_no       integer NOT NULL,
    location_id   bigint  NOT NULL,
    product_id    bigint  NOT NULL,
    lot_code      text    NOT NULL DEFAULT '',
    status        text    NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'recount', 'counted')),
    expected      bigint,
    counted       bigint  CHECK (counted >= 0),
    attempts      integer NOT NULL DEFAULT 0,
    counted_by    text,
    counted_at    timestamptz,
    PRIMARY KEY (tenant_id, count_id, line_no),
    UNIQUE (tenant_id, count_id, location_id, product_id, lot_code),
    FOREIGN KEY (tenant_id, count_id) REFERENCES cycle_counts (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lots', 'inventory_balances', 'inventory_movements',
                             'inventory_openings', 'cycle_counts', 'cycle_count_lines']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) '
                       'WITH CHECK (tenant_id = current_tenant_id())', t);
        EXECUTE format('GRANT SELECT ON %I TO wms_admin', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON lots, inventory_balances, cycle_counts, cycle_count_lines
    TO wms_app;
-- Append-only ledger: no UPDATE or DELETE for the runtime role.
GRANT SELECT, INSERT ON inventory_movements TO wms_app;
GRANT USAGE ON SEQUENCE inventory_movements_id_seq TO wms_app;
GRANT SELECT ON inventory_openings TO wms_app;
GRANT INSERT, DELETE ON inventory_openings, inventory_movements TO wms_admin;
