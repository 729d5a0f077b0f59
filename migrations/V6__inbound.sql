-- V6: inbound. ASNs with their expected lines, receipts (what was scanned at the dock),
-- and putaway tasks from the dock to storage, with dock-to-stock time.

CREATE TABLE asns (
    tenant_id     bigint      NOT NULL REFERENCES tenants (id),
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    reference     text        NOT NULL CHECK (length(reference) BETWEEN 1 AND 100),
    warehouse_id  bigint      NOT NULL,
    supplier      text        NOT NULL CHECK (length(supplier) BETWEEN 1 AND 200),
    expected_at   timestamptz,
    status        text        NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'receiving', 'closed')),
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    closed_by     text,
    closed_at     timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, reference),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id)
);
CREATE INDEX asns_status_idx ON asns (tenant_id, status, id);

-- Expected quantities are in base units; lot_code '' means "any lot" (or not tracked).
CREATE TABLE asn_lines (
    tenant_id   bigint  NOT NULL,
    asn_id      bigint  NOT NULL,
    line_no     integer NOT NULL CHECK (line_no >= 1),
    product_id  bigint  NOT NULL,
    lot_code    text    NOT NULL DEFAULT '',
    expiry      date,
    expected    bigint  NOT NULL CHECK (expected > 0),
    PRIMARY KEY (tenant_id, asn_id, line_no),
    UNIQUE (tenant_id, asn_id, product_id, lot_code),
    FOREIGN KEY (tenant_id, asn_id) REFERENCES asns (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);

CREATE TABLE receipts (
    tenant_id    bigint      NOT NULL,
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    asn_id       bigint      NOT NULL,
    received_by  text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    request_id   text,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, asn_id) REFERENCES asns (tenant_id, id)
);
CREATE INDEX receipts_asn_idx ON receipts (tenant_id, asn_id);

-- One scan: quantity in base units plus the unit and quantity as scanned; asn_line_no
-- is NULL for a product received although the ASN did not announce it.
CREATE TABLE receipt_lines (
    tenant_id     bigint      NOT NULL,
    receipt_id    bigint      NOT NULL,
    line_no       integer     NOT NULL CHECK (line_no >= 1),
    asn_id        bigint      NOT NULL,
    asn_line_no   integer,
    product_id    bigint      NOT NULL,
    lot_code      text        NOT NULL DEFAULT '',
    expiry        date,
    quantity      bigint      NOT NULL CHECK (quantity > 0),
    uom           text,
    uom_quantity  bigint      NOT NULL CHECK (uom_quantity > 0),
    scanned       text        NOT NULL,
    condition     text        NOT NULL CHECK (condition IN ('good', 'damaged')),
    location_id   bigint      NOT NULL,
    received_by   text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, receipt_id, line_no),
    FOREIGN KEY (tenant_id, receipt_id) REFERENCES receipts (tenant_id, id),
    FOREIGN KEY (tenant_id, asn_id) REFERENCES asns (tenant_id, id),
    FOREIGN KEY (tenant_id, asn_id, asn_line_no) REFERENCES asn_lines (tenant_id, asn_id, line_no),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id)
);
CREATE INDEX receipt_lines_asn_idx ON receipt_lines (tenant_id, asn_id, asn_line_no);

-- One task per receipt line of good stock. suggested_location_id is NULL when no
-- location had room; the confirmation then names one.
CREATE TABLE putaway_tasks (
    tenant_id              bigint      NOT NULL,
    id                     bigint      GENERATED ALWAYS AS IDENTITY,
    warehouse_id           bigint      NOT NULL,
    asn_id                 bigint      NOT NULL,
    receipt_id             bigint      NOT NULL,
    receipt_line_no        integer     NOT NULL,
    product_id             bigint      NOT NULL,
    lot_code               text        NOT NULL DEFAULT '',
    quantity               bigint      NOT NULL CHECK (quantity > 0),
    from_location_id       bigint      NOT NULL,
    suggested_location_id  bigint,
    confirmed_location_id  bigint,
    status                 text        NOT NULL DEFAULT 'open'
                           CHECK (status IN ('open', 'confirmed')),
    received_at            timestamptz NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    confirmed_by           text,
    confirmed_at           timestamptz,
    dock_to_stock_seconds  numeric(12,3),
    CONSTRAINT confirmed_has_destination CHECK (
        (status = 'open') = (confirmed_at IS NULL)
        AND (status = 'open') = (confirmed_location_id IS NULL)
    ),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, receipt_id, receipt_line_no),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id),
    FOREIGN KEY (tenant_id, asn_id) REFERENCES asns (tenant_id, id),
    FOREIGN KEY (tenant_id, receipt_id, receipt_line_no)
        REFERENCES receipt_lines (tenant_id, receipt_id, line_no),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
    FOREIGN KEY (tenant_id, from_location_id) REFERENCES locations (tenant_id, id),
    FOREIGN KEY (tenant_id, suggested_location_id) REFERENCES locations (tenant_id, id),
    FOREIGN KEY (tenant_id, confirmed_location_id) REFERENCES locations (tenant_id, id)
);
-- Units promised to a location by open tasks (summed on every suggestion and confirm).
CREATE INDEX putaway_tasks_open_suggested_idx
    ON putaway_tasks (tenant_id, suggested_location_id) WHERE status = 'open';
CREATE INDEX putaway_tasks_open_product_idx
    ON putaway_tasks (tenant_id, warehouse_id, product_id) WHERE status = 'open';
CREATE INDEX putaway_tasks_asn_idx ON putaway_tasks (tenant_id, asn_id, id);
CREATE INDEX putaway_tasks_status_idx ON putaway_tasks (tenant_id, status, id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['asns', 'asn_lines', 'receipts', 'receipt_lines', 'putaway_tasks']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) '
                       'WITH CHECK (tenant_id = current_tenant_id())', t);
        EXECUTE format('GRANT SELECT ON %I TO wms_admin', t);
    END LOOP;
END
$$;

-- Receipts are a record of what happened: never updated or deleted by the runtime role.
GRANT SELECT, INSERT ON asn_lines, receipts, receipt_lines TO wms_app;
GRANT SELECT, INSERT, UPDATE ON asns, putaway_tasks TO wms_app;
