-- name: insert
INSERT INTO templates (user_id, name, subject, html_body, text_body)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, name, subject, html_body, text_body, created_at, updated_at;

-- name: list
SELECT id, name, subject, created_at, updated_at, count(*) OVER () AS total
FROM templates WHERE user_id = $1
ORDER BY created_at, id LIMIT $2 OFFSET $3;

-- name: get_own
SELECT id, name, subject, html_body, text_body, created_at, updated_at
FROM templates WHERE id = $1 AND user_id = $2;

-- name: lock_own
-- FOR UPDATE conflicts with the FOR KEY SHARE a campaign save takes on its templates.
SELECT id, name, subject, html_body, text_body, created_at, updated_at
FROM templates WHERE id = $1 AND user_id = $2 FOR UPDATE;

-- name: update
-- updated_at keys the compiled-template caches, so it must move forward on every update, even
-- for two updates within one clock tick.
UPDATE templates SET
    name = $2, subject = $3, html_body = $4, text_body = $5,
    updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
WHERE id = $1
RETURNING id, name, subject, html_body, text_body, created_at, updated_at;

-- name: in_use
SELECT EXISTS (
    SELECT 1 FROM campaign_templates ct JOIN campaigns c ON c.id = ct.campaign_id
    WHERE ct.template_id = $1 AND c.status IN ('pending', 'running', 'paused')
);

-- name: unlink_finished
-- Finished campaigns no longer need the template (their subtasks keep template_id); drop the
-- links so the foreign key lets the template go.
DELETE FROM campaign_templates ct USING campaigns c
WHERE ct.template_id = $1 AND c.id = ct.campaign_id AND c.status IN ('completed', 'failed', 'cancelled');

-- name: delete
DELETE FROM templates WHERE id = $1;

-- name: contact_vars
SELECT email, name, fields FROM contacts WHERE id = $1 AND user_id = $2;
