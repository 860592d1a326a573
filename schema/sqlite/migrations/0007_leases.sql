-- dmarcd embedded store, schema version 7: leases, so that several daemons
-- share a store: a mailbox is read, and the alerts are checked, by one
-- process at a time. A process takes a lease with INSERT ... ON CONFLICT DO
-- UPDATE only where the lease is its own or has lapsed, in one statement.

CREATE TABLE leases (
    name  TEXT    PRIMARY KEY,
    owner TEXT    NOT NULL,
    until INTEGER NOT NULL -- Unix seconds: the lease lapses then
);
