-- V15: a putaway task can be cancelled or reduced (POST /putaway-tasks/{id}/cancel), and
-- the dock stock an open task still owes can no longer be taken by anything else.
--
-- Before, dock stock owed to a task could be moved, adjusted or changed in status: the
-- task then could not be confirmed and kept its destination's room promised. Refusing
-- those takes without a way out would trap stock found short at the dock, hence both.
--
-- The constraints are added NOT VALID: every existing row is 'open' or 'confirmed' and
-- satisfied the V6 constraint these replace, so checking them again would only scan the
-- whole task history under this statement's exclusive lock. New and updated rows are
-- checked. The units owed are found through putaway_tasks_open_product_idx (V6).
ALTER TABLE putaway_tasks
    DROP CONSTRAINT putaway_tasks_status_check,
    DROP CONSTRAINT confirmed_has_destination,
    ADD COLUMN cancelled_quantity bigint NOT NULL DEFAULT 0,
    ADD COLUMN cancelled_by       text,
    ADD COLUMN cancelled_at       timestamptz,
    ADD CONSTRAINT putaway_tasks_cancelled_quantity_check
        CHECK (cancelled_quantity >= 0) NOT VALID,
    ADD CONSTRAINT putaway_tasks_status_check
        CHECK (status IN ('open', 'confirmed', 'cancelled')) NOT VALID,
    -- quantity: the units still to put away (open), put away (confirmed), or the last
    -- open units (cancelled); cancelled_quantity: every unit cancelled off the task.
    ADD CONSTRAINT confirmed_has_destination CHECK (
        (status = 'confirmed') = (confirmed_at IS NOT NULL)
        AND (status = 'confirmed') = (confirmed_location_id IS NOT NULL)
    ) NOT VALID,
    ADD CONSTRAINT cancelled_has_time CHECK (
        (status = 'cancelled') = (cancelled_at IS NOT NULL)
        AND (cancelled_at IS NULL) = (cancelled_by IS NULL)
    ) NOT VALID;
