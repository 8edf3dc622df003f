-- Timed unfreeze of a service the engine froze (failures in a row, reputation guard), optionally
-- after a credentials probe (issue 13 item 5; engine/dispatch/thaw.py).
--   unfreeze_after         seconds an engine freeze lasts; null = until an administrator unfreezes it
--   probe_before_unfreeze  probe the credentials when the freeze comes due; unfreeze only if it passes
--   frozen_until           when the freeze comes due (set by the freeze, moved on by a failed probe)
--   unfreeze_probes        failed probes since the freeze (the backoff: domain/thaw_rules.py)
ALTER TABLE services
    ADD COLUMN unfreeze_after integer CHECK (unfreeze_after BETWEEN 10 AND 604800),
    ADD COLUMN probe_before_unfreeze boolean NOT NULL DEFAULT false,
    ADD COLUMN frozen_until timestamptz,
    ADD COLUMN unfreeze_probes integer NOT NULL DEFAULT 0 CHECK (unfreeze_probes >= 0);
CREATE INDEX services_frozen_until ON services (frozen_until) WHERE frozen_until IS NOT NULL;

ALTER TABLE service_status_log DROP CONSTRAINT service_status_log_kind_check;
ALTER TABLE service_status_log ADD CONSTRAINT service_status_log_kind_check CHECK (kind IN (
    'created', 'updated', 'enabled', 'disabled', 'frozen', 'unfrozen',
    'throttled', 'reset', 'manual_adjust', 'webhook_secret', 'probe_failed'));
