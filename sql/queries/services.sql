-- Sending services. Every query but `sealed` leaves out the `credentials` token: it is read
-- only where it is decrypted.

-- name: name_taken
-- Names are unique case-insensitively (services_name_key); $2 excludes the service being renamed.
SELECT id FROM services WHERE lower(name) = lower($1) AND id IS DISTINCT FROM $2;

-- name: insert
INSERT INTO services (name, provider, domain, credentials, credentials_hint, base_url, daily_quota,
                      reset_time, send_interval, enabled, used_today, remaining_today, quota_day_start,
                      freeze_after, warmup, warmup_started, request_timeout, unfreeze_after, probe_before_unfreeze)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, coalesce($15::integer, $7::integer), $11, $12, $13, $14,
        $16, $17, $18)
RETURNING id, name, provider, domain, credentials_hint, base_url, daily_quota, reset_time, send_interval,
          enabled, used_today, remaining_today, quota_day_start, last_request_at, consecutive_failures,
          abnormal_frozen, abnormal_reason, throttled_until, freeze_after, warmup, warmup_started, request_timeout, unfreeze_after,
          probe_before_unfreeze, frozen_until,
          created_at, updated_at;

-- name: get
SELECT id, name, provider, domain, credentials_hint, base_url, daily_quota, reset_time, send_interval,
       enabled, used_today, remaining_today, quota_day_start, last_request_at, consecutive_failures,
       abnormal_frozen, abnormal_reason, throttled_until, freeze_after, warmup, warmup_started, request_timeout, unfreeze_after,
          probe_before_unfreeze, frozen_until,
          created_at, updated_at
FROM services WHERE id = $1 AND archived_at IS NULL;

-- name: lock
-- Held for the rest of an edit so the old values written to the status log are the ones replaced.
SELECT id, name, provider, domain, credentials, credentials_hint, base_url, daily_quota, reset_time,
       send_interval, enabled, remaining_today, quota_day_start, freeze_after, warmup, warmup_started,
       request_timeout, unfreeze_after, probe_before_unfreeze
FROM services WHERE id = $1 AND archived_at IS NULL FOR UPDATE;

-- name: sealed
SELECT id, provider, credentials FROM services WHERE id = $1;

-- name: exists
SELECT true FROM services WHERE id = $1;

-- name: list
SELECT id, name, provider, domain, credentials_hint, base_url, daily_quota, reset_time, send_interval,
       enabled, used_today, remaining_today, quota_day_start, last_request_at, consecutive_failures,
       abnormal_frozen, abnormal_reason, throttled_until, freeze_after, warmup, warmup_started, request_timeout, unfreeze_after,
          probe_before_unfreeze, frozen_until,
          created_at, updated_at,
       count(*) OVER () AS total
FROM services WHERE (archived_at IS NOT NULL) = $3 ORDER BY lower(name), id LIMIT $1 OFFSET $2;

-- name: update
-- $19 is now (the store's clock). $4/$5 (sealed credentials and their masked view) are null when the credentials stay.
-- A new daily quota moves remaining_today by the difference (the right-hand side reads the old
-- daily_quota), never below zero: what was already sent today stays spent.
-- $12 is the quota-day start under a new reset time (null when it stays): a reset time moved to
-- an hour already passed today counts as done today, so the change itself never resets the
-- quota (greatest() skips a null). When the day start moves, the store then recounts
-- used_today from it (recovery.reconcile_services, the rule start-up applies too).
UPDATE services SET
    name             = $2,
    provider         = $3,
    credentials      = coalesce($4, credentials),
    credentials_hint = coalesce($5, credentials_hint),
    domain           = $6,
    base_url         = $7,
    daily_quota      = $8,
    remaining_today  = greatest(0, remaining_today + ($8 - daily_quota)),
    reset_time       = $9,
    send_interval    = $10,
    enabled          = $11,
    quota_day_start  = greatest(quota_day_start, $12),
    freeze_after     = $13,
    warmup           = $14,
    warmup_started   = $15,
    request_timeout  = $16,
    unfreeze_after   = $17,
    probe_before_unfreeze = $18,
    -- A freeze in force comes due $17 s from now when a timed unfreeze is set, never when removed.
    frozen_until     = CASE WHEN abnormal_frozen AND $17::int IS NOT NULL
                            THEN coalesce(frozen_until, $19::timestamptz + make_interval(secs => $17::int)) END,
    updated_at       = now()
WHERE id = $1
RETURNING id, name, provider, domain, credentials_hint, base_url, daily_quota, reset_time, send_interval,
          enabled, used_today, remaining_today, quota_day_start, last_request_at, consecutive_failures,
          abnormal_frozen, abnormal_reason, throttled_until, freeze_after, warmup, warmup_started, request_timeout, unfreeze_after,
          probe_before_unfreeze, frozen_until,
          created_at, updated_at;

-- name: set_enabled
-- Matches nothing when the flag already has that value, so a repeated call logs nothing.
UPDATE services SET enabled = $2, updated_at = now()
WHERE id = $1 AND enabled <> $2 AND archived_at IS NULL
RETURNING id, name, provider, domain, credentials_hint, base_url, daily_quota, reset_time, send_interval,
          enabled, used_today, remaining_today, quota_day_start, last_request_at, consecutive_failures,
          abnormal_frozen, abnormal_reason, throttled_until, freeze_after, warmup, warmup_started, request_timeout, unfreeze_after,
          probe_before_unfreeze, frozen_until,
          created_at, updated_at;

-- name: set_remaining
UPDATE services SET remaining_today = $2, updated_at = now()
WHERE id = $1
RETURNING id, name, provider, domain, credentials_hint, base_url, daily_quota, reset_time, send_interval,
          enabled, used_today, remaining_today, quota_day_start, last_request_at, consecutive_failures,
          abnormal_frozen, abnormal_reason, throttled_until, freeze_after, warmup, warmup_started, request_timeout, unfreeze_after,
          probe_before_unfreeze, frozen_until,
          created_at, updated_at;

-- name: log_status
INSERT INTO service_status_log (service_id, kind, message, data, operator_id)
VALUES ($1, $2, $3, $4, $5);

-- name: status_log
SELECT id, service_id, kind, message, data, operator_id, created_at, count(*) OVER () AS total
FROM service_status_log WHERE service_id = $1
ORDER BY id DESC LIMIT $2 OFFSET $3;

-- name: probe_target
-- What a credentials probe needs: the provider, the sealed credentials and the base URL.
SELECT id, provider, credentials, base_url FROM services WHERE id = $1;
