-- V15: a putaway task can be cancelled or reduced (POST /putaway-tasks/{id}/cancel), and
-- the dock stock an open task still owes can no longer be taken by anything else.
--
-- Before, dock stock owed to a task could be moved, adjusted or changed in status: the
-- task then could not be confirmed and kept its destination's room promised. Refusing
-- those takes without a way out would trap stock found short at the dock, hence both.
ALTER TABLE putaway_tasks
    DROP CONSTRAINT putaway_tasks_status_check,
    DROP CONSTRAINT confirmed_has_destination,
    ADD COLUMN cancelled_quantity bigint NOT NULL DEFAULT 0 CHECK (cancelled_quantity >= 0),
    ADD COLUMN cancelled_by       text,
    ADD COLUMN cancelled_at       timestamptz,
    ADD CONSTRAINT putaway_tasks_status_check
        CHECK (status IN ('open', 'confirmed', 'cancelled')),
    -- quantity: the units still to put away (open), put away (confirmed), or the last
    -- open units (cancelled); cancelled_quantity: every unit cancelled off the task.
    ADD CONSTRAINT confirmed_has_destination CHECK (
        (status = 'confirmed') = (confirmed_at IS NOT NULL)
        AND (status = 'confirmed') = (confirmed_location_id IS NOT NULL)
    ),
    ADD CONSTRAINT cancelled_has_time CHECK (
        (status = 'cancelled') = (cancelled_at IS NOT NULL)
        AND (cancelled_at IS NULL) = (cancelled_by IS NULL)
    );

-- What a take from a balance must leave there: open tasks' units by their source key.
CREATE INDEX putaway_tasks_open_source_idx
    ON putaway_tasks (tenant_id, from_location_id, product_id, lot_code) WHERE status = 'open';
