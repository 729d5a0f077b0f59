-- V8: fulfilment. Waves of allocated orders, pick tasks in walking order, packages,
-- shipments, replenishment levels of pick faces and the tasks that move stock between
-- locations (replenishment, and put-back of cancelled picks).

CREATE TABLE waves (
    tenant_id     bigint      NOT NULL,
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    warehouse_id  bigint      NOT NULL,
    pick_method   text        NOT NULL CHECK (pick_method IN ('discrete', 'batch', 'cluster')),
    status        text        NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'released', 'completed', 'cancelled')),
    criteria      jsonb,
    task_count    integer     NOT NULL DEFAULT 0,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    released_by   text,
    released_at   timestamptz,
    completed_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id)
);
CREATE INDEX waves_warehouse_idx ON waves (tenant_id, warehouse_id, id);

-- `active` is true while the wave is open or released; the partial unique index is the
-- database's guarantee that an order is in at most one open wave.
CREATE TABLE wave_orders (
    tenant_id  bigint  NOT NULL,
    wave_id    bigint  NOT NULL,
    order_id   bigint  NOT NULL,
    position   integer NOT NULL,
    tote       text,
    active     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, wave_id, order_id),
    FOREIGN KEY (tenant_id, wave_id) REFERENCES waves (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id)
);
CREATE UNIQUE INDEX wave_orders_one_open_wave ON wave_orders (tenant_id, order_id) WHERE active;

-- One stop of a picker: take `quantity` of a product and lot from a location. `sequence`
-- is the walking order within the wave (location pick_sequence, then code).
CREATE TABLE pick_tasks (
    tenant_id          bigint      NOT NULL,
    id                 bigint      GENERATED ALWAYS AS IDENTITY,
    wave_id            bigint      NOT NULL,
    warehouse_id       bigint      NOT NULL,
    location_id        bigint      NOT NULL,
    product_id         bigint      NOT NULL,
    lot_code           text        NOT NULL DEFAULT '',
    quantity           bigint      NOT NULL CHECK (quantity >= 0),
    sequence           integer     NOT NULL CHECK (sequence >= 1),
    status             text        NOT NULL DEFAULT 'open'
                       CHECK (status IN ('open', 'confirmed', 'short', 'cancelled')),
    picked_quantity    bigint      CHECK (picked_quantity >= 0),
    picker             text,
    picked_at          timestamptz,
    replaces_task_id   bigint,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT picked_within_task CHECK (picked_quantity <= quantity),
    CONSTRAINT done_has_picker CHECK (
        (status IN ('confirmed', 'short')) = (picked_at IS NOT NULL AND picker IS NOT NULL)
    ),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, wave_id) REFERENCES waves (tenant_id, id),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
    FOREIGN KEY (tenant_id, replaces_task_id) REFERENCES pick_tasks (tenant_id, id)
);
CREATE INDEX pick_tasks_wave_idx ON pick_tasks (tenant_id, wave_id, sequence, id);
CREATE INDEX pick_tasks_walk_idx ON pick_tasks (tenant_id, sequence, id);
CREATE INDEX pick_tasks_open_idx ON pick_tasks (tenant_id, warehouse_id, id) WHERE status = 'open';
-- Picks per picker and hour (KPIs).
CREATE INDEX pick_tasks_picked_idx ON pick_tasks (tenant_id, warehouse_id, picked_at)
    WHERE picked_at IS NOT NULL;

-- Which order lines a task serves, how much of each, into which tote (cluster picking).
CREATE TABLE pick_task_orders (
    tenant_id  bigint  NOT NULL,
    task_id    bigint  NOT NULL,
    order_id   bigint  NOT NULL,
    line_no    integer NOT NULL,
    quantity   bigint  NOT NULL CHECK (quantity >= 0),
    picked     bigint  CHECK (picked >= 0 AND picked <= quantity),
    tote       text,
    PRIMARY KEY (tenant_id, task_id, order_id, line_no),
    FOREIGN KEY (tenant_id, task_id) REFERENCES pick_tasks (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id, line_no) REFERENCES order_lines (tenant_id, order_id, line_no)
);
CREATE INDEX pick_task_orders_order_idx ON pick_task_orders (tenant_id, order_id);

CREATE TABLE packages (
    tenant_id   bigint        NOT NULL,
    id          bigint        GENERATED ALWAYS AS IDENTITY,
    order_id    bigint        NOT NULL,
    carton      text          NOT NULL CHECK (length(carton) BETWEEN 1 AND 40),
    weight_kg   numeric(10,3) NOT NULL CHECK (weight_kg > 0),
    packed_by   text          NOT NULL,
    packed_at   timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id)
);
CREATE INDEX packages_order_idx ON packages (tenant_id, order_id, id);

