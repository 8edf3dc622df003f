-- Delivery feedback: provider callbacks, bounces, unsubscribes, opens and clicks.

-- name: match
-- The subtask a callback is about, by the subtask id the engine sends as custom args (a primary
-- key probe); only a subtask sent through this service ($2; NULL = any) matches.
SELECT s.id, s.campaign_id, s.email, s.service_id, s.status, c.user_id
FROM subtasks_all s JOIN campaigns c ON c.id = s.campaign_id   -- an archived campaign's late callbacks too
WHERE s.id = $1 AND ($2::uuid IS NULL OR s.service_id = $2);

-- name: match_email
-- A bounce reported by address for one campaign (the generic bounce endpoint).
SELECT s.id, s.campaign_id, s.email, s.service_id, s.status, c.user_id
FROM subtasks_all s JOIN campaigns c ON c.id = s.campaign_id
WHERE s.campaign_id = $1 AND lower(s.email) = lower($2)
ORDER BY s.attempted_at DESC NULLS LAST LIMIT 1;

-- name: insert
-- The event (no row back for a duplicate dedupe key) and whether it is the first of its kind for
-- its recipient (`first`: the funnel counts it, see migration 0013).
WITH e AS (
    INSERT INTO delivery_events (subtask_id, campaign_id, user_id, service_id, email, kind, source, dedupe_key,
                                 data, occurred_at, received_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, subtask_id, kind, campaign_id
), f AS (
    INSERT INTO delivery_firsts (subtask_id, kind, campaign_id)
    SELECT subtask_id, kind, campaign_id FROM e
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT e.id, EXISTS (SELECT FROM f) AS first FROM e;

-- name: funnel_add
-- $1 campaigns, $2 kinds, $3 recipients to add: keys sorted by the caller, so two transactions
-- adding to the same campaigns lock their rows in one order (no deadlock).
INSERT INTO campaign_funnels AS f (campaign_id, kind, recipients)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[])
ON CONFLICT (campaign_id, kind) DO UPDATE SET recipients = f.recipients + EXCLUDED.recipients;

-- name: set_outcome
-- The subtask's delivery outcome; a complaint or hard bounce is never overwritten by a later
-- delivered or soft bounce (callbacks may arrive out of order).
UPDATE subtasks SET outcome = $2
WHERE id = $1 AND (outcome IS NULL OR outcome NOT IN ('hard_bounce', 'complaint') OR $2 = 'complaint');

-- name: service_window
-- The service's last $2 accepted sends and how many of them hard-bounced or complained
-- (walks subtasks_service_attempt backwards).
WITH recent AS (
    SELECT id FROM subtasks
    WHERE service_id = $1 AND status = 'sent'
    ORDER BY attempted_at DESC LIMIT $2
)
SELECT count(*)::int AS sends,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM delivery_events e
                                      WHERE e.subtask_id = r.id AND e.kind = 'hard_bounce'))::int AS hard_bounced,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM delivery_events e
                                      WHERE e.subtask_id = r.id AND e.kind = 'complaint'))::int AS complained
FROM recent r;

-- name: guard_freeze
-- Freeze abnormally (unless already frozen) with the reputation guard's reason, logged.
WITH frozen AS (
    UPDATE services SET abnormal_frozen = true, abnormal_reason = $2, updated_at = now(),
                        frozen_until = $4::timestamptz + make_interval(secs => unfreeze_after), unfreeze_probes = 0
    WHERE id = $1 AND NOT abnormal_frozen
    RETURNING id, name
), logged AS (
    INSERT INTO service_status_log (service_id, kind, message, data, created_at)
    SELECT id, 'frozen', $2, $3, $4 FROM frozen
)
SELECT id, name FROM frozen;

-- name: retryable
-- A finished campaign's failed recipients worth another attempt: not a template failure, not
-- hard-bounced or complained, not suppressed for the owner (or for everyone), and not a request
-- whose outcome is unknown (a timeout, a dropped connection, a crash mid-send: it may have been
-- delivered, and the engine never sends a subtask twice).
SELECT s.id FROM subtasks s
WHERE s.campaign_id = $1 AND s.status = 'failed'
  AND coalesce(s.error, '') NOT LIKE 'TEMPLATE_ERROR%'
  AND coalesce(s.error, '') NOT LIKE 'TIMEOUT%'
  AND coalesce(s.error, '') NOT LIKE 'NETWORK_ERROR%'
  AND coalesce(s.error, '') NOT LIKE 'OUTCOME_UNKNOWN%'
  AND coalesce(s.outcome, '') NOT IN ('hard_bounce', 'complaint')
  AND NOT EXISTS (SELECT 1 FROM suppressions x
                  WHERE (x.user_id = $2 OR x.user_id IS NULL) AND x.email = lower(s.email));

