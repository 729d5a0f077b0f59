-- V18: a supervisor can cancel what otherwise stays open for good.
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
