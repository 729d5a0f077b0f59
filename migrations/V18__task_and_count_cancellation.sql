-- V18: a supervisor can cancel what otherwise stays open for good; shipments too.
--
-- A replenishment task does not reserve its source: once that stock is allocated, moved
-- or adjusted away, every confirmation answers 409, and the unique open task per face
-- kept any new task (from other reserve) out, so the face was never replenished again.
-- A cycle count whose shortfall falls on allocated stock cannot be approved (approval
-- never takes allocated units), and its keys stayed out of every other count. Both
-- tables allowed status 'cancelled' since V5/V8 but nothing set it; these columns say
-- who cancelled, when, and why.
ALTER TABLE replenishment_tasks
    ADD COLUMN cancelled_by text,
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN cancel_reason text CHECK (length(cancel_reason) <= 200);
ALTER TABLE cycle_counts
    ADD COLUMN cancelled_by text,
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN cancel_reason text CHECK (length(cancel_reason) <= 200);

-- A shipment whose orders were all cancelled stayed `created` for good (dispatch: "no
-- order left") and kept its tracking number, which the carrier's next label may reuse.
-- A cancelled shipment lets its orders go (still packed) and frees its tracking number:
-- unique among the shipments not cancelled.
ALTER TABLE shipments
    DROP CONSTRAINT shipments_status_check,
    ADD CONSTRAINT shipments_status_check
        CHECK (status IN ('created', 'dispatched', 'cancelled')),
    DROP CONSTRAINT shipments_tenant_id_carrier_tracking_number_key,
    ADD COLUMN cancelled_by text,
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN cancel_reason text CHECK (length(cancel_reason) <= 200);
CREATE UNIQUE INDEX shipments_tracking_number_idx
    ON shipments (tenant_id, carrier, tracking_number) WHERE status <> 'cancelled';
