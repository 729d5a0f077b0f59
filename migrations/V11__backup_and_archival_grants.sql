-- V11: what backup and archival need of wms_admin, the BYPASSRLS role of DESIGN §4.
--
-- `wms-server backup` runs pg_dump as wms_admin when its login is neither superuser nor
-- BYPASSRLS (a managed database), and pg_dump reads every table and sequence: so
-- wms_admin may read all of them, including the ledger partitions created later by
-- ensure_movement_partitions (as wms_owner, hence the default privileges).
GRANT SELECT ON ALL TABLES IN SCHEMA wms TO wms_admin;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA wms TO wms_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE wms_owner IN SCHEMA wms GRANT SELECT ON TABLES TO wms_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE wms_owner IN SCHEMA wms GRANT SELECT ON SEQUENCES TO wms_admin;

-- `wms-server archive` folds an archived month into the opening snapshot of each
-- balance key (opening + archived movements), an upsert.
GRANT UPDATE ON inventory_openings TO wms_admin;
