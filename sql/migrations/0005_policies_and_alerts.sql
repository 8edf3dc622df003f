-- Sending policies and pushed alerts (issue 13).

-- Where alerts go. A robot's URL carries its access token, so the URL is sealed with the
-- secret (Fernet, like service credentials) and only the masked view is kept in clear.
CREATE TABLE alert_channels (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind        text NOT NULL CHECK (kind IN ('webhook', 'wecom', 'dingtalk', 'slack')),
    config      text NOT NULL,
    config_hint jsonb NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alert_channels_name_key ON alert_channels (lower(name));

-- What raises an alert; `threshold` means per kind: percent used (service_quota_used),
-- minutes paused (campaign_paused), quota units (user_quota_low), dropped events
-- (event_stream_dropping); unused by the others.
CREATE TABLE alert_rules (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind       text NOT NULL CHECK (kind IN ('service_frozen', 'service_quota_used', 'service_quota_exhausted',
                                             'campaign_paused', 'user_quota_low', 'leadership_changed',
                                             'event_stream_dropping')),
    threshold  bigint CHECK (threshold >= 0),
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alert_rules_name_key ON alert_rules (lower(name));

CREATE TABLE alert_rule_channels (
    rule_id    uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, channel_id)
);
CREATE INDEX alert_rule_channels_channel ON alert_rule_channels (channel_id);

-- One row per condition occurrence: opened when the rule starts firing for `subject`
-- (`service:<id>`, `campaign:<id>`, `user:<id>`, `engine`, `event_stream`), cleared when it stops.
-- One-shot alerts (leadership changes) are cleared as they open.
CREATE TABLE alerts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id    uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    subject    text NOT NULL,
    message    text NOT NULL,
    data       jsonb NOT NULL DEFAULT '{}',
    opened_at  timestamptz NOT NULL,
    cleared_at timestamptz
);
-- De-duplication: at most one open alert per rule and subject, whoever evaluates.
CREATE UNIQUE INDEX alerts_open_key ON alerts (rule_id, subject) WHERE cleared_at IS NULL;
CREATE INDEX alerts_recent ON alerts (opened_at DESC);

-- One delivery per alert and channel, retried with backoff until delivered or given up.
CREATE TABLE alert_deliveries (
    alert_id        uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel_id      uuid NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    delivered_at    timestamptz,
    PRIMARY KEY (alert_id, channel_id)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_channel ON alert_deliveries (channel_id);

-- Consecutive provider failures that freeze a service abnormally; null = the engine's default (10).
ALTER TABLE services ADD COLUMN freeze_after integer CHECK (freeze_after BETWEEN 1 AND 1000);

-- Warm-up ramp (domain/warmup.py): {"schedule": [q1, q2, …]} or {"start": n, "factor": f}; the
-- ramp's day 1 is `warmup_started` (a business-calendar date). Each reset opens the day with the
-- ramp's quota instead of the full daily quota until the ramp reaches it.
ALTER TABLE services ADD COLUMN warmup jsonb, ADD COLUMN warmup_started date,
    ADD CONSTRAINT services_warmup_check CHECK ((warmup IS NULL) = (warmup_started IS NULL));

-- Send windows (domain/send_window.py): {"start": "09:00", "end": "18:00", "days": [1..7], "tz": zone}.
-- Outside it a running campaign waits, paused with OUTSIDE_SEND_WINDOW (cleared by itself).
ALTER TABLE campaigns ADD COLUMN send_window jsonb;
ALTER TABLE campaigns DROP CONSTRAINT campaigns_pause_reason_check,
    ADD CONSTRAINT campaigns_pause_reason_check CHECK (pause_reason IN (
        'USER', 'NO_USER_QUOTA', 'NO_AVAILABLE_SERVICE', 'SERVICE_QUOTA_EXHAUSTED', 'OUTSIDE_SEND_WINDOW'));
