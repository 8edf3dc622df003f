-- Lock order for every campaign write: campaign row, then its sender/templates/tags (FOR KEY
-- SHARE), then the owner's users row (quota_ledger). Taking the users row FOR UPDATE before any
-- insert that references users matters: the insert's foreign-key check takes FOR KEY SHARE on
-- it, and two saves each holding that while waiting for FOR UPDATE would deadlock.

-- name: lock_sender
-- FOR KEY SHARE: a concurrent sender delete (FOR UPDATE) waits for this save, then sees it.
SELECT id, name FROM senders WHERE id = $1 AND user_id = $2 FOR KEY SHARE;

-- name: lock_templates
SELECT id FROM templates WHERE id = ANY ($1::uuid[]) AND user_id = $2 FOR KEY SHARE;

-- name: lock_tags
SELECT id FROM tags WHERE id = ANY ($1::uuid[]) AND user_id = $2 FOR KEY SHARE;

-- name: count_recipients
-- Any include tag (all contacts when there is none) and no exclude tag. contacts_user_email_key
-- makes lower(email) unique per user, so counting contacts counts distinct addresses.
SELECT count(*) FROM contacts c
WHERE c.user_id = $1
  AND (cardinality ($2::uuid[]) = 0
       OR EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.contact_id = c.id AND ct.tag_id = ANY ($2::uuid[])))
  AND NOT EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.contact_id = c.id AND ct.tag_id = ANY ($3::uuid[]));

-- name: insert
INSERT INTO campaigns (id, user_id, name, sender_id, sender_name, scheduled_at, reserved, planned)
VALUES ($1, $2, $3, $4, $5, $6, $7::integer, $7::integer);

-- name: insert_templates
INSERT INTO campaign_templates (campaign_id, position, template_id)
SELECT $1::uuid, (t.ord - 1)::smallint, t.id FROM unnest ($2::uuid[]) WITH ORDINALITY AS t (id, ord);

-- name: insert_tags
INSERT INTO campaign_tags (campaign_id, tag_id, mode)
SELECT $1::uuid, id, 'include' FROM unnest ($2::uuid[]) AS id
UNION ALL
SELECT $1::uuid, id, 'exclude' FROM unnest ($3::uuid[]) AS id;

-- name: delete_templates
DELETE FROM campaign_templates WHERE campaign_id = $1;

-- name: delete_tags
DELETE FROM campaign_tags WHERE campaign_id = $1;

-- name: insert_event
INSERT INTO campaign_events (campaign_id, kind, message, data) VALUES ($1, $2, $3, $4);

-- name: get
-- $3 = the caller is an administrator (sees every campaign); others see their own only.
SELECT id, user_id, name, sender_id, sender_name, status, pause_reason, failure_reason, scheduled_at,
       reserved, planned, total, sent_count, failed_count, cancelled_count, started_at, finished_at,
       created_at, updated_at
FROM campaigns WHERE id = $1 AND (user_id = $2 OR $3::boolean);

-- name: lock
SELECT id, user_id, name, sender_id, sender_name, status, pause_reason, failure_reason, scheduled_at,
       reserved, planned, total, sent_count, failed_count, cancelled_count, started_at, finished_at,
       created_at, updated_at
FROM campaigns WHERE id = $1 AND (user_id = $2 OR $3::boolean) FOR UPDATE;

-- name: templates_of
SELECT t.id, t.name, ct.position FROM campaign_templates ct JOIN templates t ON t.id = ct.template_id
WHERE ct.campaign_id = $1 ORDER BY ct.position;

-- name: tags_of
SELECT t.id, t.name, ct.mode FROM campaign_tags ct JOIN tags t ON t.id = ct.tag_id
WHERE ct.campaign_id = $1 ORDER BY lower(t.name), t.id;

-- name: list
-- $1 NULL = every user's campaigns (administrators with ?all=true); $2 NULL = any status.
SELECT id, user_id, name, sender_id, sender_name, status, pause_reason, failure_reason, scheduled_at,
       reserved, planned, total, sent_count, failed_count, cancelled_count, started_at, finished_at,
       created_at, updated_at, count(*) OVER () AS total_rows
FROM campaigns
WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2)
ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4;

-- name: update_pending
UPDATE campaigns SET name = $2, sender_id = $3, sender_name = $4, scheduled_at = $5,
                     reserved = $6::integer, planned = $6::integer, updated_at = now()
WHERE id = $1 AND status = 'pending';

-- name: cancel_pending
UPDATE campaigns SET status = 'cancelled', reserved = 0, finished_at = now(), updated_at = now()
WHERE id = $1 AND status = 'pending';

-- name: events
SELECT id, campaign_id, kind, message, data, created_at, count(*) OVER () AS total
FROM campaign_events WHERE campaign_id = $1
ORDER BY id DESC LIMIT $2 OFFSET $3;