CREATE TABLE package_contents (
    tenant_id   bigint NOT NULL,
    package_id  bigint NOT NULL,
    product_id  bigint NOT NULL,
    lot_code    text   NOT NULL DEFAULT '',
    quantity    bigint NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (tenant_id, package_id, product_id, lot_code),
    FOREIGN KEY (tenant_id, package_id) REFERENCES packages (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);

CREATE TABLE shipments (
    tenant_id        bigint      NOT NULL,
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    warehouse_id     bigint      NOT NULL,
    carrier          text        NOT NULL CHECK (length(carrier) BETWEEN 1 AND 60),
    tracking_number  text        NOT NULL CHECK (length(tracking_number) BETWEEN 1 AND 100),
    status           text        NOT NULL DEFAULT 'created'
                     CHECK (status IN ('created', 'dispatched')),
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    dispatched_by    text,
    dispatched_at    timestamptz,
    CONSTRAINT dispatched_has_time CHECK ((status = 'dispatched') = (dispatched_at IS NOT NULL)),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, carrier, tracking_number),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id)
);
-- Manifests: dispatched shipments of one warehouse and carrier in a time range.
CREATE INDEX shipments_manifest_idx ON shipments (tenant_id, warehouse_id, carrier, dispatched_at)
    WHERE status = 'dispatched';

-- An order travels in one shipment.
CREATE TABLE shipment_orders (
    tenant_id    bigint NOT NULL,
    shipment_id  bigint NOT NULL,
    order_id     bigint NOT NULL,
    PRIMARY KEY (tenant_id, shipment_id, order_id),
    UNIQUE (tenant_id, order_id),
    FOREIGN KEY (tenant_id, shipment_id) REFERENCES shipments (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id)
);

-- Min/max of a product at a pick face.
CREATE TABLE replenishment_levels (
    tenant_id     bigint      NOT NULL,
    location_id   bigint      NOT NULL,
    product_id    bigint      NOT NULL,
    warehouse_id  bigint      NOT NULL,
    min_quantity  bigint      NOT NULL CHECK (min_quantity >= 0),
    max_quantity  bigint      NOT NULL CHECK (max_quantity > 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT min_within_max CHECK (min_quantity <= max_quantity),
    PRIMARY KEY (tenant_id, location_id, product_id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id)
);
CREATE INDEX replenishment_levels_product_idx
    ON replenishment_levels (tenant_id, warehouse_id, product_id);

-- Stock to move between two locations: reserve → pick face (kind replenishment), or
-- staging → storage when a picked order is cancelled (kind put_back).
CREATE TABLE replenishment_tasks (
    tenant_id           bigint      NOT NULL,
    id                  bigint      GENERATED ALWAYS AS IDENTITY,
    warehouse_id        bigint      NOT NULL,
    kind                text        NOT NULL DEFAULT 'replenishment'
                        CHECK (kind IN ('replenishment', 'put_back')),
    product_id          bigint      NOT NULL,
    lot_code            text        NOT NULL DEFAULT '',
    quantity            bigint      NOT NULL CHECK (quantity > 0),
    from_location_id    bigint      NOT NULL,
    to_location_id      bigint      NOT NULL,
    order_id            bigint,
    reason              text        NOT NULL,
    status              text        NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'confirmed', 'cancelled')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    confirmed_by        text,
    confirmed_at        timestamptz,
    confirmed_quantity  bigint      CHECK (confirmed_quantity > 0),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
    FOREIGN KEY (tenant_id, from_location_id) REFERENCES locations (tenant_id, id),
    FOREIGN KEY (tenant_id, to_location_id) REFERENCES locations (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id)
);
-- One open replenishment per pick face and product.
CREATE UNIQUE INDEX replenishment_tasks_one_open
    ON replenishment_tasks (tenant_id, to_location_id, product_id)
    WHERE status = 'open' AND kind = 'replenishment';
CREATE INDEX replenishment_tasks_status_idx ON replenishment_tasks (tenant_id, status, id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['waves', 'wave_orders', 'pick_tasks', 'pick_task_orders',
                             'packages', 'package_contents', 'shipments', 'shipment_orders',
                             'replenishment_levels', 'replenishment_tasks']
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
-- A cancelled order leaves the shipment it was in before dispatch.
GRANT DELETE ON shipment_orders TO wms_app;
