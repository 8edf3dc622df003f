-- Time-ordered subtask ids (UUIDv7, RFC 9562): a fan-out's rows get ids in the order they are
-- written, so the primary-key entries that a bind or settle of consecutive claims touches sit on
-- a few adjacent leaf pages at the right edge of the index. With random (v4) ids each row of a
-- batch lived on its own leaf page of the whole index: on a 20M-row table (0.6 GB of primary key)
-- every bind and settle read and dirtied about one page per row (bench/large_table.py).
--
-- A function, not `uuidv7()`: that is built in from PostgreSQL 18 only, and this schema runs on
-- 15 too. 48 bits of Unix time in milliseconds, then gen_random_uuid()'s random bits with the
-- version nibble set to 7 (its variant bits are already RFC 9562's). clock_timestamp(), not
-- now(): the rows of one long fan-out statement advance with it instead of sharing one
-- millisecond. Plain SQL, so the planner inlines it into the INSERT.
CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
               PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
               FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

ALTER TABLE subtasks ALTER COLUMN id SET DEFAULT uuid_v7();
-- Rows move into the archive with their ids; the same default keeps the two tables alike.
ALTER TABLE subtasks_archive ALTER COLUMN id SET DEFAULT uuid_v7();
