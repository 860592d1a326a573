// Package schema opens the store a DSN names: the embedded SQLite file (the
// default) or a ClickHouse server. Each engine lives in its own package
// (schema/sqlite, schema/clickhouse) with its versioned schema files beside
// it.
package schema

import (
	"context"
	"fmt"
	"strings"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// DefaultDSN is the store used when none is given: a SQLite file in the
// working directory.
const DefaultDSN = "dmarcd.db"

// Open opens the store named by dsn and brings its schema up to date:
//
//	PATH or sqlite:PATH                              the embedded SQLite store
//	clickhouse://USER:PASS@HOST:PORT/DATABASE        a ClickHouse server (native TCP)
//	clickhouse://...?cluster=NAME                    a ClickHouse cluster (docs/CLUSTER.md)
func Open(ctx context.Context, dsn string) (dmarcd.Store, error) {
	switch {
	case dsn == "":
		return sqlite.Open(ctx, DefaultDSN)
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//"))
	case strings.HasPrefix(dsn, clickhouse.Scheme):
		s, err := clickhouse.Open(ctx, dsn)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return s, nil
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return nil, fmt.Errorf("opening store: unknown engine %q (want a file path, sqlite:PATH or clickhouse://...)", scheme)
	}
	return sqlite.Open(ctx, dsn)
}

// OpenReadOnly opens the existing store named by dsn for reading only: it
// creates and migrates nothing, and refuses a store that is not there, so
// that a mistyped --store is an error rather than a new empty store. The
// commands that only read (query, domains, daily, senders, advise ...)
// open the store so.
func OpenReadOnly(ctx context.Context, dsn string) (dmarcd.Store, error) {
	switch {
	case dsn == "":
		return sqlite.OpenReadOnly(ctx, DefaultDSN)
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlite.OpenReadOnly(ctx, strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//"))
	case strings.HasPrefix(dsn, clickhouse.Scheme):
		s, err := clickhouse.OpenOptions(ctx, dsn, clickhouse.Options{ReadOnly: true})
		if err != nil {
			return nil, err
		}
		return s, nil
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return nil, fmt.Errorf("opening store: unknown engine %q (want a file path, sqlite:PATH or clickhouse://...)", scheme)
	}
	return sqlite.OpenReadOnly(ctx, dsn)
}
