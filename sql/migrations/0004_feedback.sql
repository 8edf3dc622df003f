-- Recipients' feedback (DESIGN.md 4b): provider webhooks, bounces, suppression, unsubscribe,
-- the reputation guard and retries.

-- The per-service webhook secret (Fernet token, like credentials); NULL = no webhook accepted.
ALTER TABLE services ADD COLUMN webhook_secret text;
ALTER TABLE service_status_log DROP CONSTRAINT service_status_log_kind_check;
ALTER TABLE service_status_log ADD CONSTRAINT service_status_log_kind_check CHECK (kind IN (
    'created', 'updated', 'enabled', 'disabled', 'frozen', 'unfrozen',
    'throttled', 'reset', 'manual_adjust', 'webhook_secret'));

-- How many recipients fan-out left out because they were suppressed (not charged).
ALTER TABLE campaigns ADD COLUMN suppressed_count integer NOT NULL DEFAULT 0 CHECK (suppressed_count >= 0);
-- Retries of the campaign's failed recipients (each one re-queues them as a new attempt).
ALTER TABLE campaigns ADD COLUMN attempts integer NOT NULL DEFAULT 1 CHECK (attempts >= 1);

-- The last delivery outcome a provider reported for the subtask (the events table has them all).
ALTER TABLE subtasks ADD COLUMN outcome text CHECK (outcome IN (
    'delivered', 'soft_bounce', 'hard_bounce', 'complaint'));
ALTER TABLE subtasks ADD COLUMN attempt integer NOT NULL DEFAULT 1;
-- No new index on subtasks (every index is paid per row at fan-out and settle): callbacks match
-- by primary key (the subtask id the engine sends as custom args), and a suppressed address is
-- found in a campaign by binary search over seq, which fan-out numbers in lower(email) order.

-- Every feedback event, matched to its subtask; counts and rates are derived from these rows.
-- `dedupe_key` makes a replayed or re-delivered callback a no-op.
CREATE TABLE delivery_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subtask_id  uuid NOT NULL,
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id),
    service_id  uuid REFERENCES services (id) ON DELETE SET NULL,
    email       text NOT NULL,
    kind        text NOT NULL CHECK (kind IN (
                    'delivered', 'soft_bounce', 'hard_bounce', 'complaint', 'unsubscribe', 'open', 'click')),
    source      text NOT NULL CHECK (source IN ('engagelab', 'bounce_api', 'unsubscribe_link', 'tracking')),
    dedupe_key  text NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX delivery_events_dedupe ON delivery_events (dedupe_key);
CREATE INDEX delivery_events_campaign ON delivery_events (campaign_id, kind);
CREATE INDEX delivery_events_subtask ON delivery_events (subtask_id);
CREATE INDEX delivery_events_service ON delivery_events (service_id, received_at);

-- Addresses never to be mailed again: per user, or for everyone (user_id NULL, admin-wide).
CREATE TABLE suppressions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    email       text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    reason      text NOT NULL CHECK (reason IN (
                    'hard_bounce', 'soft_bounce', 'complaint', 'unsubscribe', 'manual', 'import')),
    source      text NOT NULL DEFAULT '',
    campaign_id uuid,
    created_by  uuid REFERENCES users (id),
    created_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX suppressions_key ON suppressions (user_id, email) NULLS NOT DISTINCT;

-- Adds and removals, with who and why.
CREATE TABLE suppression_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid,
    email       text NOT NULL,
    action      text NOT NULL CHECK (action IN ('added', 'removed')),
    reason      text NOT NULL,
    operator_id uuid,
    created_at  timestamptz NOT NULL
);
CREATE INDEX suppression_log_user ON suppression_log (user_id, id);

-- Soft bounces in a row per owner and address; a delivery resets the streak.
CREATE TABLE soft_bounce_streaks (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email   text NOT NULL,
    n       integer NOT NULL CHECK (n >= 0),
    PRIMARY KEY (user_id, email)
);
