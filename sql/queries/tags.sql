-- Tags are per user: every statement filters by user_id ($1), so another user's tag is "not found".

-- name: insert
-- Nothing returned means the user already has a tag of that name (case-insensitively).
INSERT INTO tags (user_id, name) VALUES ($1, $2)
ON CONFLICT (user_id, lower(name)) DO NOTHING
RETURNING id, name, 0::bigint AS contact_count, created_at;

-- name: get
SELECT t.id, t.name, t.created_at,
       (SELECT count(*) FROM contact_tags ct WHERE ct.tag_id = t.id) AS contact_count
FROM tags t WHERE t.user_id = $1 AND t.id = $2;

-- name: list
SELECT t.id, t.name, t.created_at,
       (SELECT count(*) FROM contact_tags ct WHERE ct.tag_id = t.id) AS contact_count,
       count(*) OVER () AS total
FROM tags t WHERE t.user_id = $1
ORDER BY lower(t.name), t.id
LIMIT $2 OFFSET $3;

-- name: rename
-- A unique violation here means another of the user's tags already has the new name.
UPDATE tags t SET name = $3 WHERE t.user_id = $1 AND t.id = $2
RETURNING t.id, t.name, t.created_at,
          (SELECT count(*) FROM contact_tags ct WHERE ct.tag_id = t.id) AS contact_count;

-- name: delete
-- contact_tags rows go with the tag (ON DELETE CASCADE); campaign_tags rows do not, so a tag
-- a campaign selects by fails with a foreign-key violation.
DELETE FROM tags WHERE user_id = $1 AND id = $2 RETURNING id;

-- name: ensure
-- Create whichever of the names ($2) the user does not have yet; existing spellings are kept.
INSERT INTO tags (user_id, name)
SELECT DISTINCT ON (lower(n)) $1, n FROM unnest($2::text[]) AS n ORDER BY lower(n), n
ON CONFLICT (user_id, lower(name)) DO NOTHING;
