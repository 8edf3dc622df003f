-- Sends per service, campaign and minute: the overview's throughput series, campaign rates and
-- users' shares come from these few rows instead of a scan of the last minutes of `subtasks`.
-- The engine counts settled results in memory and adds them here in one batched upsert every
-- few seconds (engine/live/send_minutes.py). Like every counter it is derivable: the same sums
-- can be recounted from `subtasks.settled_at`; a crash loses at most the last few seconds of it.
-- `user_id` is the campaign's owner, kept here so the per-user share needs no join.
CREATE TABLE send_minutes (
    minute      timestamptz NOT NULL,
    service_id  uuid NOT NULL,
    campaign_id uuid NOT NULL,
    user_id     uuid NOT NULL,
    sent        integer NOT NULL DEFAULT 0 CHECK (sent >= 0),
    failed      integer NOT NULL DEFAULT 0 CHECK (failed >= 0),
    PRIMARY KEY (minute, service_id, campaign_id)
);
-- One campaign's last minutes (its progress route's rate).
CREATE INDEX send_minutes_campaign ON send_minutes (campaign_id, minute);
