-- Dispatch engine: hot-state loading, claims, binds and settlements.

-- name: load_services
SELECT id, name, provider, domain, credentials, base_url, daily_quota, reset_time, send_interval, request_timeout,
       enabled, used_today, remaining_today, quota_day_start, last_request_at,
       consecutive_failures, throttled_until, abnormal_frozen, abnormal_reason, freeze_after
FROM services WHERE $1::uuid IS NULL OR id = $1;

-- name: load_mappings
SELECT user_id, service_id FROM user_service_map_items WHERE $1::uuid IS NULL OR user_id = $1;

-- name: load_active_campaigns
-- Running and paused campaigns: the engine's working set.
SELECT c.id, c.user_id, c.status, c.pause_reason, c.sender_name, c.total, c.reserved, c.released, c.created_at, c.name,
       c.send_window
FROM campaigns c
WHERE c.status IN ('running', 'paused') AND ($1::uuid IS NULL OR c.id = $1)
ORDER BY c.created_at, c.id;

-- name: campaign_templates
SELECT t.id, t.subject, t.html_body, t.text_body
FROM campaign_templates ct JOIN templates t ON t.id = ct.template_id
WHERE ct.campaign_id = $1 ORDER BY ct.position;

-- name: claim
-- One batch of a campaign's pending subtasks for the in-memory buffer, claimed in one short
-- transaction with FOR UPDATE SKIP LOCKED: rows another transaction holds (a cancel, a settle)
-- are passed over, never waited for. Passing a row over must not move the cursor past it
-- (a cancel that rolls back leaves it pending): see claim_gap.
WITH picked AS (
    SELECT s.id, s.seq, s.email, s.template_id, s.contact_id, s.attempt
    FROM subtasks s
    WHERE s.campaign_id = $1
      AND s.status = 'pending'                    -- rows after the cursor are nearly all pending
      AND s.seq > $2                              -- from the last claimed key on subtasks_campaign_id_seq_key
    ORDER BY s.seq                                -- index order, so LIMIT stops early
    LIMIT $3
    FOR UPDATE OF s SKIP LOCKED                   -- held rows are passed over, not waited for
)
SELECT p.id, p.seq, p.email, p.template_id,
       coalesce(c.name, '') AS name, nullif(c.fields, '{}'::jsonb) AS fields, p.attempt  -- null: no fields dict held
FROM picked p
LEFT JOIN contacts c ON c.id = p.contact_id       -- a deleted contact still gets its email
ORDER BY p.seq;

-- name: claim_gap
-- Inside the claim's transaction: the first pending row after the cursor, up to $3 (the last
-- claimed seq; null = no bound), that the claim did not take ($4) — one another transaction
-- holds. Null = nothing was passed over.
SELECT min(seq) FROM subtasks
WHERE campaign_id = $1 AND status = 'pending' AND seq > $2 AND ($3::int IS NULL OR seq <= $3)
  AND NOT (id = ANY($4::uuid[]));

-- name: bind
-- Records that these subtasks are being sent, BEFORE any provider call (at-most-once). The
-- services' counters are not written here: the engine holds them and writes them behind
-- (service_counters; recovery recounts them from subtasks), so a bind touches subtasks only.
-- Fenced: nothing is bound unless epoch $5 still holds an unexpired lease. Only rows still
-- pending are bound, and only in campaigns still active: a cancel that got there first wins,
-- even when a throttled result put the subtask back to pending after it. Idempotent, so a bind
-- whose reply was lost can be sent again: a row already `sending` with this very service and
-- time was bound by the first attempt. Returns the ids NOT bound (usually none) and whether the
-- lease held.
-- Plan (pinned by tests/test_dispatch_plans.py): subtasks are reached through their primary key
-- (`id = ANY($1)`), the campaign by a per-row lookup of its key, never a join that walks every
-- pending row of the active campaigns: the cost is the batch's, however large the table. The
-- rows not bound are found with `NOT IN` (a hashed subplan, whatever the estimates): as a
-- `NOT EXISTS` it was planned, on a large table whose statistics say no row is pending (so
-- `bound` is estimated at one row), as a nested loop over `bound` per id, n² / 2 comparisons
-- (half a million, ~150 ms, per 1,000-row bind). It also comes first, so the snapshot probe
-- below runs only for the rows not bound (usually none).
WITH b AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[])
        AS b(id, service_id, from_address, at)
), lease AS (
    SELECT EXISTS (SELECT 1 FROM engine_leader WHERE epoch = $5 AND expires_at > now()) AS held
), bound AS (
    UPDATE subtasks s
    SET status = 'sending', service_id = b.service_id, from_address = b.from_address, attempted_at = b.at
    FROM b
    WHERE s.id = b.id                                 -- the primary key, one probe per id
      AND s.status = 'pending' AND (SELECT held FROM lease)
      AND (SELECT c.status FROM campaigns c WHERE c.id = s.campaign_id) IN ('running', 'paused')
    RETURNING s.id
)
SELECT b.id, (SELECT held FROM lease) AS leased FROM b
WHERE b.id NOT IN (SELECT id FROM bound)                -- ids are never null
  AND NOT EXISTS (SELECT 1 FROM subtasks s                -- the snapshot: bound by an earlier attempt
                  WHERE s.id = b.id AND s.status = 'sending' AND s.service_id = b.service_id
                    AND s.attempted_at = b.at);

