-- Deleting services and users archives them (engine.store.archive).

-- name: lock_service
SELECT id, enabled, archived_at FROM services WHERE id = $1 FOR UPDATE;

-- name: service_users_campaigns
-- Running or paused campaigns whose owner may send through the service (any of its subtasks
-- in flight counts too): the service is in use.
SELECT c.id FROM campaigns c JOIN user_service_map_items m ON m.user_id = c.user_id
WHERE m.service_id = $1 AND c.status IN ('running', 'paused')
UNION
SELECT DISTINCT s.campaign_id FROM subtasks s WHERE s.service_id = $1 AND s.status = 'sending'
LIMIT 20;

-- name: archive_service
UPDATE services SET archived_at = $2, enabled = false, updated_at = now() WHERE id = $1;

-- name: unmap_service
DELETE FROM user_service_map_items WHERE service_id = $1;

-- name: restore_service
UPDATE services SET archived_at = NULL, updated_at = now() WHERE id = $1;

-- name: lock_user
SELECT id, role, enabled, archived_at FROM users WHERE id = $1 FOR UPDATE;

-- name: unfinished_campaigns
SELECT id FROM campaigns WHERE user_id = $1 AND status IN ('pending', 'running', 'paused')
ORDER BY created_at LIMIT 20;

-- name: archive_user
-- Archived = disabled for good: every token (login or API) dies at once.
UPDATE users SET archived_at = $2, enabled = false, token_version = token_version + 1, updated_at = now()
WHERE id = $1;

-- name: revoke_user_tokens
UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL;
