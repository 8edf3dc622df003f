-- Leadership as a lease with fencing (replaces the session advisory lock): one row, whose epoch
-- grows by one at every change of leader. Every bind names the epoch it was made under and is
-- refused unless that epoch still holds an unexpired lease (engine.bind).
CREATE TABLE engine_leader (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),   -- a single row
    epoch       bigint NOT NULL CHECK (epoch > 0),
    holder      text NOT NULL,                                 -- the engine: host, pid, random part
    since       timestamptz NOT NULL,                          -- when this epoch began
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
