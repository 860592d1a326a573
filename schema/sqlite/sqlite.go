// Package sqlite is the embedded store of dmarcd: one SQLite file, written
// through modernc.org/sqlite (pure Go, so dmarcd builds with CGO_ENABLED=0
// and runs on a fresh machine with no server).
//
// The file is in WAL mode: several processes may read it while the daemon
// writes, and `dmarcd query` or any SQLite client can be pointed at it.
// Users query the views created by the migrations in migrations/, which are
// documented in docs/SQL.md.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/migration"
)

// BusyTimeoutMillis is how long a writer waits for another writer's lock
// (another dmarcd process on the same file) before failing.
const BusyTimeoutMillis = 30_000

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the embedded store. It implements dmarcd.Store.
type Store struct {
	path string
	db   *sql.DB // writes; one connection, SQLite has one writer
	ro   *sql.DB // reads: Query, analysis
	// readOnly: opened by OpenReadOnly; db is ro.
	readOnly bool
	inserts  *statements // the writer's, prepared on db
	opts     Options
	group    group            // the reports written since the last commit (group.go)
	now      func() time.Time // the clock of group.lost; time.Now
}

// Options tune a Store; the zero value is the default.
type Options struct {
	// The bounds of a group of reports committed in one transaction (see
	// DefaultGroupReports); the defaults when 0. GroupReports 1 commits
	// each report at its Commit.
	GroupReports int
	GroupRecords int
	GroupAge     time.Duration
}

var _ dmarcd.Store = (*Store)(nil)

// ErrNoStore is the error of OpenReadOnly for a path where no store is.
var ErrNoStore = errors.New("no store there")

// OpenReadOnly opens an existing store for reading only: it creates
// nothing, changes nothing (a mistyped --store gives an error, not an empty
// new store), and works on a file the process may not write. Its schema
// must be the one this binary writes: an older one needs `dmarcd migrate`,
// a newer one a newer dmarcd. Its write methods fail.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("opening sqlite store: empty path")
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w: ingest reports first (dmarcd ingest), or name the store with --store", path, ErrNoStore)
		}
		return nil, fmt.Errorf("opening sqlite store %s: %w", path, err)
	}
	ro, err := sql.Open("sqlite", dsn(path, true)+"&mode=ro")
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store %s for reading: %w", path, err)
	}
	s := &Store{path: path, db: ro, ro: ro, readOnly: true, opts: Options{}.withDefaults(), now: time.Now}
	var version int
	if err := ro.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		ro.Close()
		return nil, fmt.Errorf("reading schema version of %s: %w", path, err)
	}
	latest, err := latestVersion()
	if err != nil {
		ro.Close()
		return nil, err
	}
	switch {
	case version > latest:
		ro.Close()
		return nil, tooNew(path, version, latest)
	case version == 0:
		ro.Close()
		return nil, fmt.Errorf("%s is not a dmarcd store (no schema): %w", path, ErrNoStore)
	case version < latest:
		ro.Close()
		return nil, fmt.Errorf("the store %s has schema version %d, older than this dmarcd's (%d): run `dmarcd migrate` first", path, version, latest)
	}
	return s, nil
}

// tooNew is the error for a store written by a newer dmarcd.
func tooNew(path string, version, latest int) error {
	return migration.TooNew("the store "+path, version, latest)
}

// latestVersion is the number of the last migration this binary has.
func latestVersion() (int, error) {
	files, err := migration.Load(migrations)
	return migration.Latest(files), err
}

// withDefaults fills in the defaults of the options not set.
func (o Options) withDefaults() Options {
	if o.GroupReports <= 0 {
		o.GroupReports = DefaultGroupReports
	}
	if o.GroupRecords <= 0 {
		o.GroupRecords = DefaultGroupRecords
	}
	if o.GroupAge <= 0 {
		o.GroupAge = DefaultGroupAge
	}
	return o
}

// Open opens (creating if needed) the database file at path and brings its
// schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenOptions(ctx, path, Options{})
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if path == "" {
		return nil, fmt.Errorf("opening sqlite store: empty path")
	}
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	s := &Store{path: path, db: db, opts: opts, now: time.Now}
	if err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if s.inserts, err = prepareStatements(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening sqlite store %s: preparing its statements: %w", path, err)
	}
	ro, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening sqlite store %s for reading: %w", path, err)
	}
	s.ro = ro
	return s, nil
}

