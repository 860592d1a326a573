// Package conformance holds the tests that every store must pass alike:
// the shared corpus ingested into the embedded SQLite store and into
// ClickHouse gives identical answers to the same SQL over the documented
// views (docs/SQL.md) and to every read of package analyze (reads_test.go:
// the queries of the web pages, the advisor, the alert detectors; a test
// fails when an exported function of analyze that takes a Querier is not
// compared), also when the corpus is ingested twice; the same to the SQL
// and analyze.Domains when the connection to ClickHouse is cut in the
// middle of an insert (or between the Commit of a report and the Flush
// that writes it) and the ingest retried; the alert history and the
// notification outbox read the same from both (dmarcd.AlertStore). Its
// benchmarks measure both stores on the same generated records. It holds
// no code of its own.
package conformance
