-- Campaign start.

-- name: due_next
-- The earliest future time a pending campaign becomes due (uses campaigns_due).
SELECT min(scheduled_at) FROM campaigns WHERE status = 'pending' AND scheduled_at > $1;

-- name: due_ids
-- $3 > 0: leave out campaigns whose owner is at the concurrency cap (they wait, pending).
SELECT id FROM campaigns c
WHERE status = 'pending' AND (scheduled_at IS NULL OR scheduled_at <= $1)
  AND ($3::int <= 0 OR (SELECT count(*) FROM campaigns a
                        WHERE a.user_id = c.user_id AND a.status IN ('running', 'paused')
                          AND a.pause_reason IS DISTINCT FROM 'USER') < $3::int)
ORDER BY scheduled_at NULLS FIRST, created_at, id LIMIT $2;

-- name: active_campaigns
-- The owner's active campaigns (running, or paused by the system), counted under a lock on the
-- user row so two starts or resumes of one user cannot both take the last slot. $2 is left out.
WITH owner AS (SELECT id FROM users WHERE id = $1 FOR UPDATE)
SELECT count(*) FROM campaigns a, owner
WHERE a.user_id = owner.id AND a.id <> $2 AND a.status IN ('running', 'paused')
  AND a.pause_reason IS DISTINCT FROM 'USER';

-- name: lock_pending
SELECT id, user_id, status, sender_id, sender_name, reserved, planned
FROM campaigns WHERE id = $1 AND status = 'pending' FOR UPDATE SKIP LOCKED;

-- name: sender_exists
SELECT EXISTS (SELECT 1 FROM senders WHERE id = $1 AND user_id = $2);

-- name: create_subtasks
-- Every recipient in one set-based statement: contacts of the owner with any include tag (all
-- contacts when there is none) and no exclude tag, numbered in email order, templates dealt
-- out round-robin by seq so the spread is even and deterministic. One per lower(email) needs
-- no DISTINCT: contacts_user_email_key makes (user_id, lower(email)) unique, and it also hands
-- the rows over in lower(email) order, so numbering them needs no sort either (a million-row
-- sort spilled to disk before).
WITH inc AS (
    SELECT tag_id FROM campaign_tags WHERE campaign_id = $1 AND mode = 'include'
), exc AS (
    SELECT tag_id FROM campaign_tags WHERE campaign_id = $1 AND mode = 'exclude'
), numbered AS (
    SELECT c.id, c.email, row_number() OVER (ORDER BY lower(c.email))::int AS seq
    FROM contacts c
    WHERE c.user_id = $2
      AND (NOT EXISTS (SELECT 1 FROM inc)
           OR EXISTS (SELECT 1 FROM contact_tags ct JOIN inc ON inc.tag_id = ct.tag_id WHERE ct.contact_id = c.id))
      AND NOT EXISTS (SELECT 1 FROM contact_tags ct JOIN exc ON exc.tag_id = ct.tag_id WHERE ct.contact_id = c.id)
      -- feedback: suppressed addresses (the owner's list or the admin-wide one) are left out.
      AND NOT EXISTS (SELECT 1 FROM suppressions x
                      WHERE (x.user_id = $2 OR x.user_id IS NULL) AND x.email = lower(c.email))
), ins AS (
    INSERT INTO subtasks (campaign_id, seq, contact_id, email, template_id)
    SELECT $1, n.seq, n.id, n.email, ($3::uuid[])[((n.seq - 1) % cardinality($3::uuid[])) + 1]
    FROM numbered n
    RETURNING 1
)
SELECT count(*)::int FROM ins;

-- name: count_suppressed
-- feedback: how many of the campaign's matching contacts fan-out left out as suppressed.
WITH inc AS (
    SELECT tag_id FROM campaign_tags WHERE campaign_id = $1 AND mode = 'include'
), exc AS (
    SELECT tag_id FROM campaign_tags WHERE campaign_id = $1 AND mode = 'exclude'
)
SELECT count(*)::int
FROM suppressions x JOIN contacts c ON c.user_id = $2 AND lower(c.email) = x.email
WHERE (x.user_id = $2 OR x.user_id IS NULL)
  AND (NOT EXISTS (SELECT 1 FROM inc)
       OR EXISTS (SELECT 1 FROM contact_tags ct JOIN inc ON inc.tag_id = ct.tag_id WHERE ct.contact_id = c.id))
  AND NOT EXISTS (SELECT 1 FROM contact_tags ct JOIN exc ON exc.tag_id = ct.tag_id WHERE ct.contact_id = c.id);

-- name: set_suppressed
UPDATE campaigns SET suppressed_count = $2 WHERE id = $1;

-- name: mark_started
UPDATE campaigns
SET status = $2, pause_reason = $3, total = $4, reserved = $5, started_at = $6, updated_at = now()
WHERE id = $1;

-- name: mark_failed
UPDATE campaigns
SET status = 'failed', failure_reason = $2, reserved = 0, finished_at = $3, updated_at = now()
WHERE id = $1;
