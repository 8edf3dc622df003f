-- name: services
SELECT s.id, s.name, s.provider, s.enabled, s.daily_quota, s.used_today, s.remaining_today,
       s.reset_time, s.quota_day_start, s.abnormal_frozen, s.consecutive_failures, s.send_interval,
       (SELECT max(l.created_at) FROM service_status_log l
         WHERE l.service_id = s.id AND l.kind = 'reset') AS last_reset_at
FROM services s ORDER BY lower(s.name);

-- name: by_name
SELECT id, name, reset_time, quota_day_start FROM services WHERE lower(name) = lower($1);

-- name: set_reset_time
-- The current quota day keeps its start unless the new time already passed since then: that
-- moment becomes the start instead, so moving the time never grants an extra reset today.
UPDATE services SET reset_time = $2, quota_day_start = greatest(quota_day_start, $3), updated_at = now()
WHERE id = $1
RETURNING id;

-- name: log
INSERT INTO service_status_log (service_id, kind, message, data, operator_id)
VALUES ($1, $2, $3, $4, $5);
