// Package conformance holds the tests that every store must pass alike:
// the shared corpus ingested into the embedded SQLite store and into
// ClickHouse gives identical answers to the same SQL over the documented
// views (docs/SQL.md), to analyze.Domains, Daily, Published, Reporters and
// the classified Sources, also when the corpus is ingested twice or the
// connection to ClickHouse is cut in the middle of an insert (or between
// the Commit of a report and the Flush that writes it) and the ingest
// retried; the alert history and the notification outbox read the same
// from both (dmarcd.AlertStore). Its benchmarks measure both stores on the
// same generated records. It holds no code of its own.
package conformance
