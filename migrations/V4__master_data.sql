-- V4: tenant settings and master data: warehouses, carrier cut-offs, zones, locations,
-- putaway rules, products with units of measure and barcodes.

CREATE TABLE tenant_settings (
    tenant_id                  bigint       PRIMARY KEY REFERENCES tenants (id),
    allocation_strategy        text         NOT NULL DEFAULT 'fifo'
        CHECK (allocation_strategy IN ('fifo', 'fefo', 'lifo', 'pick_face_first', 'fewest_locations')),
    backorder_policy           text         NOT NULL DEFAULT 'backorder'
        CHECK (backorder_policy IN ('backorder', 'ship_complete', 'cancel_remainder')),
    allocate_on_create         boolean      NOT NULL DEFAULT false,
    over_receipt_tolerance_pct numeric(5,2) NOT NULL DEFAULT 0
        CHECK (over_receipt_tolerance_pct BETWEEN 0 AND 100),
    recount_tolerance_pct      numeric(5,2) NOT NULL DEFAULT 5
        CHECK (recount_tolerance_pct BETWEEN 0 AND 100),
    updated_at                 timestamptz  NOT NULL DEFAULT now()
);

CREATE TABLE warehouses (
    tenant_id   bigint      NOT NULL REFERENCES tenants (id),
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    code        text        NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone    text        NOT NULL,
    outbound_staging_location text NOT NULL,
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code)
);

CREATE TABLE carrier_cutoffs (
    tenant_id     bigint NOT NULL,
    warehouse_id  bigint NOT NULL,
    carrier       text   NOT NULL CHECK (length(carrier) BETWEEN 1 AND 60),
    cutoff_time   time   NOT NULL,
    PRIMARY KEY (tenant_id, warehouse_id, carrier),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE zones (
    tenant_id     bigint NOT NULL,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    warehouse_id  bigint NOT NULL,
    code          text   NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$'),
    name          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, warehouse_id, code),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id)
);

CREATE TABLE locations (
    tenant_id          bigint  NOT NULL,
    id                 bigint  GENERATED ALWAYS AS IDENTITY,
    warehouse_id       bigint  NOT NULL,
    zone_id            bigint,
    code               text    NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$'),
    type               text    NOT NULL
        CHECK (type IN ('dock', 'storage', 'pick', 'staging', 'shipping')),
    pick_sequence      integer NOT NULL DEFAULT 0 CHECK (pick_sequence >= 0),
    capacity_units     integer CHECK (capacity_units > 0),
    capacity_volume_l  numeric(12,3) CHECK (capacity_volume_l > 0),
    capacity_weight_kg numeric(12,3) CHECK (capacity_weight_kg > 0),
    active             boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, warehouse_id, code),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id),
    FOREIGN KEY (tenant_id, zone_id) REFERENCES zones (tenant_id, id)
);
CREATE INDEX locations_walk_idx ON locations (tenant_id, warehouse_id, pick_sequence, id);

CREATE TABLE products (
    tenant_id           bigint  NOT NULL REFERENCES tenants (id),
    id                  bigint  GENERATED ALWAYS AS IDENTITY,
    sku                 text    NOT NULL CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$'),
    description         text    NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    base_uom            text    NOT NULL DEFAULT 'EA' CHECK (base_uom ~ '^[A-Z0-9]{1,10}$'),
    lot_tracked         boolean NOT NULL DEFAULT false,
    expiry_tracked      boolean NOT NULL DEFAULT false,
    velocity_class      text    CHECK (velocity_class IN ('A', 'B', 'C')),
    category            text    CHECK (length(category) BETWEEN 1 AND 100),
    weight_kg           numeric(12,3) CHECK (weight_kg > 0),
    length_cm           numeric(12,2) CHECK (length_cm > 0),
    width_cm            numeric(12,2) CHECK (width_cm > 0),
    height_cm           numeric(12,2) CHECK (height_cm > 0),
    allocation_strategy text
        CHECK (allocation_strategy IN ('fifo', 'fefo', 'lifo', 'pick_face_first', 'fewest_locations')),
    over_receipt_tolerance_pct numeric(5,2) CHECK (over_receipt_tolerance_pct BETWEEN 0 AND 100),
    min_shelf_life_days integer CHECK (min_shelf_life_days >= 0),
    active              boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, sku)
);

CREATE TABLE product_uoms (
    tenant_id   bigint  NOT NULL,
    product_id  bigint  NOT NULL,
    code        text    NOT NULL CHECK (code ~ '^[A-Z0-9]{1,10}$'),
    factor      integer NOT NULL CHECK (factor >= 1),
    PRIMARY KEY (tenant_id, product_id, code),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id) ON DELETE CASCADE
);

-- One barcode names one product (and unit) per tenant, across products and units.
CREATE TABLE barcodes (
    tenant_id   bigint NOT NULL,
    barcode     text   NOT NULL CHECK (barcode ~ '^[A-Za-z0-9_.-]{1,64}$'),
    product_id  bigint NOT NULL,
    uom_code    text,
    PRIMARY KEY (tenant_id, barcode),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, product_id, uom_code)
        REFERENCES product_uoms (tenant_id, product_id, code) ON DELETE CASCADE
);
CREATE INDEX barcodes_product_idx ON barcodes (tenant_id, product_id);

CREATE TABLE putaway_rules (
    tenant_id        bigint  NOT NULL,
    warehouse_id     bigint  NOT NULL,
    position         integer NOT NULL CHECK (position >= 1),
    sku              text,
    category         text,
    velocity_class   text    CHECK (velocity_class IN ('A', 'B', 'C')),
    zone_id          bigint  NOT NULL,
    allow_mixed_lots boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, warehouse_id, position),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id),
    FOREIGN KEY (tenant_id, zone_id) REFERENCES zones (tenant_id, id)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_settings', 'warehouses', 'carrier_cutoffs', 'zones',
                             'locations', 'products', 'product_uoms', 'barcodes',
                             'putaway_rules']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) '
                       'WITH CHECK (tenant_id = current_tenant_id())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO wms_app', t);
        EXECUTE format('GRANT SELECT ON %I TO wms_admin', t);
    END LOOP;
END
$$;
