-- V12: locations by code alone.
--
-- A location's code is unique within its warehouse, (tenant_id, warehouse_id, code). A
-- filter on the code without the warehouse (GET /inventory?location=, the ledger's
-- ?location=) can use that index only by skip scan, which PostgreSQL has from 18 on; on
-- 15 to 17 it read every location of the tenant (found by the query-plan test on
-- PostgreSQL 15). Locations are a small table written rarely: a plain CREATE INDEX.
CREATE INDEX locations_code_idx ON locations (tenant_id, code);
