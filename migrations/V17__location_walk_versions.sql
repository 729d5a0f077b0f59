-- V17: a walk of a warehouse's locations lists each location exactly once, even while
-- locations are re-sequenced.
--
-- `GET /warehouses/{wh}/locations` pages in walking order (pick_sequence, id). The key is
-- mutable: a location moved (PATCH or import) from behind a reader's cursor to ahead of
-- it was listed twice, one moved the other way was skipped (API.md: a row that exists
-- throughout appears exactly once). Now each re-sequencing is numbered per warehouse, its
-- previous sequence kept, and a walk pages in the order of the moment its first page
-- was read: a location re-sequenced since is placed by the sequence it had then.
--
-- The number lives on the warehouse row and is raised once by each transaction that
-- re-sequences: the row's lock makes re-sequencing transactions of one warehouse commit
-- in number order, so a reader's snapshot that sees number N sees every change up to N
-- and none after. Locking order: locations (the statement's rows), then the warehouse;
-- nothing locks a warehouse and then its locations.
--
-- The worker prunes changes older than a week (store.locations.WALK_HISTORY_HOURS) and
-- notes the newest number pruned: a walk begun before it answers 410 cursor-expired,
-- as an event-feed cursor past the retention does.
ALTER TABLE warehouses
    ADD COLUMN location_walk_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN location_walk_pruned_version bigint NOT NULL DEFAULT 0;

CREATE TABLE location_resequencing (
    tenant_id          bigint      NOT NULL,
    warehouse_id       bigint      NOT NULL,
    walk_version       bigint      NOT NULL,
    location_id        bigint      NOT NULL,
    previous_sequence  integer     NOT NULL,
    changed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, warehouse_id, walk_version, location_id),
    FOREIGN KEY (tenant_id, warehouse_id) REFERENCES warehouses (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id)
);
ALTER TABLE location_resequencing ENABLE ROW LEVEL SECURITY;
ALTER TABLE location_resequencing FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON location_resequencing
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
GRANT SELECT, INSERT ON location_resequencing TO wms_app;
GRANT SELECT, DELETE ON location_resequencing TO wms_admin;
GRANT UPDATE (location_walk_pruned_version) ON warehouses TO wms_admin;
-- The prune finds old changes by age.
CREATE INDEX location_resequencing_changed_idx ON location_resequencing (changed_at);

-- Per row, only for rows whose sequence changed: the WHEN clause is checked without
-- calling the function, so an import that re-sequences nothing pays nothing. A
-- re-sequenced row costs about 80 µs (a third of it the two foreign-key checks): 0.8 s
-- for an import moving 10,000 locations, measured on PostgreSQL 15. The number is raised
-- once per transaction and warehouse, remembered in a transaction-local setting (rolled
-- back with a savepoint, as the raise is); a location moved twice in one transaction
-- keeps the sequence it had before it (ON CONFLICT DO NOTHING), the one a walk that
-- began earlier placed it by. Tables are named with their schema: the trigger runs under
-- the search_path of whoever updated.
CREATE FUNCTION record_location_resequencing() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        setting text := 'wms.walk_version_' || NEW.tenant_id || '_' || NEW.warehouse_id;
        version bigint := nullif(current_setting(setting, true), '')::bigint;
    BEGIN
        IF version IS NULL THEN
            UPDATE wms.warehouses SET location_walk_version = location_walk_version + 1
                WHERE tenant_id = NEW.tenant_id AND id = NEW.warehouse_id
                RETURNING location_walk_version INTO version;
            PERFORM set_config(setting, version::text, true);
        END IF;
        INSERT INTO wms.location_resequencing
            (tenant_id, warehouse_id, walk_version, location_id, previous_sequence)
            VALUES (NEW.tenant_id, NEW.warehouse_id, version, NEW.id, OLD.pick_sequence)
            ON CONFLICT (tenant_id, warehouse_id, walk_version, location_id) DO NOTHING;
        RETURN NULL;
    END
    $$;
CREATE TRIGGER record_location_resequencing AFTER UPDATE OF pick_sequence ON locations
    FOR EACH ROW WHEN (OLD.pick_sequence IS DISTINCT FROM NEW.pick_sequence)
    EXECUTE FUNCTION record_location_resequencing();
