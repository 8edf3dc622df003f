-- The live overview (engine/live/overview.py): four set-based reads per snapshot, whatever the
-- number of services or campaigns. `now` is the instant of the snapshot (the injected clock, not
-- now(), so the numbers agree with the state computed from it); `user` is the user the overview
-- is for, or null for an administrator's overview of everything.

-- name: services
-- $1 user. Admins: every service. Users: the services of their mapping record.
SELECT sv.id, sv.name, sv.provider, sv.enabled, sv.send_interval, sv.used_today, sv.remaining_today,
       sv.daily_quota, sv.reset_time, sv.quota_day_start, sv.last_request_at, sv.throttled_until,
       sv.consecutive_failures, sv.abnormal_frozen, sv.abnormal_reason
FROM services sv
WHERE $1::uuid IS NULL
   OR sv.id IN (SELECT service_id FROM user_service_map_items WHERE user_id = $1)
ORDER BY lower(sv.name), sv.id;

-- name: campaigns
-- $1 now, $2 user.
-- Active campaigns (running, paused, pending) and those finished in the last hour. A pending
-- campaign has no subtasks yet: its planned recipient count stands in for the total.
SELECT c.id, c.name, u.username AS owner, c.user_id AS owner_id, c.status, c.pause_reason,
       CASE WHEN c.status = 'pending' AND c.total = 0 THEN c.planned ELSE c.total END AS total,
       c.sent_count, c.failed_count, c.cancelled_count, c.scheduled_at, c.started_at, c.created_at, c.send_window
FROM campaigns c
JOIN users u ON u.id = c.user_id
WHERE (c.status IN ('running', 'paused', 'pending') OR c.finished_at > $1::timestamptz - interval '1 hour')
  AND ($2::uuid IS NULL OR c.user_id = $2)
ORDER BY CASE c.status WHEN 'running' THEN 0 WHEN 'paused' THEN 1 WHEN 'pending' THEN 2 ELSE 3 END,
         c.created_at, c.id;

-- name: recent
-- $1 now. Requests of the last 10 minutes folded three ways in one pass (grouping sets), so the
-- answer has one row per service-minute, per campaign and per user, never one per subtask:
--   grouping_set 3: (service_id, ago) — `ago` 0 is the last 60 seconds, 9 nine minutes back;
--   grouping_set 5: (campaign_id), with how many settled in the last 5 minutes (its rate);
--   grouping_set 6: (user_id), with how many of them in the last minute.
-- Walks the subtasks_service_attempt index once per service, over the last 10 minutes only.
WITH recent AS (
    SELECT s.service_id, s.campaign_id, c.user_id, s.status, s.settled_at,
           least(9, floor(extract(epoch FROM $1::timestamptz - s.attempted_at) / 60))::int AS ago
    FROM services sv
    JOIN subtasks s ON s.service_id = sv.id
                   AND s.attempted_at > $1::timestamptz - interval '10 minutes'
                   AND s.attempted_at <= $1::timestamptz
    JOIN campaigns c ON c.id = s.campaign_id
)
SELECT GROUPING(service_id, campaign_id, user_id) AS grouping_set, service_id, ago, campaign_id, user_id,
       count(*) AS attempts,
       count(*) FILTER (WHERE ago = 0) AS last_minute,
       count(*) FILTER (WHERE status IN ('sent', 'failed')
                          AND settled_at > $1::timestamptz - interval '5 minutes') AS settled_recent
FROM recent
GROUP BY GROUPING SETS ((service_id, ago), (campaign_id), (user_id));

-- name: users
-- $1 user. Admins: every account with the user role. Users: themselves.
SELECT u.id, u.username, u.quota_remaining,
       count(c.id) FILTER (WHERE c.status = 'running') AS running_campaigns
FROM users u
LEFT JOIN campaigns c ON c.user_id = u.id AND c.status = 'running'
WHERE CASE WHEN $1::uuid IS NULL THEN u.role = 'user' ELSE u.id = $1 END
GROUP BY u.id
ORDER BY lower(u.username), u.id;

-- name: campaign_owners
-- $1 campaign ids.
-- The owners of campaigns named by live events (the SSE role filter), one read per batch.
SELECT id::text AS id, user_id::text AS user_id FROM campaigns WHERE id = ANY($1::uuid[]);
