-- name: insert
-- The unique index on lower(name) settles races between two callers: the loser gets no row.
INSERT INTO senders (user_id, name) VALUES ($1, $2)
ON CONFLICT ((lower(name))) DO NOTHING
RETURNING id, name, created_at;

-- name: list
SELECT id, name, created_at, count(*) OVER () AS total
FROM senders WHERE user_id = $1
ORDER BY lower(name), id LIMIT $2 OFFSET $3;

-- name: get_own
SELECT id, name, created_at FROM senders WHERE id = $1 AND user_id = $2;

-- name: lock_own
-- FOR UPDATE conflicts with the FOR KEY SHARE a campaign save takes on its sender, so a delete
-- and a save that names the same sender run one after the other, never interleaved.
SELECT id FROM senders WHERE id = $1 AND user_id = $2 FOR UPDATE;

-- name: in_use
SELECT EXISTS (
    SELECT 1 FROM campaigns WHERE sender_id = $1 AND status IN ('pending', 'running', 'paused')
);

-- name: delete
-- Finished campaigns keep their sender_name; their sender_id becomes NULL (ON DELETE SET NULL).
DELETE FROM senders WHERE id = $1;
