-- A test send: one rendered message to one address through a chosen service. It is recorded as
-- a one-recipient campaign ("test send: …") so every counter stays derivable: the service's
-- used_today from subtasks, the user's quota from the ledger, the campaign's counts from its
-- subtask.

-- name: from_campaign
SELECT c.id, c.user_id, c.name, c.sender_id, c.sender_name,
       (SELECT ct.template_id FROM campaign_templates ct WHERE ct.campaign_id = c.id
        ORDER BY ct.position LIMIT 1) AS template_id
FROM campaigns c WHERE c.id = $1;

-- name: template
SELECT id, user_id, name, subject, html_body, text_body FROM templates WHERE id = $1;

-- name: sender
SELECT id, name FROM senders WHERE user_id = $1 AND lower(name) = lower($2);

-- name: contact
SELECT id, name, fields FROM contacts WHERE user_id = $1 AND lower(email) = lower($2);

-- name: mapped
SELECT EXISTS (SELECT 1 FROM user_service_map_items WHERE user_id = $1 AND service_id = $2);

-- name: record
-- The campaign and its one subtask, already `sending` (written before the provider is called),
-- counted against the service in the same statement like a bind, and fenced like one: nothing
-- is written unless epoch $11 still holds an unexpired lease (no row comes back then).
WITH lease AS (
    SELECT 1 FROM engine_leader WHERE epoch = $11 AND expires_at > now()
), c AS (
    INSERT INTO campaigns (user_id, name, sender_id, sender_name, status, reserved, planned, total, started_at,
                           created_at, updated_at)
    SELECT $1, $2, $3, $4, 'running', 1, 1, 1, $9, $9, $9 FROM lease
    RETURNING id
), s AS (
    INSERT INTO subtasks (campaign_id, seq, contact_id, email, template_id, status, service_id, from_address,
                          attempted_at)
    SELECT c.id, 1, $5, $6, $7, 'sending', $8, $10, $9 FROM c
    RETURNING id, campaign_id
), counted AS (
    UPDATE services v SET used_today = v.used_today + 1, remaining_today = greatest(v.remaining_today - 1, 0),
                          last_request_at = greatest(v.last_request_at, $9), updated_at = now()
    FROM s WHERE v.id = $8
)
SELECT s.id AS subtask_id, s.campaign_id FROM s;

-- name: settle_sent
WITH s AS (
    UPDATE subtasks SET status = 'sent', message_id = $2, settled_at = $3 WHERE id = $1 RETURNING campaign_id
)
UPDATE campaigns c SET status = 'completed', sent_count = 1, finished_at = $3, updated_at = now()
FROM s WHERE c.id = s.campaign_id;

-- name: settle_failed
WITH s AS (
    UPDATE subtasks SET status = 'failed', error = $2, settled_at = $3 WHERE id = $1 RETURNING campaign_id
)
UPDATE campaigns c SET status = 'completed', failed_count = 1, finished_at = $3, updated_at = now()
FROM s WHERE c.id = s.campaign_id;

-- name: settle_not_counted
-- Throttled (the provider refused it, nothing sent): the request does not count against the
-- service and the unit goes back to the user (the caller writes the refund).
WITH s AS (
    UPDATE subtasks SET status = 'cancelled', service_id = NULL, attempted_at = NULL, error = $2, settled_at = $3
    WHERE id = $1 RETURNING campaign_id
), v AS (
    UPDATE services SET used_today = greatest(used_today - 1, 0), remaining_today = remaining_today + 1,
                        updated_at = now()
    WHERE id = $4
)
UPDATE campaigns c SET status = 'cancelled', cancelled_count = 1, reserved = 0, finished_at = $3, updated_at = now()
FROM s WHERE c.id = s.campaign_id;
