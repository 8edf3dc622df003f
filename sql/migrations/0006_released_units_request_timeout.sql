-- Units given back to the owner for subtasks that were never offered to a provider (the email
-- could not be rendered for its contact). They leave `reserved` but still count in `total`, so
-- the shortfall a start could not charge stays `total - released - reserved`.
ALTER TABLE campaigns ADD COLUMN released bigint NOT NULL DEFAULT 0 CHECK (released >= 0);
-- Seconds a provider has to answer one request of this service, from the moment the request
-- has its connection (the wait for a pooled connection is not the provider's time).
ALTER TABLE services ADD COLUMN request_timeout integer NOT NULL DEFAULT 30
    CHECK (request_timeout BETWEEN 1 AND 300);
