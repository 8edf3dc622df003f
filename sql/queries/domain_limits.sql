-- Domain groups (admin API) and the engine-wide per-minute cap; the engine reads them at start
-- and on the `domain_limits` command.

-- name: group_list
-- Every group with its domains in the order given (the engine loads all; the API pages).
SELECT g.id, g.name, g.per_minute, g.per_day, g.per_service, g.created_at, g.updated_at,
       coalesce((SELECT array_agg(d.domain ORDER BY d.position) FROM domain_group_domains d
                 WHERE d.group_id = g.id), '{}') AS domains,
       count(*) OVER () AS total
FROM domain_groups g
ORDER BY lower(g.name), g.id
LIMIT $1 OFFSET $2;

-- name: group_get
SELECT g.id, g.name, g.per_minute, g.per_day, g.per_service, g.created_at, g.updated_at,
       coalesce((SELECT array_agg(d.domain ORDER BY d.position) FROM domain_group_domains d
                 WHERE d.group_id = g.id), '{}') AS domains
FROM domain_groups g WHERE g.id = $1;

-- name: group_lock
SELECT id, name, per_minute, per_day, per_service FROM domain_groups WHERE id = $1 FOR UPDATE;

-- name: group_name_taken
SELECT id FROM domain_groups WHERE lower(name) = lower($1) AND id IS DISTINCT FROM $2;

-- name: domains_taken
-- Which of these domains another group already holds (for the 409's message).
SELECT d.domain, g.name FROM domain_group_domains d JOIN domain_groups g ON g.id = d.group_id
WHERE d.domain = ANY($1::text[]) AND d.group_id IS DISTINCT FROM $2
ORDER BY d.domain;

-- name: group_insert
INSERT INTO domain_groups (name, per_minute, per_day, per_service) VALUES ($1, $2, $3, $4) RETURNING id;

-- name: group_update
UPDATE domain_groups SET name = $2, per_minute = $3, per_day = $4, per_service = $5, updated_at = now()
WHERE id = $1;

-- name: group_clear_domains
-- Before group_add_domains, as its own statement: one statement's insert would still see the rows
-- its own delete removes (and collide with the group's own domains).
DELETE FROM domain_group_domains WHERE group_id = $1;

-- name: group_add_domains
INSERT INTO domain_group_domains (domain, group_id, position)
SELECT d, $1, p FROM unnest($2::text[]) WITH ORDINALITY AS x(d, p);

-- name: group_delete
DELETE FROM domain_groups WHERE id = $1 RETURNING id;

-- name: usage
-- Requests per (recipient domain, service) since $1 (the business day's start), and those after
-- $2 (the last minute). One index range scan of subtasks_service_attempt per service: bounded by
-- the day's requests, never a scan of the whole table. Throttled and never-made requests have
-- no attempted_at (the settle gives them back), so they are not counted, as in used_today.
SELECT v.id AS service_id, x.domain, x.day, x.minute, x.recent
FROM services v
CROSS JOIN LATERAL (
    SELECT lower(substring(s.email FROM '[^@]*$')) AS domain,
           count(*) FILTER (WHERE s.attempted_at >= $1)::int AS day,
           count(*) FILTER (WHERE s.attempted_at > $2)::int AS minute,
           coalesce(array_agg(s.attempted_at ORDER BY s.attempted_at) FILTER (WHERE s.attempted_at > $2),
                    '{}') AS recent
    FROM subtasks s
    WHERE s.service_id = v.id AND s.attempted_at >= least($1::timestamptz, $2::timestamptz)
    GROUP BY 1
) x;

-- name: rate_limit_get
SELECT send_rate_limit FROM engine_limits WHERE one;

-- name: rate_limit_set
INSERT INTO engine_limits (one, send_rate_limit, updated_at) VALUES (true, $1, now())
ON CONFLICT (one) DO UPDATE SET send_rate_limit = EXCLUDED.send_rate_limit, updated_at = now();
