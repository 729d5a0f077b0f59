-- V16: the relay publishes in commit order, not in transaction-id order.
--
-- A transaction takes its id at its first write or row lock, not when it commits. One
-- that took its id, then waited for an aggregate another transaction held, commits
-- after it with the smaller id: read in (xid, id) order, its event reached Kafka before
-- the event of the change that happened first (DESIGN §6.4 orders by xid; this is the
-- one place we depart from it, for Kafka only: the HTTP feed keeps (xid, id)). And
-- reading only below the snapshot's xmin held every event back while any write
-- transaction of the cluster ran, a 5,000-line receipt or an archive for seconds.
--
-- Each transaction that writes events gets one number at commit, from a deferred
-- trigger: it runs while the transaction still holds every lock it took, so of two
-- transactions that waited for each other (a row, an advisory lock, a unique key), the
-- later one draws the larger number, and is visible only after the earlier one is.
-- The relay takes committed rows in (seq, id) order; events of transactions that did
-- not wait for each other may come in either order, as they may have happened (two
-- moves of one SKU at two locations lock two balances: their inventory events, deltas,
-- under one key, come in either order).
CREATE SEQUENCE outbox_commit_seq;

CREATE TABLE outbox_commits (
    tenant_id  bigint NOT NULL REFERENCES tenants (id),
    xid        xid8   NOT NULL,
    seq        bigint NOT NULL DEFAULT nextval('outbox_commit_seq'),
    PRIMARY KEY (tenant_id, xid)
);
-- The relay walks pending commits in order; a commit row goes once all its events are
-- published (the relay, then an hourly sweep of the worker), or pruned.
CREATE UNIQUE INDEX outbox_commits_seq_idx ON outbox_commits (seq);
ALTER TABLE outbox_commits ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox_commits
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
GRANT SELECT, INSERT ON outbox_commits TO wms_app;
GRANT USAGE ON SEQUENCE outbox_commit_seq TO wms_app;
GRANT SELECT, DELETE ON outbox_commits TO wms_admin;

-- Fires at commit for every event row; the setting makes all but the first of a
-- transaction's rows (per tenant and xid) return at once. The conflict target is the
-- key alone: a clash on seq (a sequence set back) must fail the commit, not drop the
-- row and leave its events unpublished for good. The table is named with its schema:
-- the trigger runs under the search_path of whoever wrote the event.
CREATE FUNCTION outbox_commit_order() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF current_setting('wms.outbox_committing', true)
           IS DISTINCT FROM NEW.tenant_id::text || '/' || NEW.xid::text
        THEN
            INSERT INTO wms.outbox_commits (tenant_id, xid) VALUES (NEW.tenant_id, NEW.xid)
                ON CONFLICT (tenant_id, xid) DO NOTHING;
            PERFORM set_config('wms.outbox_committing',
                               NEW.tenant_id::text || '/' || NEW.xid::text, true);
        END IF;
        RETURN NULL;
    END
    $$;
CREATE CONSTRAINT TRIGGER outbox_commit_order AFTER INSERT ON outbox
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION outbox_commit_order();

-- Events waiting when this runs (inserts wait for the trigger's lock above, so every
-- earlier writer has committed): numbered in the old order. Row-level security binds
-- the owner too (FORCE): lifted for this statement, inside this transaction only; the
-- exclusive lock that takes holds the feed's readers too until the migration commits
-- (without a relay every retained event is unpublished: about a second per 100,000).
ALTER TABLE outbox NO FORCE ROW LEVEL SECURITY;
INSERT INTO outbox_commits (tenant_id, xid)
SELECT tenant_id, xid FROM outbox WHERE published_at IS NULL
GROUP BY tenant_id, xid ORDER BY xid, min(id);
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
ALTER TABLE outbox_commits FORCE ROW LEVEL SECURITY;
