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
-- $1 now. The per-minute send counters the engine writes behind (send_minutes) of the last ten
-- minute buckets, folded three ways in one pass (grouping sets): one row per active service,
-- campaign and user, never one per subtask. `m0` is the current minute so far, `m9` nine minutes
-- back; `rate` the last five buckets (a campaign's rate); `total` all ten (a user's share).
--   grouping_set 3: service_id; 5: campaign_id; 6: user_id.
SELECT GROUPING(service_id, campaign_id, user_id) AS grouping_set, service_id, campaign_id, user_id,
       sum(n) FILTER (WHERE ago = 0) AS m0, sum(n) FILTER (WHERE ago = 1) AS m1,
       sum(n) FILTER (WHERE ago = 2) AS m2, sum(n) FILTER (WHERE ago = 3) AS m3,
       sum(n) FILTER (WHERE ago = 4) AS m4, sum(n) FILTER (WHERE ago = 5) AS m5,
       sum(n) FILTER (WHERE ago = 6) AS m6, sum(n) FILTER (WHERE ago = 7) AS m7,
       sum(n) FILTER (WHERE ago = 8) AS m8, sum(n) FILTER (WHERE ago = 9) AS m9,
       sum(n) FILTER (WHERE ago < 5) AS rate, sum(n) AS total
FROM (SELECT service_id, campaign_id, user_id, sent + failed AS n,
             (extract(epoch FROM date_trunc('minute', $1::timestamptz) - minute) / 60)::int AS ago
      FROM send_minutes
      WHERE minute > $1::timestamptz - interval '10 minutes' AND minute <= $1::timestamptz) m
GROUP BY GROUPING SETS ((service_id), (campaign_id), (user_id));

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
