-- Subtasks carry two indexes fewer writes per row at fan-out and per status change:
-- * no foreign key to campaigns: it was checked row by row (a million checks for a million-
--   recipient campaign); campaigns are never deleted (finished ones are kept), and every
--   writer of subtasks names a campaign it has just read or locked;
-- * no separate pending index: the claim walks `subtasks_campaign_id_seq_key` from the campaign's
--   cursor, where the rows after the cursor are the pending ones (settled rows lie behind it).
ALTER TABLE subtasks DROP CONSTRAINT subtasks_campaign_id_fkey;
DROP INDEX subtasks_pending;
