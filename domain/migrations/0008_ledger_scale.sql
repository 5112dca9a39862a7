-- The ledger at 10 million events (bench/ledger_scale.py): the list's filters found their rows by walking
-- every event newer than them, and the newest-first index was built against the order rows arrive in.
--   events_received   replaces events_received_at (received_at DESC, id DESC). Events arrive in
--                     received_at order, so every insert went to that index's left edge, where a page
--                     split leaves both halves half full: 994 MiB at 10 million events, where the same
--                     keys ascending take about half (inserts at the right edge fill pages). A backward
--                     scan gives the newest page, `--since` and min(received_at) as before.
--   events_type       the list filtered by type, newest first: without it a rare type (disputes, 0.1%
--                     of the events) walked 100,000 newer events (45 ms at 10 million), and a type with
--                     no event at all walked the whole ledger.
--   events_account    the same for the account filter (a small account: 60 ms; an account with no event:
--                     the whole ledger).
-- Each costs every webhook's INSERT, and each status change (not a HOT update: `status` is in the
-- partial indexes' predicates), one index entry; both append at their key's right edge. Without `id`
-- (an incremental sort orders the few events of one second): 40% smaller.
-- On a big existing ledger, build them first by hand with CREATE INDEX CONCURRENTLY under these names
-- (this migration then skips them) so that the receiver's INSERTs are not held up while they build.
CREATE INDEX IF NOT EXISTS events_received ON events (received_at, id);
DROP INDEX IF EXISTS events_received_at;
CREATE INDEX IF NOT EXISTS events_type ON events (type, received_at);
CREATE INDEX IF NOT EXISTS events_account ON events (account, received_at);
