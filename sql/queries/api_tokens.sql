-- name: insert
INSERT INTO api_tokens (user_id, name, scope, secret_hash, hint, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, user_id, name, scope, hint, expires_at, created_at, revoked_at;

-- name: list
SELECT id, user_id, name, scope, hint, expires_at, created_at, revoked_at, count(*) OVER () AS total
FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL
ORDER BY created_at, id LIMIT $2 OFFSET $3;

-- name: revoke
UPDATE api_tokens SET revoked_at = $3
WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
RETURNING id, user_id, name, scope, hint, expires_at, created_at, revoked_at;

-- name: auth_state
-- What an API token is checked against on every call: the token's own state and its owner's.
SELECT t.id AS token_id, t.scope, t.expires_at, t.revoked_at, u.id, u.username, u.role, u.enabled
FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.secret_hash = $1;

