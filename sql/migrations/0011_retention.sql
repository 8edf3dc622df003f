-- Retention (`edm archive`, engine/store/retention.py): the subtasks of finished campaigns older
-- than N days leave the hot table for `subtasks_archive`, so everything the dispatch path touches
-- (claim, bind, settle, recovery, the overview) stays the size of the recent work.
--
-- An archive table, not declarative partitions: every hot statement finds a subtask by its id
-- alone (bind, settle, webhooks, recipient links), and a partitioned table cannot keep `id`
-- unique nor prune a lookup by id (README "Beyond one machine" has the measurements).
--
-- Same columns in the same order as `subtasks` (rows move with INSERT … SELECT *): a migration
-- that adds a column to `subtasks` adds it here too (test_retention checks the two agree).
CREATE TABLE subtasks_archive (LIKE subtasks INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
-- Recipient links and webhooks of old messages still find their subtask by id.
ALTER TABLE subtasks_archive ADD CONSTRAINT subtasks_archive_pkey PRIMARY KEY (id);
-- A campaign's rows in order (its subtask list, its counts).
ALTER TABLE subtasks_archive ADD CONSTRAINT subtasks_archive_campaign_id_seq_key UNIQUE (campaign_id, seq);

-- When `edm archive` took the campaign (set before its first row moves): a retry is refused from
-- then on, and a run that was interrupted finishes the campaign next time.
ALTER TABLE campaigns ADD COLUMN archived_at timestamptz;
CREATE INDEX campaigns_archivable ON campaigns (finished_at)
    WHERE archived_at IS NULL AND status IN ('completed', 'cancelled');

-- Every subtask, hot or archived: what the API reads for history (progress, subtask list,
-- daily history, funnel counts, recipient links). The engine's statements name `subtasks`.
CREATE VIEW subtasks_all AS
    SELECT * FROM subtasks
    UNION ALL
    SELECT * FROM subtasks_archive;

-- Flat as the table grows (bench/large_table.py: 20M settled rows beside an empty table).
--
-- The in-flight index carries a predicate no by-id statement implies. With `WHERE status =
-- 'sending'` alone, bind's and settle's `s.id = … AND s.status = 'sending'` could use it, and on
-- a large table whose statistics say no row is sending (autoanalyze waits for 10 % of the rows
-- to change: 2M on a 20M-row table) the planner did: a nested loop scanning every in-flight row
-- per result, 56 s per 2,000-row settle once 84k were in flight, and dispatch stopped. Now they
-- can only probe the primary key. Every `sending` row has a from-address (the bind and a test
-- send write both; a requeue clears both) and no by-id statement filters on it, so the
-- completion check and start-up recovery, which name both conditions, are the ones that use it.
DROP INDEX subtasks_sending;
CREATE INDEX subtasks_in_flight ON subtasks (campaign_id) WHERE status = 'sending' AND from_address IS NOT NULL;
-- The index's predicate relies on it; NOT VALID: checked for every row written from now on (the
-- only ones that can be `sending`) without reading the table at migration time.
ALTER TABLE subtasks ADD CONSTRAINT subtasks_sending_from CHECK (status <> 'sending' OR from_address IS NOT NULL) NOT VALID;

-- Vacuum and analyse subtasks by rows changed, not by a share of the table: the default 20 % /
-- 10 % mean 4M dead rows (and 2M changes before fresh statistics) on a 20M-row table, and every
-- bind and settle leaves one dead row. Vacuum reads only the pages not all-visible (the recent
-- ones), so its cost follows the recent work, not the table.
ALTER TABLE subtasks SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 100000,
                          autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 100000,
                          autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000000);
