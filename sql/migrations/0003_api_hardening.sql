-- Login throttle counters while Redis is unavailable (engine.store.login_attempts).
CREATE TABLE login_attempts (
    key          text PRIMARY KEY,
    attempts     integer NOT NULL DEFAULT 0,
    started      timestamptz,
    next_allowed timestamptz
);

-- Personal API tokens for scripts: only a SHA-256 of the secret is kept (the secret is
-- 256 random bits, so a fast hash is enough); the secret is shown once, at creation.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scope        text NOT NULL CHECK (scope IN ('read', 'write')),
    secret_hash  bytea NOT NULL UNIQUE,
    hint         text NOT NULL,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);

-- Deleting a service or a user archives it: hidden from lists, its history (subtasks, logs,
-- ledgers) still resolving its name. Names stay taken while archived.
ALTER TABLE services ADD COLUMN archived_at timestamptz;
ALTER TABLE users ADD COLUMN archived_at timestamptz;