-- name: service_counters
-- The engine's write-behind of its services' counters, in one statement (id order: never
-- crosswise with another multi-row write of services). Only where the row is still in the
-- quota day the counts belong to (a reset made by another process since wins, and the engine
-- reads its counters back), and only while epoch $6 holds the lease: a leader that lost it
-- never writes its memory over its successor's recount.
UPDATE services v
SET used_today = u.used, remaining_today = u.remaining,
    last_request_at = CASE WHEN u.last_at IS NULL THEN v.last_request_at
                           ELSE greatest(v.last_request_at, u.last_at) END
FROM (SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::timestamptz[], $5::timestamptz[])
          AS u(id, used, remaining, last_at, day) ORDER BY id) u
WHERE v.id = u.id AND v.quota_day_start = u.day
  AND EXISTS (SELECT 1 FROM engine_leader WHERE epoch = $6 AND expires_at > now());

-- name: settle_plan
-- Inside the settle's transaction, before engine.settle: its update takes the probed rows by
-- ctid, and with a sequential scan ruled out that is a Tid Scan whatever the batch's size or
-- the statistics (at 5,000 rows the planner otherwise hashed the whole table).
SET LOCAL enable_seqscan = off;

-- name: settle
-- Settles a batch of results. sent/failed close the subtask. A request that does not count
-- (`give_back`: throttled, or never made because the email could not be rendered or it never
-- left this machine) is unbound (the engine gives it back to the service's daily count it holds
-- in memory); a throttled or not_sent subtask (a requeue) goes back to pending (or to
-- cancelled when its campaign was cancelled meanwhile). Campaign counters move by what changed.
-- Plan (pinned by tests/test_dispatch_plans.py): `hit` probes the primary key once per result
-- (OFFSET 0 keeps the probe a per-row subquery: the planner cannot fold it into a join that
-- walks a campaign's rows, the rows in flight or the table, which it did on statistics taken
-- before a fan-out: 80 s for 2,000 rows of a 120k table); the update then takes each probed
-- row by its ctid (the settle's transaction sets enable_seqscan off: a Tid Scan, never a hash
-- join over the whole table). A row updated by someone else between probe and update (a
-- feedback webhook's outcome) is not written: it comes back as `missed`, for the next flush.
-- The campaigns' counters are locked in id order first: two settles at once never wait on
-- each other crosswise. Only a requeue asks its campaign's status (by key): a join of
-- `campaigns` was planned, on a large table's estimate of one row in flight, as a nested loop
-- reading every campaign ever run per result (200 old ones: 80 ms per 1,000 rows).
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::uuid[],
                         $7::timestamptz[], $8::boolean[])
        AS r(id, outcome, message_id, error, at, service_id, attempted, give_back)
), hit AS MATERIALIZED (
    SELECT r.*, p.tid, p.campaign_id, p.cancelled
    FROM r CROSS JOIN LATERAL (
        SELECT s.ctid AS tid, s.campaign_id,
               CASE WHEN r.outcome IN ('throttled', 'not_sent')  -- only a requeue asks its campaign
                    THEN (SELECT c.status = 'cancelled' FROM campaigns c WHERE c.id = s.campaign_id)
               END AS cancelled
        FROM subtasks s
        WHERE s.id = r.id AND s.status = 'sending'
        OFFSET 0
    ) p
), changed AS (
    UPDATE subtasks s
    SET status = CASE WHEN h.outcome NOT IN ('throttled', 'not_sent') THEN h.outcome
                      WHEN h.cancelled THEN 'cancelled'
                      ELSE 'pending' END,
        message_id = h.message_id,
        error = h.error,
        settled_at = CASE WHEN h.outcome IN ('throttled', 'not_sent') AND NOT h.cancelled THEN NULL
                          ELSE h.at END,
        service_id = CASE WHEN h.give_back THEN NULL ELSE s.service_id END,
        from_address = CASE WHEN h.give_back THEN NULL ELSE s.from_address END,
        attempted_at = CASE WHEN h.give_back THEN NULL ELSE s.attempted_at END
    FROM hit h
    WHERE s.ctid = h.tid                              -- the very row version the probe saw
    RETURNING s.id, s.campaign_id, s.status, h.outcome
), per_campaign AS (
    SELECT campaign_id,
           count(*) FILTER (WHERE status = 'sent')::int AS sent,
           count(*) FILTER (WHERE status = 'failed')::int AS failed,
           count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled
    FROM changed GROUP BY campaign_id
), locked AS (
    SELECT c.id FROM campaigns c WHERE c.id IN (SELECT campaign_id FROM per_campaign)
    ORDER BY c.id FOR NO KEY UPDATE                   -- id order (LockRows above the Sort)
), campaigns_moved AS (
    UPDATE campaigns c
    SET sent_count = c.sent_count + p.sent, failed_count = c.failed_count + p.failed,
        cancelled_count = c.cancelled_count + p.cancelled, updated_at = now()
    FROM per_campaign p JOIN locked l ON l.id = p.campaign_id
    WHERE c.id = p.campaign_id
    RETURNING c.id
)
-- One row per campaign and final status (id NULL), plus one row per requeued request (with
-- its id: the engine re-queues or refunds each) and per missed one: a flush of thousands
-- returns a handful.
SELECT campaign_id, status, count(*)::int AS n, NULL::uuid AS id
FROM changed WHERE outcome NOT IN ('throttled', 'not_sent') GROUP BY campaign_id, status
UNION ALL
SELECT campaign_id, status, 1, id FROM changed WHERE outcome IN ('throttled', 'not_sent')
UNION ALL
SELECT h.campaign_id, 'missed', 1, h.id FROM hit h WHERE NOT EXISTS (SELECT 1 FROM changed c WHERE c.id = h.id);

