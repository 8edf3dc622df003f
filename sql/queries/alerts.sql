-- Alert channels, rules and the alert list (the admin API). Only `channel_sealed` reads the
-- sealed config (URL and secret); everything else shows the masked hint.

-- name: channel_name_taken
SELECT id FROM alert_channels WHERE lower(name) = lower($1) AND id IS DISTINCT FROM $2;

-- name: channel_insert
INSERT INTO alert_channels (name, kind, config, config_hint, enabled)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, name, kind, config_hint, enabled, created_at, updated_at;

-- name: channel_get
SELECT id, name, kind, config_hint, enabled, created_at, updated_at FROM alert_channels WHERE id = $1;

-- name: channel_sealed
-- Held for the rest of an edit; also what a test send opens.
SELECT id, name, kind, config, config_hint, enabled FROM alert_channels WHERE id = $1 FOR UPDATE;

-- name: channel_list
SELECT id, name, kind, config_hint, enabled, created_at, updated_at, count(*) OVER () AS total
FROM alert_channels ORDER BY lower(name), id LIMIT $1 OFFSET $2;

-- name: channel_update
UPDATE alert_channels SET name = $2, config = $3, config_hint = $4, enabled = $5, updated_at = now()
WHERE id = $1
RETURNING id, name, kind, config_hint, enabled, created_at, updated_at;

-- name: channel_delete
DELETE FROM alert_channels WHERE id = $1 RETURNING id;

-- name: channels_known
SELECT id FROM alert_channels WHERE id = ANY($1::uuid[]);

-- name: rule_name_taken
SELECT id FROM alert_rules WHERE lower(name) = lower($1) AND id IS DISTINCT FROM $2;

-- name: rule_insert
INSERT INTO alert_rules (name, kind, threshold, enabled) VALUES ($1, $2, $3, $4) RETURNING id;

-- name: rule_lock
SELECT id, name, kind, threshold, enabled FROM alert_rules WHERE id = $1 FOR UPDATE;

-- name: rule_update
UPDATE alert_rules SET name = $2, threshold = $3, enabled = $4, updated_at = now() WHERE id = $1;

-- name: rule_clear_channels
DELETE FROM alert_rule_channels WHERE rule_id = $1;

-- name: rule_add_channels
INSERT INTO alert_rule_channels (rule_id, channel_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING;

-- name: rule_get
SELECT r.id, r.name, r.kind, r.threshold, r.enabled, r.created_at, r.updated_at,
       coalesce(array_agg(rc.channel_id ORDER BY rc.channel_id) FILTER (WHERE rc.channel_id IS NOT NULL),
                '{}') AS channel_ids
FROM alert_rules r LEFT JOIN alert_rule_channels rc ON rc.rule_id = r.id
WHERE r.id = $1 GROUP BY r.id;

-- name: rule_list
SELECT r.id, r.name, r.kind, r.threshold, r.enabled, r.created_at, r.updated_at,
       coalesce(array_agg(rc.channel_id ORDER BY rc.channel_id) FILTER (WHERE rc.channel_id IS NOT NULL),
                '{}') AS channel_ids,
       count(*) OVER () AS total
FROM alert_rules r LEFT JOIN alert_rule_channels rc ON rc.rule_id = r.id
GROUP BY r.id ORDER BY lower(r.name), r.id LIMIT $1 OFFSET $2;

-- name: rule_delete
DELETE FROM alert_rules WHERE id = $1 RETURNING id;

-- name: alert_list
-- $1: 'open' | 'cleared' | 'all'. Newest first, each with its deliveries' state.
SELECT a.id, a.rule_id, r.name AS rule, a.kind, a.subject, a.message, a.data, a.opened_at, a.cleared_at,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'channel_id', d.channel_id, 'channel', c.name, 'state', d.state, 'attempts', d.attempts,
                    'next_attempt_at', CASE WHEN d.state = 'pending' THEN d.next_attempt_at END,
                    'last_error', d.last_error, 'delivered_at', d.delivered_at) ORDER BY c.name)
                 FROM alert_deliveries d JOIN alert_channels c ON c.id = d.channel_id
                 WHERE d.alert_id = a.id), '[]') AS deliveries,
       count(*) OVER () AS total
FROM alerts a JOIN alert_rules r ON r.id = a.rule_id
WHERE $1 = 'all' OR ($1 = 'open') = (a.cleared_at IS NULL)
ORDER BY a.opened_at DESC, a.id LIMIT $2 OFFSET $3;
