-- name: ensure
INSERT INTO login_attempts (key) SELECT unnest($1::text[]) ON CONFLICT (key) DO NOTHING;

-- name: lock
-- Key order: two attempts on the same account take the locks in the same order.
SELECT key, attempts, started, next_allowed FROM login_attempts
WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE;

-- name: store
UPDATE login_attempts SET attempts = $2, started = $3, next_allowed = $4 WHERE key = $1;

-- name: clear
DELETE FROM login_attempts WHERE key = ANY($1::text[]);

-- name: clear_account
WITH gone AS (
    DELETE FROM login_attempts
    WHERE key = $1 OR starts_with(key, $2)
    RETURNING 1
)
SELECT count(*) FROM gone;
