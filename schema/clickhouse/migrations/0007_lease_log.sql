-- dmarcd ClickHouse store, schema version 7: the lease log keeps a row per
-- term, owner and kind once its parts are merged. The leases table of
-- version 6 got a row per renewal (every 20 seconds for each mailbox, for as
-- long as a daemon holds it: some 1.6 million rows a year), and every read
-- of a lease read them all. Here a ReplacingMergeTree whose version is
-- until keeps the latest of a term's renewals; a read takes max(until) per
-- term, owner and kind, so it answers the same before and after a merge.
-- The old table stays, unused (cluster mode runs no DROP): daemons sharing a
-- store take their leases here from this version on, so stop the older
-- ones before starting these (docs/CLUSTER.md).

CREATE TABLE IF NOT EXISTS lease_log (
    name  String,
    term  UInt64,
    owner String,
    held  UInt8,              -- 0: a bid for the term, 1: its holder's hold
    until DateTime('UTC')     -- the bid or hold lapses then
) ENGINE = ReplacingMergeTree(until)
ORDER BY (name, term, owner, held);
