-- The console's Health page counts the events applied (processed or ignored) in each of the last hours'
-- minutes. Without an index on processed_at that read the whole ledger (a sequential scan: 1,000,000
-- events, about 250 ms); with it, only the index entries of those hours.
--   events_applied   partial: only applied events have a processed_at, so waits and failures add no
--                    entry. Setting processed_at is already a non-HOT update (`status` is in the partial
--                    indexes' predicates): this adds one index entry to each event's last update, at the
--                    index's right edge.
-- On a big existing ledger, build it first by hand with CREATE INDEX CONCURRENTLY under this name (this
-- migration then skips it) so that the receiver's INSERTs and the workers' updates are not held up.
CREATE INDEX IF NOT EXISTS events_applied ON events (processed_at) WHERE processed_at IS NOT NULL;
