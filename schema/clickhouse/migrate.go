package clickhouse

import (
	"context"
	"embed"
	"fmt"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/internal/migration"
)

//go:embed migrations/*.sql
var migrations embed.FS

// createMigrations holds the versions applied; ClickHouse has no
// transactional DDL, so each migration's statements are idempotent and the
// version is recorded after the last of them.
const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    applied_at DateTime('UTC')
) ENGINE = MergeTree ORDER BY version`

// Migrate applies the migrations the database lacks, in order. Each file
// migrations/NNNN_name.sql holds statements separated by ';'.
func (s *Store) Migrate(ctx context.Context) error {
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	files, err := migration.Load(migrations)
	if err != nil {
		return err
	}
	if latest := migration.Latest(files); current > latest {
		return tooNew(s.database, current, latest)
	}
	for _, f := range files {
		version := f.Version
		if version <= current {
			continue
		}
		if current == 0 {
			// A fresh database, or one at version 0: create the
			// version table on the first write.
			if err := s.exec(ctx, createMigrations); err != nil {
				return fmt.Errorf("creating schema_migrations in %s: %w", s.database, err)
			}
		}
		for i, stmt := range splitStatements(f.Text) {
			if err := s.exec(ctx, stmt); err != nil {
				return fmt.Errorf("migrating clickhouse database %s%s to schema version %d (%s, statement %d): %w",
					s.database, s.onCluster(), version, f.Name, i+1, err)
			}
		}
		b, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
		if err == nil {
			if err = b.Append(uint32(version), f.Name, time.Now().UTC()); err == nil {
				err = b.Send()
			} else {
				b.Abort()
			}
		}
		if err != nil {
			return fmt.Errorf("recording schema version %d of %s: %w", version, s.database, err)
		}
		s.log.Info("migrated clickhouse store", "database", s.database, "version", version, "file", f.Name)
		current = version
	}
	return nil
}

// exec runs a statement of the migrations: as it is on one server,
// rewritten for the cluster in cluster mode (cluster.go).
func (s *Store) exec(ctx context.Context, stmt string) error {
	stmts := []string{stmt}
	if s.ddl != nil {
		var err error
		if stmts, err = s.ddl.rewrite(stmt); err != nil {
			return err
		}
	}
	for _, st := range stmts {
		if err := s.conn.Exec(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// onCluster names the store's cluster for messages.
func (s *Store) onCluster() string {
	if s.cluster == "" {
		return ""
	}
	return " on cluster " + s.cluster
}

// checkMode refuses a store made on one server when the DSN names a
// cluster, and one made on a cluster when it names none: its tables are
// of the other kind (schema_migrations is a Distributed table on a
// cluster).
func (s *Store) checkMode(ctx context.Context) error {
	rows, err := s.conn.Query(ctx, "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'")
	if err != nil {
		return fmt.Errorf("reading the tables of %s: %w", s.database, err)
	}
	defer rows.Close()
	engine := ""
	if rows.Next() {
		if err := rows.Scan(&engine); err != nil {
			return fmt.Errorf("reading the tables of %s: %w", s.database, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the tables of %s: %w", s.database, err)
	}
	switch {
	case engine == "Distributed" && s.cluster == "":
		return fmt.Errorf("the clickhouse store %s was made on a cluster: name it in the DSN (?%s=NAME), see docs/CLUSTER.md", s.database, ClusterParam)
	case engine != "" && engine != "Distributed" && s.cluster != "":
		return fmt.Errorf("the clickhouse store %s was made on one server, and its tables are not replicated: open it without ?%s=, or move it to a cluster as docs/CLUSTER.md says", s.database, ClusterParam)
	}
	return nil
}

// SchemaVersion returns the number of the last migration applied, 0 for a
// database without dmarcd's tables.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("reading schema version of %s: %w", s.database, err)
	}
	if n == 0 {
		return 0, nil
	}
	var v uint32
	if err := s.conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version of %s: %w", s.database, err)
	}
	return int(v), nil
}

// splitStatements splits SQL text on the semicolons that end statements,
// dropping comments and blank statements. It knows '...' strings (with
// backslash escapes), `...` and "..." identifiers, -- line comments and
// /* */ block comments, so a ';' inside any of them does not split.
func splitStatements(text string) []string {
	var out []string
	var b strings.Builder
	flush := func() {
		if s := strings.TrimSpace(b.String()); s != "" {
			out = append(out, s)
		}
		b.Reset()
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			for i < len(text) && text[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				i = len(text)
			} else {
				i += 2 + end + 1
			}
			b.WriteByte(' ')
		case c == '\'' || c == '`' || c == '"':
			j := i + 1
			for j < len(text) && text[j] != c {
				if text[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(text) {
				j = len(text) - 1
			}
			b.WriteString(text[i : j+1])
			i = j
		case c == ';':
			flush()
		default:
			b.WriteByte(c)
		}
	}
	flush()
	return out
}

// checkVersion refuses, for a read-only store, a database without
// dmarcd's schema or with another version than this binary's.
func (s *Store) checkVersion(ctx context.Context) error {
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	latest, err := latestVersion()
	if err != nil {
		return err
	}
	switch {
	case current == 0:
		return fmt.Errorf("clickhouse database %s holds no dmarcd store: ingest reports first (dmarcd ingest), or name the store with --store", s.database)
	case current > latest:
		return tooNew(s.database, current, latest)
	case current < latest:
		return fmt.Errorf("the clickhouse store %s has schema version %d, older than this dmarcd's (%d): run `dmarcd migrate` first", s.database, current, latest)
	}
	return nil
}

func tooNew(database string, version, latest int) error {
	return migration.TooNew("the clickhouse store "+database, version, latest)
}

// latestVersion is the number of the last migration this binary has.
func latestVersion() (int, error) {
	files, err := migration.Load(migrations)
	return migration.Latest(files), err
}
