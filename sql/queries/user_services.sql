-- The user ↔ services mapping: one user_service_maps row per user, its set in _items.

-- name: user_exists
SELECT true FROM users WHERE id = $1;

-- name: unknown_services
-- The ids of $1 that name no service (or an archived one), in the order given.
SELECT x.id
FROM unnest($1::uuid[]) WITH ORDINALITY AS x (id, n)
WHERE NOT EXISTS (SELECT 1 FROM services s WHERE s.id = x.id AND s.archived_at IS NULL)
ORDER BY x.n;

-- name: upsert_map
-- The primary key on user_id keeps it one record per user; the row lock taken here also
-- serialises concurrent replacements of the same user's set.
INSERT INTO user_service_maps (user_id, updated_by, updated_at)
VALUES ($1, $2, now())
ON CONFLICT (user_id) DO UPDATE SET updated_by = excluded.updated_by, updated_at = excluded.updated_at
RETURNING updated_at;

-- name: delete_items
-- Drops the services not in the new set ($2).
DELETE FROM user_service_map_items WHERE user_id = $1 AND service_id <> ALL ($2::uuid[]);

-- name: insert_items
-- Adds the services of the new set the user did not have yet.
INSERT INTO user_service_map_items (user_id, service_id)
SELECT $1, s FROM unnest($2::uuid[]) AS s
ON CONFLICT DO NOTHING;

-- name: get_map
SELECT user_id, updated_at FROM user_service_maps WHERE user_id = $1;

-- name: services_of
SELECT s.id, s.name, s.domain, s.enabled, s.abnormal_frozen, s.daily_quota, s.used_today, s.remaining_today,
       s.reset_time, s.quota_day_start
FROM user_service_map_items i JOIN services s ON s.id = i.service_id
WHERE i.user_id = $1
ORDER BY lower(s.name), s.id;
