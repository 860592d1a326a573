-- dmarcd ClickHouse store, schema version 6: leases, so that several
-- daemons share a store (lease.go says how they are taken; docs/CLUSTER.md
-- what they promise).
--
--   - a lease has terms, numbered from 1; a row is a bid for a term
--     (held = 0) or its holder's hold on it (held = 1), renewed by more
--     holds, lapsing at the latest until of the term's rows.

CREATE TABLE IF NOT EXISTS leases (
    name  String,
    term  UInt64,
    owner String,
    held  UInt8,              -- 0: a bid for the term, 1: its holder's hold
    until DateTime('UTC')     -- the bid or hold lapses then
) ENGINE = MergeTree
ORDER BY (name, term);
