-- The suppression list: addresses never mailed again (per user, or admin-wide with user_id NULL).

-- name: add
-- Idempotent: an address already suppressed keeps its first reason; returns a row only when new.
INSERT INTO suppressions (user_id, email, reason, source, campaign_id, created_by, created_at)
VALUES ($1, lower($2), $3, $4, $5, $6, $7)
ON CONFLICT (user_id, email) DO NOTHING
RETURNING id;

-- name: add_many
-- CSV import: many addresses at once, existing ones left as they are; returns the new ones.
INSERT INTO suppressions (user_id, email, reason, source, created_by, created_at)
SELECT $1, e, 'import', $3, $4, $5 FROM unnest($2::text[]) AS e
ON CONFLICT (user_id, email) DO NOTHING
RETURNING email;

-- name: log_many
INSERT INTO suppression_log (user_id, email, action, reason, operator_id, created_at)
SELECT $1, e, $3, $4, $5, $6 FROM unnest($2::text[]) AS e;

-- name: remove
DELETE FROM suppressions WHERE user_id IS NOT DISTINCT FROM $1 AND email = lower($2) RETURNING id;

-- name: list
-- One owner's list (or the admin-wide one), newest first, optionally filtered by a substring.
SELECT id, user_id, email, reason, source, campaign_id, created_at, count(*) OVER () AS total
FROM suppressions
WHERE user_id IS NOT DISTINCT FROM $1 AND ($2::text IS NULL OR strpos(email, lower($2)) > 0)
ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4;

-- name: export
SELECT email, reason, source, created_at FROM suppressions
WHERE user_id IS NOT DISTINCT FROM $1 ORDER BY email;

-- name: count_for_user
SELECT count(*)::int FROM suppressions WHERE user_id = $1;

-- name: is_suppressed
SELECT EXISTS (SELECT 1 FROM suppressions WHERE (user_id = $1 OR user_id IS NULL) AND email = lower($2));

-- name: cancel_pending
-- A newly suppressed address must not be sent: its never-attempted subtask in each of the
-- owner's active campaigns (every user's for an admin-wide entry) is cancelled. Fan-out numbers
-- a campaign's recipients 1..total in lower(email) order (fanout.create_subtasks), so the
-- subtask is found by binary search over seq: about 20 probes of the (campaign_id, seq) key for
-- a million recipients, and no index on email for fan-out and settle to maintain.
WITH RECURSIVE search (campaign_id, lo, hi) AS (
    SELECT id, 1, total FROM campaigns
    WHERE status IN ('running', 'paused') AND total > 0 AND ($1::uuid IS NULL OR user_id = $1)
    UNION ALL
    SELECT s.campaign_id,
           CASE WHEN m.e < lower($2) THEN mid.v + 1 ELSE s.lo END,
           CASE WHEN m.e < lower($2) THEN s.hi ELSE mid.v END
    FROM search s
    CROSS JOIN LATERAL (SELECT (s.lo + s.hi) / 2 AS v) mid
    CROSS JOIN LATERAL (SELECT lower(t.email) AS e FROM subtasks t
                        WHERE t.campaign_id = s.campaign_id AND t.seq = mid.v) m
    WHERE s.lo < s.hi
), gone AS (
    UPDATE subtasks t SET status = 'cancelled', settled_at = $3, error = 'SUPPRESSED: ' || $4
    FROM search f
    WHERE f.lo = f.hi AND t.campaign_id = f.campaign_id AND t.seq = f.lo
      AND t.status = 'pending' AND lower(t.email) = lower($2)
    RETURNING t.campaign_id
)
SELECT campaign_id, count(*)::int AS n FROM gone GROUP BY campaign_id;

-- name: count_cancelled
UPDATE campaigns SET cancelled_count = cancelled_count + $2, updated_at = now() WHERE id = $1;

-- name: soft_bounce
-- One more soft bounce in a row; returns the streak.
INSERT INTO soft_bounce_streaks (user_id, email, n) VALUES ($1, lower($2), 1)
ON CONFLICT (user_id, email) DO UPDATE SET n = soft_bounce_streaks.n + 1
RETURNING n;

-- name: delivered
DELETE FROM soft_bounce_streaks WHERE user_id = $1 AND email = lower($2);
