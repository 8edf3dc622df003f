-- The alert runtime: what the rules look at, opening and clearing alerts, and deliveries.

-- name: rules
SELECT id, name, kind, threshold FROM alert_rules WHERE enabled ORDER BY id;

-- name: services
SELECT id, name, enabled, abnormal_frozen, abnormal_reason, daily_quota, used_today, remaining_today
FROM services;

-- name: paused_campaigns
-- Paused by the system since the first `paused` event after the last `resumed` one: a change of
-- reason while paused does not restart the count.
SELECT c.id, c.name, c.user_id, c.pause_reason,
       coalesce((SELECT min(e.created_at) FROM campaign_events e
                 WHERE e.campaign_id = c.id AND e.kind = 'paused'
                   AND e.id > coalesce((SELECT max(r.id) FROM campaign_events r
                                        WHERE r.campaign_id = c.id AND r.kind = 'resumed'), 0)),
                c.updated_at) AS paused_since
FROM campaigns c WHERE c.status = 'paused' AND c.pause_reason <> 'USER';

-- name: spending_users
-- Users who have a campaign that still needs quota (saved, running or paused).
SELECT u.id, u.username, u.quota_remaining FROM users u
WHERE u.enabled AND EXISTS (SELECT 1 FROM campaigns c
                            WHERE c.user_id = u.id AND c.status IN ('pending', 'running', 'paused'));

-- name: open_alerts
SELECT a.id, a.rule_id, a.subject FROM alerts a WHERE a.cleared_at IS NULL;

-- name: open
-- The partial unique index alerts_open_key makes a second opening of the same condition a no-op,
-- also when two processes evaluate at once. $7: one-shot alerts are cleared as they open.
INSERT INTO alerts (rule_id, kind, subject, message, data, opened_at, cleared_at)
SELECT x.rule_id, x.kind, x.subject, x.message, x.data, $6, CASE WHEN $7 THEN $6::timestamptz END
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[]) AS x(rule_id, kind, subject, message, data)
ON CONFLICT (rule_id, subject) WHERE cleared_at IS NULL DO NOTHING
RETURNING id;

-- name: enqueue
-- One delivery per new alert and each enabled channel of its rule, due at once.
INSERT INTO alert_deliveries (alert_id, channel_id, next_attempt_at)
SELECT a.id, rc.channel_id, $2
FROM alerts a
JOIN alert_rule_channels rc ON rc.rule_id = a.rule_id
JOIN alert_channels ch ON ch.id = rc.channel_id AND ch.enabled
WHERE a.id = ANY($1::uuid[]);

-- name: clear
UPDATE alerts SET cleared_at = $2 WHERE id = ANY($1::uuid[]) AND cleared_at IS NULL;

-- name: claim
-- Due deliveries, leased for $3 seconds (a deliverer that dies mid-post leaves them to be retried
-- after the lease; SKIP LOCKED lets several processes deliver without sending twice).
UPDATE alert_deliveries d SET next_attempt_at = $2::timestamptz + make_interval(secs => $3)
FROM (SELECT alert_id, channel_id FROM alert_deliveries
      WHERE state = 'pending' AND next_attempt_at <= $2
      ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due,
     alerts a, alert_rules r, alert_channels c
WHERE d.alert_id = due.alert_id AND d.channel_id = due.channel_id
  AND a.id = d.alert_id AND r.id = a.rule_id AND c.id = d.channel_id
RETURNING d.alert_id, d.channel_id, d.attempts, a.kind, a.subject, a.message, a.data, a.opened_at,
          r.name AS rule, c.kind AS channel_kind, c.config, c.enabled;

-- name: settle
-- $3: delivered; $4: the error (null when delivered); $5: no more attempts; $6: now;
-- $7: when to try again.
UPDATE alert_deliveries d SET
    attempts        = d.attempts + 1,
    state           = CASE WHEN x.ok THEN 'delivered' WHEN x.give_up THEN 'failed' ELSE 'pending' END,
    last_error      = x.error,
    delivered_at    = CASE WHEN x.ok THEN $6::timestamptz END,
    next_attempt_at = x.retry_at
FROM unnest($1::uuid[], $2::uuid[], $3::boolean[], $4::text[], $5::boolean[], $7::timestamptz[])
     AS x(alert_id, channel_id, ok, error, give_up, retry_at)
WHERE d.alert_id = x.alert_id AND d.channel_id = x.channel_id;

-- name: next_due
SELECT min(next_attempt_at) FROM alert_deliveries WHERE state = 'pending';