// dsn builds the modernc.org/sqlite connection string: WAL for concurrent
// readers, a busy timeout for concurrent writers, IMMEDIATE transactions so
// that two writers never deadlock upgrading a read lock.
//
// The writer's temporary files are in memory (temp_store): SQLite keeps a
// statement journal for each multi-row INSERT within a transaction (the
// pages the statement changes that the transaction had changed before),
// and spills it to a temporary file past 64 KiB. The upserts of the
// per-source rollup pass that at every statement: a profile of the writer
// found 24% of its time in that journal's writes, system calls included
// (BENCHMARKS.md). In memory a statement's journal is at most the pages
// of its RowsPerInsert rows. Migrations, whose index builds sort whole
// tables, run with temporary files on disk (Migrate).
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(BusyTimeoutMillis)+")")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "temp_store(MEMORY)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Migrate applies the migrations the file lacks, in order, each in a
// transaction; PRAGMA user_version holds the number of the last one. A
// store whose schema is newer than this binary's is refused. Two processes
// opening a new store at once both migrate safely: each migration checks
// the version again inside its (IMMEDIATE, so exclusive) transaction.
func (s *Store) Migrate(ctx context.Context) error {
	var current int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("reading schema version of %s: %w", s.path, err)
	}
	files, err := migration.Load(migrations)
	if err != nil {
		return err
	}
	if latest := migration.Latest(files); current > latest {
		return tooNew(s.path, current, latest)
	}
	if current < migration.Latest(files) {
		// The store's one connection; see dsn.
		if _, err := s.db.ExecContext(ctx, "PRAGMA temp_store = FILE"); err != nil {
			return fmt.Errorf("migrating %s: %w", s.path, err)
		}
		defer s.db.ExecContext(ctx, "PRAGMA temp_store = MEMORY")
	}
	for _, f := range files {
		if f.Version <= current {
			continue
		}
		if err := s.apply(ctx, f.Version, f.Text); err != nil {
			return fmt.Errorf("migrating %s to schema version %d (%s): %w", s.path, f.Version, f.Name, err)
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, version int, text string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return err
	}
	if current >= version {
		return nil // another process applied it meanwhile
	}
	if _, err := tx.ExecContext(ctx, text); err != nil {
		return err
	}
	// PRAGMA takes no bound parameters; version is an integer we parsed.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(version)); err != nil {
		return err
	}
	return tx.Commit()
}

// SchemaVersion returns the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.ro.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// Query runs read-only SQL (the connection is query_only).
func (s *Store) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.ro.QueryContext(ctx, query, args...)
}

// Close commits the open group and closes the database. It fails when
// reports of a group were lost and not stored again (see Flush).
func (s *Store) Close() error {
	release := s.settle()
	err := s.errLost()
	release()
	if s.inserts != nil {
		s.inserts.close()
	}
	if e := s.db.Close(); err == nil {
		err = e
	}
	if s.ro != nil && !s.readOnly {
		if e := s.ro.Close(); err == nil {
			err = e
		}
	}
	return err
}

var _ dmarcd.Flusher = (*Store)(nil)

// Flush commits the open group and makes what was committed durable on
// disk (dmarcd.Flusher). The store runs WAL with synchronous=NORMAL, in
// which a commit is written but not synced until the next checkpoint:
// fast, and safe against a crash of the process, not of the host. The IMAP
// poller flushes before it moves a batch of messages out of their folder,
// so that a host crash cannot lose reports whose mail is archived already.
// A FULL checkpoint syncs the WAL and copies it into the database file; it
// waits (busy_timeout) for readers that hold older snapshots, and fails
// rather than return before the data is synced. Flush also fails while
// reports of a group that could not be committed are not stored again
// (group.go), whoever stored them: no caller may discard their input.
func (s *Store) Flush(ctx context.Context) error {
	if s.readOnly {
		return nil
	}
	release := s.settle()
	defer release()
	if err := s.errLost(); err != nil {
		return fmt.Errorf("syncing sqlite store %s: %w", s.path, err)
	}
	// A checkpoint another process runs at the same moment makes ours
	// return at once without running (-1 frames), where a writer would be
	// waited for (busy_timeout): wait for it too, up to the same time.
	deadline := time.Now().Add(BusyTimeoutMillis * time.Millisecond)
	for {
		var busy, frames, done int
		if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(FULL)").Scan(&busy, &frames, &done); err != nil {
			return fmt.Errorf("syncing sqlite store %s: %w", s.path, err)
		}
		if busy == 0 {
			return nil
		}
		if frames != -1 || time.Now().After(deadline) {
			return fmt.Errorf("syncing sqlite store %s: the checkpoint was blocked (%d of %d WAL frames written)", s.path, done, frames)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("syncing sqlite store %s: %w", s.path, ctx.Err())
		case <-time.After(CheckpointRetryInterval):
		}
	}
}

// CheckpointRetryInterval is how long Flush waits before it tries again a
// checkpoint that another process's checkpoint kept from running.
const CheckpointRetryInterval = 10 * time.Millisecond
