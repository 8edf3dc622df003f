-- name: auth_state
SELECT id, username, role, enabled, token_version FROM users WHERE id = $1;

-- name: by_username
SELECT id, username, password_hash, role, enabled, token_version FROM users WHERE lower(username) = lower($1);

-- name: insert
INSERT INTO users (username, email, password_hash, role, enabled)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, username, email, role, enabled, quota_remaining, last_login_at, created_at, updated_at;

-- name: get
SELECT id, username, email, role, enabled, quota_remaining, last_login_at, created_at, updated_at
FROM users WHERE id = $1 AND archived_at IS NULL;

-- name: list
SELECT id, username, email, role, enabled, quota_remaining, last_login_at, created_at, updated_at,
       count(*) OVER () AS total
FROM users WHERE archived_at IS NULL ORDER BY created_at, id LIMIT $1 OFFSET $2;

-- name: update
-- A null argument keeps the column; disabling or a new password bumps the token version so
-- every token issued before dies at once.
UPDATE users SET
    email         = coalesce($2, email),
    role          = coalesce($3, role),
    enabled       = coalesce($4, enabled),
    password_hash = coalesce($5, password_hash),
    token_version = token_version + CASE WHEN $5::text IS NOT NULL OR ($4::boolean IS FALSE AND enabled) THEN 1 ELSE 0 END,
    updated_at    = now()
WHERE id = $1 AND archived_at IS NULL
RETURNING id, username, email, role, enabled, quota_remaining, last_login_at, created_at, updated_at;

-- name: touch_login
UPDATE users SET last_login_at = $2 WHERE id = $1;

-- name: lock_enabled_admins
-- Taken before any change that may remove an administrator, so two concurrent demotions
-- cannot each see the other as the remaining one.
SELECT id FROM users WHERE role = 'admin' AND enabled ORDER BY id FOR UPDATE;

-- name: set_password
UPDATE users SET password_hash = $2, token_version = token_version + 1, updated_at = now()
WHERE id = $1 RETURNING token_version;
