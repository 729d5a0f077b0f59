-- V14: an event the producer refuses for good (larger than its message.max.bytes) is
-- parked instead of being sent again at every batch: before, such a row stopped the
-- relay at every restart and every event behind it waited. A parked row stays in the
-- outbox (the feed still serves it; retention keeps it while a relay runs) until an
-- operator requeues it (`wms-server events requeue`). The relay's scan keeps its index
-- (outbox_unpublished_idx): parked rows are few and filtered out on the way.
ALTER TABLE outbox
    ADD COLUMN parked_at     timestamptz,
    ADD COLUMN parked_reason text,
    -- NOT VALID: every existing row has both columns NULL; skipping the check spares a
    -- scan of the whole outbox under this statement's exclusive lock. New rows are checked.
    ADD CONSTRAINT outbox_parked_has_reason
        CHECK ((parked_at IS NULL) = (parked_reason IS NULL)) NOT VALID;