-- name: lock_requeued_campaigns
-- Before a throttled (or never-sent) subtask goes back to pending, the batch's campaigns are
-- locked: a cancel in progress finishes first, and the settle then sees it and cancels the
-- subtask instead (otherwise it would be pending inside a cancelled campaign). Every campaign
-- the settle will count (not only the requeued ones), in id order, in the mode the counters'
-- update takes: a share lock upgraded later would deadlock two settles of one campaign.
SELECT c.id FROM campaigns c
WHERE c.id = ANY($1::uuid[])
ORDER BY c.id
FOR NO KEY UPDATE OF c;

-- name: service_live_state
-- Writes the in-memory failure count and throttle freeze of several services at once.
UPDATE services v
SET consecutive_failures = u.failures, throttled_until = u.throttled_until, updated_at = now()
FROM unnest($1::uuid[], $2::int[], $3::timestamptz[]) AS u(id, failures, throttled_until)
WHERE v.id = u.id;

-- name: status_log_many
INSERT INTO service_status_log (service_id, kind, message, data, operator_id, created_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::uuid[], $6::timestamptz[]);

-- name: freeze
-- Abnormal freeze after too many consecutive failures; only the first caller logs it. With an
-- `unfreeze_after`, it comes due then (thaw.sql).
WITH frozen AS (
    UPDATE services SET abnormal_frozen = true, abnormal_reason = $2, consecutive_failures = $3,
                        frozen_until = $4::timestamptz + make_interval(secs => unfreeze_after), unfreeze_probes = 0,
                        updated_at = now()
    WHERE id = $1 AND NOT abnormal_frozen
    RETURNING id
)
INSERT INTO service_status_log (service_id, kind, message, data, created_at)
SELECT id, 'frozen', $2, jsonb_build_object('consecutive_failures', $3::int), $4 FROM frozen
RETURNING service_id;

