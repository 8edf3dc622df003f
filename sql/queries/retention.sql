-- Retention: `edm archive` moves finished campaigns' subtasks to subtasks_archive
-- (engine/store/retention.py). Short transactions only: the engine keeps sending meanwhile.

-- name: candidates
-- Finished (completed or cancelled) before $1 and not yet taken, plus campaigns a run that was
-- interrupted had taken but not emptied. Oldest first.
SELECT c.id, c.status, c.finished_at, c.total, c.archived_at FROM campaigns c
WHERE (c.archived_at IS NULL AND c.status IN ('completed', 'cancelled') AND c.finished_at < $1)
   OR (c.archived_at IS NOT NULL AND EXISTS (SELECT 1 FROM subtasks s WHERE s.campaign_id = c.id))
ORDER BY c.finished_at, c.id;

-- name: take
-- Marks the campaign as archived before any row moves, under its row lock: a retry (which
-- locks the campaign row first) either reopened it before this, or sees archived_at after it.
-- Nothing pending or sending may be left (a cancelled campaign's last sends settle first).
UPDATE campaigns c SET archived_at = $2
WHERE c.id = $1 AND c.archived_at IS NULL AND c.status IN ('completed', 'cancelled') AND c.finished_at < $3
  AND NOT EXISTS (SELECT 1 FROM subtasks s WHERE s.campaign_id = c.id AND s.status = 'sending'
                                              AND s.from_address IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM subtasks s WHERE s.campaign_id = c.id AND s.status = 'pending')
RETURNING c.id;

-- name: move_batch
-- The next $3 rows of the campaign after seq $2, walking subtasks_campaign_id_seq_key, moved in
-- one statement: a row is in exactly one of the two tables at any instant, so an interrupted
-- run loses nothing and the next run carries on. Returns how many moved and the last seq.
WITH upto AS (
    SELECT max(seq) AS hi FROM (
        SELECT seq FROM subtasks WHERE campaign_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
    ) b
), moved AS (
    DELETE FROM subtasks s USING upto
    WHERE s.campaign_id = $1 AND s.seq > $2 AND s.seq <= upto.hi
    RETURNING s.*
), kept AS (
    INSERT INTO subtasks_archive SELECT * FROM moved
    RETURNING seq
)
SELECT count(*)::int AS n, max(seq) AS last FROM kept;

-- name: archived_at
-- Retry asks under the campaign's row lock: an archived campaign's recipients are not re-queued.
SELECT archived_at FROM campaigns WHERE id = $1;
