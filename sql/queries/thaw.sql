-- Timed unfreezes (engine/dispatch/thaw.py): a freeze with a `frozen_until` lifts itself then,
-- after a credentials probe when the service asks for one.

-- name: next_due
SELECT min(frozen_until) FROM services
WHERE frozen_until IS NOT NULL AND abnormal_frozen AND unfreeze_after IS NOT NULL AND archived_at IS NULL;

-- name: due
-- Freezes due at $1 (walks services_frozen_until); the sealed credentials are for the probe only.
SELECT id, name, provider, credentials, base_url, probe_before_unfreeze, frozen_until, unfreeze_probes
FROM services
WHERE frozen_until <= $1 AND abnormal_frozen AND unfreeze_after IS NOT NULL AND archived_at IS NULL
ORDER BY frozen_until
LIMIT $2;

-- name: thaw
-- Lifts the freeze unless it changed since it was read ($2: the frozen_until read): an
-- administrator's unfreeze, or a new freeze, wins.
WITH thawed AS (
    UPDATE services SET abnormal_frozen = false, abnormal_reason = NULL, consecutive_failures = 0,
                        frozen_until = NULL, unfreeze_probes = 0, updated_at = now()
    WHERE id = $1 AND abnormal_frozen AND frozen_until = $2
    RETURNING id
)
INSERT INTO service_status_log (service_id, kind, message, data, created_at)
SELECT id, 'unfrozen', $3, $4, $5 FROM thawed
RETURNING service_id;

-- name: probe_failed
-- Stays frozen with the probe's error as its reason; the next probe at $4.
WITH kept AS (
    UPDATE services SET abnormal_reason = $3, frozen_until = $4, unfreeze_probes = unfreeze_probes + 1,
                        updated_at = now()
    WHERE id = $1 AND abnormal_frozen AND frozen_until = $2
    RETURNING id
)
INSERT INTO service_status_log (service_id, kind, message, data, created_at)
SELECT id, 'probe_failed', $3, $5, $6 FROM kept
RETURNING service_id;