-- name: unfreeze
WITH thawed AS (
    UPDATE services SET abnormal_frozen = false, abnormal_reason = NULL, consecutive_failures = 0,
                        frozen_until = NULL, unfreeze_probes = 0, updated_at = now()
    WHERE id = $1 AND abnormal_frozen
    RETURNING id
)
INSERT INTO service_status_log (service_id, kind, message, operator_id, created_at)
SELECT id, 'unfrozen', 'unfrozen by an administrator', $2, $3 FROM thawed
RETURNING service_id;

-- name: complete_campaigns
-- Completed = every subtask settled; in flight = subtasks_in_flight (from_address names its predicate).
UPDATE campaigns c SET status = 'completed', pause_reason = NULL, finished_at = $2, updated_at = now()
WHERE c.id = ANY($1::uuid[]) AND c.status IN ('running', 'paused')
  AND NOT EXISTS (SELECT 1 FROM subtasks s WHERE s.campaign_id = c.id AND s.status = 'pending')
  AND NOT EXISTS (SELECT 1 FROM subtasks s WHERE s.campaign_id = c.id AND s.status = 'sending'
                                              AND s.from_address IS NOT NULL)
RETURNING c.id, c.user_id, c.sent_count, c.failed_count;

-- name: set_pause
-- Routing pause/unpause of many campaigns; a USER pause is never touched here.
UPDATE campaigns c
SET status = CASE WHEN u.reason IS NULL THEN 'running' ELSE 'paused' END,
    pause_reason = u.reason, updated_at = now()
FROM unnest($1::uuid[], $2::text[]) AS u(id, reason)
WHERE c.id = u.id AND c.status IN ('running', 'paused')
  AND coalesce(c.pause_reason, '') <> 'USER'
  AND coalesce(c.pause_reason, '') IS DISTINCT FROM coalesce(u.reason, '')
RETURNING c.id, c.status, c.pause_reason;

-- name: events_many
INSERT INTO campaign_events (campaign_id, kind, message, data, created_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[]);

-- name: user_pause
UPDATE campaigns SET status = 'paused', pause_reason = 'USER', updated_at = now()
WHERE id = $1 AND status IN ('running', 'paused') AND pause_reason IS DISTINCT FROM 'USER'
RETURNING id;

-- name: user_resume
-- Back to running; the engine re-applies the routing checks right after.
UPDATE campaigns SET status = 'running', pause_reason = NULL, updated_at = now()
WHERE id = $1 AND status = 'paused'
RETURNING id;

-- name: lock_campaign
SELECT id, user_id, status, pause_reason, reserved, released, total, sender_id, scheduled_at
FROM campaigns WHERE id = $1 FOR UPDATE;

-- name: cancel_subtasks
-- Never-attempted subtasks only: sending ones are already on their way.
WITH gone AS (
    UPDATE subtasks SET status = 'cancelled', settled_at = $2
    WHERE campaign_id = $1 AND status = 'pending'
    RETURNING 1
)
SELECT count(*)::int FROM gone;

-- name: cancel_campaign
-- The refunded units count as released (see domain/quota_units.py).
UPDATE campaigns
SET status = 'cancelled', pause_reason = NULL, finished_at = $2, updated_at = now(),
    cancelled_count = cancelled_count + $3, reserved = reserved - $4, released = released + $4
WHERE id = $1;

-- name: take_reservation
-- Refund of units a campaign no longer needs (or charge of extra ones): moves `reserved`.
UPDATE campaigns SET reserved = reserved + $2, updated_at = now() WHERE id = $1;

-- name: release_units
-- Units of subtasks never offered to a provider go back to the owner (see campaign_control):
-- never rendered, suppressed, or cancelled after the cancel (a throttled request settling across it).
UPDATE campaigns SET reserved = reserved - $2, released = released + $2, updated_at = now() WHERE id = $1;

-- name: user_shortfall_campaigns
SELECT id, total - released AS total, reserved FROM campaigns
WHERE user_id = $1 AND status = 'paused' AND pause_reason = 'NO_USER_QUOTA' ORDER BY created_at, id;

-- name: service_exists
SELECT 1 FROM services WHERE id = $1;

-- name: notify
SELECT pg_notify($1, $2);

-- name: campaign_owners
-- Owner and name of each campaign an event batch is about (the live copies carry both).
SELECT id, user_id, name FROM campaigns WHERE id = ANY($1::uuid[]);
