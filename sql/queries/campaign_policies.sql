-- Sending policies of one campaign (send window).

-- name: lock
-- $3 = the caller is an administrator; others reach their own campaigns only.
SELECT id, status, send_window FROM campaigns WHERE id = $1 AND (user_id = $2 OR $3::boolean) FOR UPDATE;

-- name: set_window
UPDATE campaigns SET send_window = $2, updated_at = now() WHERE id = $1;

-- name: event
INSERT INTO campaign_events (campaign_id, kind, message, data, created_at) VALUES ($1, $2, $3, $4, $5);
