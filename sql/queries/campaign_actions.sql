-- Campaign actions and progress views.

-- name: owned
-- A campaign as its owner (or an admin, with $3) sees it; others get nothing (404).
SELECT id, user_id, status, pause_reason FROM campaigns WHERE id = $1 AND (user_id = $2 OR $3::boolean);

-- name: subtasks
SELECT id, seq, email, template_id, status, service_id, from_address, attempted_at, settled_at,
       message_id, error, count(*) OVER () AS total
FROM subtasks_all                  -- archived ones too (edm archive)
WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2)
ORDER BY seq LIMIT $3 OFFSET $4;

-- name: progress
-- $1 campaign, $2 first minute bucket of the rate, $3 now, $4 the caller when only its own campaigns
-- are visible (NULL: every campaign), so the visibility check costs no round trip of its own. Counts from the campaign's counters
-- (kept by every settle, cancel and start); in flight from the partial `subtasks_in_flight` index;
-- the rate from the per-minute send counters: never a count of the campaign's subtasks.
SELECT c.id, c.status, c.pause_reason, c.failure_reason, c.total, c.started_at, c.finished_at, c.send_window,
       c.sent_count AS sent, c.failed_count AS failed, c.cancelled_count AS cancelled,
       (SELECT count(*) FROM subtasks s WHERE s.campaign_id = c.id AND s.status = 'sending'
          AND s.from_address IS NOT NULL)::int AS sending,
       (SELECT coalesce(sum(m.sent + m.failed), 0) FROM send_minutes m
         WHERE m.campaign_id = c.id AND m.minute >= $2 AND m.minute <= $3)::int AS recent
FROM campaigns c
WHERE c.id = $1 AND ($4::uuid IS NULL OR c.user_id = $4);
