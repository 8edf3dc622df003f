-- Per-recipient-domain limits and the global requests-per-minute cap (issue 13, items 2 and 5).

-- An admin-defined group of recipient domains (`163.com|126.com`) with its limits: at most
-- `per_minute` requests in any 60 s and `per_day` per business day, across all services or, with
-- `per_service`, for each service on its own. NULL = no limit of that kind.
CREATE TABLE domain_groups (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    per_minute  integer CHECK (per_minute > 0),
    per_day     integer CHECK (per_day > 0),
    per_service boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX domain_groups_name_key ON domain_groups (lower(name));

-- A domain belongs to at most one group: the primary key makes a second claim a unique violation
-- (409 CONFLICT, field `pattern`), so no recipient is ever under two groups' limits.
CREATE TABLE domain_group_domains (
    domain   text PRIMARY KEY CHECK (domain = lower(domain) AND length(domain) BETWEEN 1 AND 4000),
    group_id uuid NOT NULL REFERENCES domain_groups (id) ON DELETE CASCADE,
    position integer NOT NULL
);
CREATE INDEX domain_group_domains_group ON domain_group_domains (group_id);

-- The engine-wide cap on requests per minute as an administrator set it at runtime; NULL (or no
-- row) = the EDM_SEND_RATE_LIMIT setting, 0 = no cap.
CREATE TABLE engine_limits (
    one             boolean PRIMARY KEY DEFAULT true CHECK (one),
    send_rate_limit integer CHECK (send_rate_limit >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
