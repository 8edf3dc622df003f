-- Units given back to the owner for subtasks that were never offered to a provider (the email
-- could not be rendered for its contact). They leave `reserved` but still count in `total`, so
-- the shortfall a start could not charge stays `total - released - reserved`.
ALTER TABLE campaigns ADD COLUMN released bigint NOT NULL DEFAULT 0 CHECK (released >= 0);
