-- Login throttle counters while Redis is unavailable (engine.store.login_attempts).
CREATE TABLE login_attempts (
    key          text PRIMARY KEY,
    attempts     integer NOT NULL DEFAULT 0,
    started      timestamptz,
    next_allowed timestamptz
);
