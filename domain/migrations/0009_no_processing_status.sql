-- No code ever stored the event status `processing`: the status check no longer allows it.
-- NOT VALID: the rows already stored are not scanned again (no code wrote the status), which would hold
-- the ledger's lock, and every webhook's INSERT with it, for a read of the whole table. New and updated
-- rows are checked all the same.
ALTER TABLE events DROP CONSTRAINT events_status_check;
ALTER TABLE events ADD CONSTRAINT events_status_check
    CHECK (status IN ('received', 'processed', 'ignored', 'waiting', 'failed')) NOT VALID;
