-- Daily quota resets.

-- name: apply
-- Opens a new quota day for each (service, boundary) whose stored day started earlier. The
-- `quota_day_start < boundary` guard makes a reset happen exactly once per quota day, however
-- many engines, restarts or manual calls reach it; the status-log row is written only for rows
-- that actually moved.
-- $6: the day's quota where a warm-up ramp sets one (null = the full daily quota).
WITH due AS (
    SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $6::int[]) AS d(id, boundary, quota)
), moved AS (
    UPDATE services v
    SET used_today = 0, remaining_today = coalesce(d.quota, v.daily_quota), quota_day_start = d.boundary,
        updated_at = now()
    FROM due d
    WHERE v.id = d.id AND v.quota_day_start < d.boundary
    RETURNING v.id, v.daily_quota, v.remaining_today, d.boundary
)
INSERT INTO service_status_log (service_id, kind, message, data, operator_id, created_at)
SELECT id, 'reset', $3, jsonb_build_object('quota_day_start', boundary, 'daily_quota', daily_quota,
                                           'quota', remaining_today), $4, $5
FROM moved
RETURNING service_id;

-- name: reset_now
-- A reset by hand: a new quota day starting now (the next scheduled reset still fires). It
-- starts strictly after the last request, so that request stays in the day it was counted in.
WITH moved AS (
    UPDATE services v
    SET used_today = 0, remaining_today = coalesce($5, v.daily_quota),
        quota_day_start = greatest($2, v.quota_day_start, v.last_request_at + interval '1 microsecond'),
        updated_at = now()
    WHERE v.id = $1
    RETURNING v.id, v.daily_quota, v.quota_day_start
)
INSERT INTO service_status_log (service_id, kind, message, data, operator_id, created_at)
SELECT id, 'reset', $4, jsonb_build_object('quota_day_start', quota_day_start,
       'daily_quota', daily_quota, 'by_hand', true), $3, $2
FROM moved
RETURNING service_id;

-- name: quota_fields
SELECT id, used_today, remaining_today, quota_day_start FROM services WHERE id = ANY($1::uuid[]);

-- name: ramps
-- Warm-up ramps of these services (the others open each day with their full quota).
SELECT id, daily_quota, warmup, warmup_started FROM services WHERE id = ANY($1::uuid[]) AND warmup IS NOT NULL;
