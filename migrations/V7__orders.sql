-- V7: outbound orders, their lines and the allocations that reserve stock for them.

CREATE TABLE orders (
    tenant_id        bigint      NOT NULL,
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    number           text        NOT NULL CHECK (number ~ '^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$'),
    warehouse_id     bigint      NOT NULL,
    customer         text,
    carrier          text        NOT NULL CHECK (length(carrier) BETWEEN 1 AND 60),
    carrier_service  text,
    priority         smallint    NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 9),
    ship_by          timestamptz,
    ship_to          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'received' CHECK (status IN (
                         'received', 'allocated', 'partially_allocated', 'backordered',
                         'released', 'picking', 'picked', 'packed', 'shipped', 'cancelled')),
    -- SHA-256 of the creating request's canonical body: the same number with the same
    -- content is a no-op, with other content a conflict.
    content_hash     bytea       NOT NULL,
    line_count       integer     NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    allocated_at     timestamptz,
    shipped_at       timestamptz,
    cancelled_at     timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id)
);
-- Backorders are served oldest first by priority.
CREATE INDEX orders_waiting_idx ON orders (tenant_id, warehouse_id, priority, id)
    WHERE status IN ('backordered', 'partially_allocated');
CREATE INDEX orders_created_idx ON orders (tenant_id, warehouse_id, created_at);

CREATE TABLE order_lines (
    tenant_id            bigint  NOT NULL,
    order_id             bigint  NOT NULL,
    line_no              integer NOT NULL CHECK (line_no >= 1),
    product_id           bigint  NOT NULL,
    quantity             bigint  NOT NULL CHECK (quantity > 0),
    uom                  text,
    uom_quantity         bigint,
    lot_code             text    NOT NULL DEFAULT '',
    min_shelf_life_days  integer CHECK (min_shelf_life_days >= 0),
    allocated            bigint  NOT NULL DEFAULT 0 CHECK (allocated >= 0),
    picked               bigint  NOT NULL DEFAULT 0 CHECK (picked >= 0),
    shipped              bigint  NOT NULL DEFAULT 0 CHECK (shipped >= 0),
    cancelled            bigint  NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
    CONSTRAINT line_not_overfilled CHECK (allocated + cancelled <= quantity),
    PRIMARY KEY (tenant_id, order_id, line_no),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX order_lines_product_idx ON order_lines (tenant_id, product_id)
    WHERE allocated + cancelled < quantity;

-- Stock reserved for an order line at one balance. The balance's `allocated` equals
-- the sum of its allocations (checked by tests).
CREATE TABLE allocations (
    tenant_id     bigint      NOT NULL,
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    order_id      bigint      NOT NULL,
    line_no       integer     NOT NULL,
    balance_id    bigint      NOT NULL,
    quantity      bigint      NOT NULL CHECK (quantity > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, order_id, line_no, balance_id),
    FOREIGN KEY (tenant_id, order_id, line_no) REFERENCES order_lines (tenant_id, order_id, line_no),
    FOREIGN KEY (tenant_id, balance_id) REFERENCES inventory_balances (tenant_id, id)
);
CREATE INDEX allocations_balance_idx ON allocations (tenant_id, balance_id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['orders', 'order_lines', 'allocations']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) '
                       'WITH CHECK (tenant_id = current_tenant_id())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO wms_app', t);
        EXECUTE format('GRANT SELECT ON %I TO wms_admin', t);
    END LOOP;
END
$$;
GRANT DELETE ON allocations TO wms_app;
