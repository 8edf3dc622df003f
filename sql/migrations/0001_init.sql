-- The whole domain of DESIGN.md section 2, including the engine's live state.

CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username        text NOT NULL CHECK (username ~ '^[A-Za-z0-9_.-]{3,64}$'),
    email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('admin', 'user')),
    enabled         boolean NOT NULL DEFAULT true,
    -- Bumped on disable and password reset: every token carrying an older value dies at once.
    token_version   integer NOT NULL DEFAULT 0,
    quota_remaining bigint NOT NULL DEFAULT 0 CHECK (quota_remaining >= 0),
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- The user send-quota ledger: users.quota_remaining always equals the sum of delta.
CREATE TABLE quota_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id),
    delta         bigint NOT NULL,
    balance_after bigint NOT NULL CHECK (balance_after >= 0),
    kind          text NOT NULL CHECK (kind IN ('adjust', 'reserve', 'refund', 'charge')),
    campaign_id   uuid,
    operator_id   uuid REFERENCES users (id),
    reason        text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quota_log_user ON quota_log (user_id, id);

CREATE TABLE senders (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id),
    name       text NOT NULL CHECK (
                   name ~ '^[A-Za-z0-9_-]([A-Za-z0-9._-]{0,62}[A-Za-z0-9_-])?$'
                   AND position('..' IN name) = 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Sender names are unique across the whole system, case-insensitively.
CREATE UNIQUE INDEX senders_name_key ON senders (lower(name));
CREATE INDEX senders_user ON senders (user_id);

CREATE TABLE services (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    provider             text NOT NULL CHECK (provider IN ('engagelab', 'smtp')),
    domain               text NOT NULL CHECK (length(domain) BETWEEN 1 AND 253),
    -- Fernet token of the JSON credentials; never returned whole.
    credentials          text NOT NULL,
    -- Last four characters of each secret, for the masked view.
    credentials_hint     jsonb NOT NULL DEFAULT '{}',
    base_url             text,
    daily_quota          integer NOT NULL CHECK (daily_quota > 0),
    reset_time           time NOT NULL,
    send_interval        integer NOT NULL CHECK (send_interval > 0),
    enabled              boolean NOT NULL DEFAULT true,
    -- Live state, written through by the engine.
    used_today           integer NOT NULL DEFAULT 0 CHECK (used_today >= 0),
    remaining_today      integer NOT NULL CHECK (remaining_today >= 0),
    -- The reset instant that opened the current quota day: a reset fires only for a later one,
    -- which makes it happen exactly once per quota day, whenever the engine gets to it.
    quota_day_start      timestamptz NOT NULL,
    last_request_at      timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    -- Set by throttling replies: no request before this moment.
    throttled_until      timestamptz,
    abnormal_frozen      boolean NOT NULL DEFAULT false,
    abnormal_reason      text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (abnormal_frozen = (abnormal_reason IS NOT NULL))
);
CREATE UNIQUE INDEX services_name_key ON services (lower(name));

CREATE TABLE service_status_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id  uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN (
                    'created', 'updated', 'enabled', 'disabled', 'frozen', 'unfrozen',
                    'throttled', 'reset', 'manual_adjust')),
    message     text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}',
    operator_id uuid REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_status_log_service ON service_status_log (service_id, id);

-- One mapping record per user (the primary key says so) holding the user's set of services.
CREATE TABLE user_service_maps (
    user_id    uuid PRIMARY KEY REFERENCES users (id),
    updated_by uuid REFERENCES users (id),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE user_service_map_items (
    user_id    uuid NOT NULL REFERENCES user_service_maps (user_id) ON DELETE CASCADE,
    service_id uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, service_id)
);
CREATE INDEX user_service_map_items_service ON user_service_map_items (service_id);

CREATE TABLE contacts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id),
    email      text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name       text NOT NULL DEFAULT '',
    fields     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(fields) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX contacts_user_email_key ON contacts (user_id, lower(email));

