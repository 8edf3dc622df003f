-- Contacts are per user: every statement filters by user_id ($1), so another user's contact is
-- "not found". A contact's tags come back as names, sorted case-insensitively.

-- name: insert
-- Nothing returned means the user already has a contact with this email (case-insensitively).
INSERT INTO contacts (user_id, email, name, fields) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, lower(email)) DO NOTHING
RETURNING id;

-- name: get
SELECT c.id, c.email, c.name, c.fields, c.created_at, c.updated_at,
       coalesce((SELECT array_agg(t.name ORDER BY lower(t.name), t.name)
                 FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id
                 WHERE ct.contact_id = c.id), '{}') AS tags
FROM contacts c WHERE c.user_id = $1 AND c.id = $2;

-- name: list
-- $2 tag name (or null), $3 substring of email or name (or null). Ordered by email, the
-- unique key, so pages are stable; tags are aggregated for the page's rows only.
WITH page AS (
    SELECT c.id, c.email, c.name, c.fields, c.created_at, c.updated_at, count(*) OVER () AS total
    FROM contacts c
    WHERE c.user_id = $1
      AND ($2::text IS NULL OR EXISTS (
              SELECT 1 FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id
              WHERE ct.contact_id = c.id AND t.user_id = $1 AND lower(t.name) = lower($2)))
      -- strpos, not LIKE: the caller's % and _ stay literal.
      AND ($3::text IS NULL OR strpos(lower(c.email), lower($3)) > 0 OR strpos(lower(c.name), lower($3)) > 0)
    ORDER BY lower(c.email), c.id
    LIMIT $4 OFFSET $5
)
SELECT p.id, p.email, p.name, p.fields, p.created_at, p.updated_at, p.total,
       coalesce((SELECT array_agg(t.name ORDER BY lower(t.name), t.name)
                 FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id
                 WHERE ct.contact_id = p.id), '{}') AS tags
FROM page p
ORDER BY lower(p.email), p.id;

-- name: update
-- A null argument keeps the column. A unique violation means the new email is taken.
UPDATE contacts SET
    email      = coalesce($3, email),
    name       = coalesce($4, name),
    fields     = coalesce($5::jsonb, fields),
    updated_at = now()
WHERE user_id = $1 AND id = $2
RETURNING id;

-- name: set_tags
-- Make the contact's ($2) tag set exactly the names in $3 (which tags.ensure created already).
WITH wanted AS (
    SELECT t.id FROM tags t
    WHERE t.user_id = $1 AND lower(t.name) IN (SELECT lower(n) FROM unnest($3::text[]) AS n)
), dropped AS (
    DELETE FROM contact_tags ct
    WHERE ct.contact_id = $2 AND ct.tag_id NOT IN (SELECT id FROM wanted)
)
INSERT INTO contact_tags (tag_id, contact_id)
SELECT id, $2 FROM wanted
ON CONFLICT DO NOTHING;

-- name: delete
-- contact_tags rows go with the contact (ON DELETE CASCADE).
DELETE FROM contacts WHERE user_id = $1 AND id = $2 RETURNING id;

-- name: import_lock
-- One import at a time per user ($1): two merges locking the same contacts in different
-- orders could otherwise deadlock. The two-int form keeps clear of other advisory locks.
SELECT pg_advisory_xact_lock(7201002, hashtext($1::uuid::text));

-- name: import_settings
-- Room for the merge's sorts and hashes of 100k rows in memory; reverts at commit.
SET LOCAL work_mem = '64MB';

-- name: import_temp
-- Filled by COPY with the valid rows of one import; gone at commit or rollback.
CREATE TEMP TABLE contact_import_rows (
    seq    integer NOT NULL,
    email  text NOT NULL,
    name   text NOT NULL,
    fields text NOT NULL,
    tags   text[] NOT NULL
) ON COMMIT DROP;

-- name: import_analyze
-- The email column is all the merge's estimates need (DISTINCT ON and the join use lower(email)).
ANALYZE contact_import_rows (email);

-- name: import_merge
-- Upsert every staged row into the user's ($1) contacts, set-based. Imports only add: an
-- empty name keeps the stored one and fields merge key by key (the file wins). A contact the
-- row would not change is left alone (no new row version), which makes re-importing the same
-- file cheap. DISTINCT ON guards the one-row-per-email rule that ON CONFLICT DO UPDATE needs,
-- whatever the caller deduplicated; the last row wins.
WITH src AS (
    SELECT DISTINCT ON (lower(email)) email, name, fields::jsonb AS fields
    FROM contact_import_rows
    ORDER BY lower(email), seq DESC
), up AS (
    INSERT INTO contacts AS c (user_id, email, name, fields)
    SELECT $1, email, name, fields FROM src
    ON CONFLICT (user_id, lower(email)) DO UPDATE SET
        name       = CASE WHEN EXCLUDED.name = '' THEN c.name ELSE EXCLUDED.name END,
        fields     = c.fields || EXCLUDED.fields,
        updated_at = now()
    -- Scalar values only, so containment is exactly "merging changes nothing".
    WHERE (EXCLUDED.name <> '' AND EXCLUDED.name <> c.name) OR NOT c.fields @> EXCLUDED.fields
    -- xmax = 0 only on a freshly inserted row version (PostgreSQL 15 has no RETURNING old.*).
    RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT count(*) FROM src) AS matched,
       count(*) FILTER (WHERE inserted) AS imported,
       count(*) FILTER (WHERE NOT inserted) AS changed
FROM up;

-- name: import_links
-- Add the staged rows' tags (tags.ensure created them) to the user's ($1) contacts.
INSERT INTO contact_tags (tag_id, contact_id)
SELECT t.id, c.id
FROM contact_import_rows r
CROSS JOIN LATERAL unnest(r.tags) AS n
JOIN tags t ON t.user_id = $1 AND lower(t.name) = lower(n)
JOIN contacts c ON c.user_id = $1 AND lower(c.email) = lower(r.email)
ON CONFLICT DO NOTHING;
