-- Engine start-up: settle what a crash left behind and rebuild the counters.

-- name: fail_unknown
-- A subtask found `sending` may or may not have reached the provider: failed, never resent.
WITH failed AS (
    UPDATE subtasks SET status = 'failed', error = $1, settled_at = $2
    WHERE status = 'sending' AND from_address IS NOT NULL   -- every sending row; subtasks_in_flight
    RETURNING campaign_id
)
SELECT campaign_id, count(*)::int AS n FROM failed GROUP BY campaign_id;

-- name: reconcile_campaigns
-- Campaign counters are caches of the subtasks table. The active campaigns, and those whose
-- `sending` subtasks were just failed ($1): a campaign cancelled while a send was in flight is
-- no longer active, yet its failed_count moved.
UPDATE campaigns c
SET sent_count = x.sent, failed_count = x.failed, cancelled_count = x.cancelled, total = x.total
FROM (SELECT id FROM campaigns WHERE status IN ('running', 'paused')
      UNION SELECT unnest($1::uuid[])) a
CROSS JOIN LATERAL (
    -- One campaign at a time through subtasks_campaign_id_seq_key: the recount reads these
    -- campaigns' rows only, however many settled ones the table holds (an `IN (…) OR = ANY(…)`
    -- over the whole table planned a sequential scan: 6 s on 20M rows).
    SELECT count(*) FILTER (WHERE s.status = 'sent')::int AS sent,
           count(*) FILTER (WHERE s.status = 'failed')::int AS failed,
           count(*) FILTER (WHERE s.status = 'cancelled')::int AS cancelled,
           count(*)::int AS total
    FROM subtasks s WHERE s.campaign_id = a.id
) x
WHERE c.id = a.id AND x.total > 0
  AND (c.sent_count, c.failed_count, c.cancelled_count, c.total) IS DISTINCT FROM (x.sent, x.failed, x.cancelled, x.total)
RETURNING c.id;

-- name: reconcile_services
-- used_today = requests bound in the current quota day (attempted at or after quota_day_start);
-- remaining moves by the same correction so a manual adjustment of it survives. The one rule
-- for that count: at start-up for every service ($1 null), and live for one service whose
-- reset time change moved its quota day start (services.update).
UPDATE services v
SET used_today = x.used,
    remaining_today = greatest(v.remaining_today - (x.used - v.used_today), 0),
    last_request_at = CASE WHEN x.last_at IS NULL THEN v.last_request_at
                           ELSE greatest(v.last_request_at, x.last_at) END
FROM (
    SELECT v2.id,
           (SELECT count(*) FROM subtasks s
             WHERE s.service_id = v2.id AND s.attempted_at >= v2.quota_day_start)::int AS used,
           (SELECT max(s.attempted_at) FROM subtasks s WHERE s.service_id = v2.id) AS last_at
    FROM services v2
    WHERE $1::uuid IS NULL OR v2.id = $1
) x
WHERE v.id = x.id
  AND (v.used_today <> x.used OR x.last_at > coalesce(v.last_request_at, '-infinity'))
RETURNING v.id;

-- name: ledger_mismatches
SELECT u.id FROM users u
WHERE u.quota_remaining <> (SELECT coalesce(sum(q.delta), 0) FROM quota_log q WHERE q.user_id = u.id);
