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
SELECT c.id, c.status, c.pause_reason, c.failure_reason, c.total, c.started_at, c.finished_at, c.send_window,
       count(*) FILTER (WHERE s.status = 'pending')::int AS pending,
       count(*) FILTER (WHERE s.status = 'sending')::int AS sending,
       count(*) FILTER (WHERE s.status = 'sent')::int AS sent,
       count(*) FILTER (WHERE s.status = 'failed')::int AS failed,
       count(*) FILTER (WHERE s.status = 'cancelled')::int AS cancelled,
       count(*) FILTER (WHERE s.settled_at > $2 AND s.status IN ('sent', 'failed'))::int AS recent
FROM campaigns c LEFT JOIN subtasks_all s ON s.campaign_id = c.id     -- archived ones too
WHERE c.id = $1
GROUP BY c.id;
