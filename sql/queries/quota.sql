-- name: lock_user
-- Serialises every change of one user's quota: concurrent reservations queue here.
SELECT quota_remaining FROM users WHERE id = $1 FOR UPDATE;

-- name: apply
-- Moves the balance and writes the ledger row in one statement; the CHECK on
-- users.quota_remaining refuses a negative balance even if a caller skipped the lock.
WITH moved AS (
    UPDATE users SET quota_remaining = quota_remaining + $2, updated_at = now()
    WHERE id = $1
    RETURNING id, quota_remaining
)
INSERT INTO quota_log (user_id, delta, balance_after, kind, campaign_id, operator_id, reason)
SELECT id, $2, quota_remaining, $3, $4, $5, $6 FROM moved
RETURNING id, user_id, delta, balance_after, kind, campaign_id, operator_id, reason, created_at;

-- name: log
SELECT id, user_id, delta, balance_after, kind, campaign_id, operator_id, reason, created_at,
       count(*) OVER () AS total
FROM quota_log WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3;

-- name: ledger_sum
SELECT coalesce(sum(delta), 0)::bigint AS total FROM quota_log WHERE user_id = $1;
