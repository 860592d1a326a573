-- dmarcd embedded store, schema version 8: no index on the DKIM results by
-- signing domain and selector. No query of dmarcd used it (the key advisor
-- compares lower(dkim_domain), which an index on the column cannot serve,
-- and the per-selector figures come from the daily_selectors rollup), and
-- every DKIM result written paid for it: a second b-tree insert at a
-- random place.

DROP INDEX aggregate_dkim_selector;
