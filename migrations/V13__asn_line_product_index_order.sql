-- V13: the ASN-line uniqueness (one line per product and lot in an ASN) keyed product first.
--
-- Keyed (tenant_id, asn_id, product_id, lot_code), its index competed with the primary
-- key (tenant_id, asn_id, line_no) for the foreign-key check of every receipt line
-- (receipt_lines -> asn_lines). While asn_lines has no column statistics (a new
-- database, until autovacuum first analyses it with rows in it) both indexes are
-- estimated at one row, and PostgreSQL took this one: each check then read every line
-- of the ASN, so receiving a 5,000-line ASN spent 1.7-2.6 s in that check alone (69 ms
-- through the primary key; bench/FINDINGS.md). Product first, the index no longer
-- matches an (asn, line) lookup beyond the tenant, and it serves "which ASNs bring this
-- product" instead. The same rows stay unique. Building it locks asn_lines briefly.
ALTER TABLE asn_lines DROP CONSTRAINT asn_lines_tenant_id_asn_id_product_id_lot_code_key;
ALTER TABLE asn_lines
    ADD CONSTRAINT asn_lines_product_lot_key UNIQUE (tenant_id, product_id, lot_code, asn_id);
