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
