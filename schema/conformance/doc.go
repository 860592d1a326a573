// Package conformance holds the tests that every store must pass alike:
// the shared corpus ingested into the embedded SQLite store and into
// ClickHouse gives identical answers to the same SQL over the documented
// views (docs/SQL.md), and to analyze.Domains, also when the corpus is
// ingested twice or the connection to ClickHouse is cut in the middle of
// an insert and the ingest retried. Its benchmarks measure both stores on
// the same generated records. It holds no code of its own.
package conformance
