-- Per-minute send counters the engine writes behind (engine/live/send_minutes.py).

-- name: add
-- $1 minutes, $2 services, $3 campaigns, $4 users, $5 sent, $6 failed: one row per key, the
-- keys sorted by the caller (one writer, but sorted keys cannot deadlock with a second one).
-- Additive, so a batch retried after a lost answer would double count: the caller retries only
-- batches whose transaction failed (rolled back).
INSERT INTO send_minutes AS m (minute, service_id, campaign_id, user_id, sent, failed)
SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int[], $6::int[])
ON CONFLICT (minute, service_id, campaign_id)
DO UPDATE SET sent = m.sent + EXCLUDED.sent, failed = m.failed + EXCLUDED.failed;

-- name: prune
-- $1 oldest minute kept.
DELETE FROM send_minutes WHERE minute < $1;