CREATE TABLE tags (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tags_user_name_key ON tags (user_id, lower(name));

CREATE TABLE contact_tags (
    tag_id     uuid NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (tag_id, contact_id)
);
CREATE INDEX contact_tags_contact ON contact_tags (contact_id);

CREATE TABLE templates (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 998),
    html_body  text NOT NULL DEFAULT '',
    text_body  text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (html_body <> '' OR text_body <> '')
);
CREATE INDEX templates_user ON templates (user_id);

CREATE TABLE campaigns (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- A finished campaign's sender may be deleted; the name stays for the record.
    sender_id       uuid REFERENCES senders (id) ON DELETE SET NULL,
    sender_name     text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN (
                        'pending', 'running', 'paused', 'completed', 'failed', 'cancelled')),
    pause_reason    text CHECK (pause_reason IN (
                        'USER', 'NO_USER_QUOTA', 'NO_AVAILABLE_SERVICE', 'SERVICE_QUOTA_EXHAUSTED')),
    failure_reason  text,
    scheduled_at    timestamptz,
    -- Quota units currently held for this campaign (planned recipients until the start).
    reserved        bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    planned         integer NOT NULL DEFAULT 0 CHECK (planned >= 0),
    -- Counters are caches of the subtasks table, reconciled at engine start-up.
    total           integer NOT NULL DEFAULT 0 CHECK (total >= 0),
    sent_count      integer NOT NULL DEFAULT 0 CHECK (sent_count >= 0),
    failed_count    integer NOT NULL DEFAULT 0 CHECK (failed_count >= 0),
    cancelled_count integer NOT NULL DEFAULT 0 CHECK (cancelled_count >= 0),
    started_at      timestamptz,
    finished_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'paused') = (pause_reason IS NOT NULL)),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
CREATE INDEX campaigns_user ON campaigns (user_id, created_at);
CREATE INDEX campaigns_due ON campaigns (scheduled_at) WHERE status = 'pending';
CREATE INDEX campaigns_sender_active ON campaigns (sender_id)
    WHERE status IN ('pending', 'running', 'paused');

CREATE TABLE campaign_templates (
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    position    smallint NOT NULL CHECK (position >= 0),
    template_id uuid NOT NULL REFERENCES templates (id),
    PRIMARY KEY (campaign_id, position)
);
CREATE INDEX campaign_templates_template ON campaign_templates (template_id);

CREATE TABLE campaign_tags (
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    tag_id      uuid NOT NULL REFERENCES tags (id),
    mode        text NOT NULL CHECK (mode IN ('include', 'exclude')),
    PRIMARY KEY (campaign_id, mode, tag_id)
);
CREATE INDEX campaign_tags_tag ON campaign_tags (tag_id);

CREATE TABLE campaign_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    message     text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_events_campaign ON campaign_events (campaign_id, id);

-- One row per recipient. `seq` numbers a campaign's subtasks so claims walk an index range
-- from the last claimed key instead of re-reading settled rows; the table partitions cleanly
-- by campaign_id.
CREATE TABLE subtasks (
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    campaign_id  uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    contact_id   uuid,
    email        text NOT NULL,
    template_id  uuid NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN (
                     'pending', 'sending', 'sent', 'failed', 'cancelled')),
    service_id   uuid,
    from_address text,
    attempted_at timestamptz,
    settled_at   timestamptz,
    message_id   text,
    error        text,
    PRIMARY KEY (id),
    UNIQUE (campaign_id, seq)
);
CREATE INDEX subtasks_pending ON subtasks (campaign_id, seq) WHERE status = 'pending';
CREATE INDEX subtasks_service_attempt ON subtasks (service_id, attempted_at) WHERE service_id IS NOT NULL;
CREATE INDEX subtasks_sending ON subtasks (campaign_id) WHERE status = 'sending';