-- name: requeue
UPDATE subtasks SET status = 'pending', service_id = NULL, from_address = NULL, attempted_at = NULL,
                    settled_at = NULL, message_id = NULL, error = NULL, outcome = NULL, attempt = attempt + 1
WHERE id = ANY($1::uuid[]) AND status = 'failed';

-- name: reopen
UPDATE campaigns SET status = 'running', finished_at = NULL, failed_count = failed_count - $2,
                     reserved = reserved + $2, attempts = attempts + 1, updated_at = now()
WHERE id = $1;

-- name: daily
-- Daily history for one service, user or campaign: sends and failures by the day they settled,
-- feedback by the day it arrived, in the business time zone ($5).
WITH sends AS (
    SELECT (s.settled_at AT TIME ZONE $5)::date AS day,
           count(*) FILTER (WHERE s.status = 'sent')::int AS sent,
           count(*) FILTER (WHERE s.status = 'failed')::int AS failed
    FROM subtasks_all s JOIN campaigns c ON c.id = s.campaign_id   -- archived campaigns' days too
    WHERE s.settled_at >= $4 AND s.status IN ('sent', 'failed')
      AND CASE $1 WHEN 'service' THEN s.service_id = $2 WHEN 'user' THEN c.user_id = $2
                  ELSE s.campaign_id = $2 END
      AND ($3::uuid IS NULL OR c.user_id = $3)
    GROUP BY 1
), fb AS (
    SELECT (e.received_at AT TIME ZONE $5)::date AS day,
           count(*) FILTER (WHERE e.kind = 'delivered')::int AS delivered,
           count(*) FILTER (WHERE e.kind IN ('hard_bounce', 'soft_bounce'))::int AS bounced,
           count(*) FILTER (WHERE e.kind = 'complaint')::int AS complained
    FROM delivery_events e
    WHERE e.received_at >= $4
      AND CASE $1 WHEN 'service' THEN e.service_id = $2 WHEN 'user' THEN e.user_id = $2
                  ELSE e.campaign_id = $2 END
      AND ($3::uuid IS NULL OR e.user_id = $3)
    GROUP BY 1
)
SELECT coalesce(s.day, f.day) AS day, coalesce(s.sent, 0) AS sent, coalesce(s.failed, 0) AS failed,
       coalesce(f.delivered, 0) AS delivered, coalesce(f.bounced, 0) AS bounced,
       coalesce(f.complained, 0) AS complained
FROM sends s FULL JOIN fb f ON f.day = s.day
ORDER BY 1;

-- name: webhook_secret
SELECT webhook_secret FROM services WHERE id = $1;

-- name: set_webhook_secret
WITH upd AS (
    UPDATE services SET webhook_secret = $2, updated_at = now() WHERE id = $1 RETURNING id
), logged AS (
    INSERT INTO service_status_log (service_id, kind, message, operator_id, created_at)
    SELECT id, 'webhook_secret', 'webhook secret rotated', $3, $4 FROM upd
)
SELECT id FROM upd;

-- name: subtask_owner
-- Links in old messages keep working after edm archive (subtasks_all).
SELECT s.id, s.campaign_id, s.email, s.service_id, c.user_id
FROM subtasks_all s JOIN campaigns c ON c.id = s.campaign_id WHERE s.id = $1;

-- name: campaign_funnel
-- A campaign's counts from its counters (kept by every settle, cancel and start) and its delivery
-- funnel, unique per recipient, from its funnel counters (kept with every event, migration 0013):
-- a few index probes whatever the campaign's size.
SELECT c.total, c.suppressed_count, c.attempts, c.sent_count AS sent, c.failed_count AS failed,
       coalesce(sum(f.recipients) FILTER (WHERE f.kind = 'delivered'), 0)::int AS delivered,
       coalesce(sum(f.recipients) FILTER (WHERE f.kind = 'hard_bounce'), 0)::int AS hard_bounced,
       coalesce(sum(f.recipients) FILTER (WHERE f.kind = 'soft_bounce'), 0)::int AS soft_bounced,
       coalesce(sum(f.recipients) FILTER (WHERE f.kind = 'complaint'), 0)::int AS complained,
       coalesce(sum(f.recipients) FILTER (WHERE f.kind = 'unsubscribe'), 0)::int AS unsubscribed,
       coalesce(sum(f.recipients) FILTER (WHERE f.kind = 'open'), 0)::int AS opened,
       coalesce(sum(f.recipients) FILTER (WHERE f.kind = 'click'), 0)::int AS clicked
FROM campaigns c LEFT JOIN campaign_funnels f ON f.campaign_id = c.id
WHERE c.id = $1
GROUP BY c.id;
