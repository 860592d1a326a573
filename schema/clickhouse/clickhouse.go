// Package clickhouse is the dmarcd store for users who outgrow one machine:
// reports kept in a ClickHouse server, written and read over the native TCP
// protocol (github.com/ClickHouse/clickhouse-go/v2; its HTTP protocol does
// not work with the ClickHouse 18.16 of Debian 12).
//
// The schema in migrations/ works on 18.16 and on current releases. Users
// query the same views as in the embedded store (docs/SQL.md, section
// "ClickHouse", lists the differences). A report is stored once and counts
// once in every view, even before ClickHouse merges the copies that a retry
// or two racing writers can leave: see migrations/0001_reports.sql.
//
// Reports are written in groups, many in one insert per table (group.go):
// the store is a dmarcd.Flusher, and a report is stored once Flush (or a
// full group, or Close) wrote it. The alert history and the notification
// outbox (dmarcd.AlertStore) are in migrations/0002_alerts.sql.
//
// With cluster=NAME in the DSN the store is spread over the shards and
// replicas of a ClickHouse cluster: the same migrations, rewritten for it
// (replicated tables, Distributed tables sharded by report, views per
// shard), run ON CLUSTER; cluster.go says how, docs/CLUSTER.md how to
// deploy it.
package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmarcd/dmarcd"
)

// DefaultBatchRecords is how many records the writer buffers before it
// inserts them in one batch. ClickHouse wants few, large inserts (each one
// makes a part on disk); 10,000 records are a few MB.
const DefaultBatchRecords = 10_000

// DefaultPort is ClickHouse's native TCP port, used when the DSN names a
// host without one.
const DefaultPort = 9000

// Scheme starts the DSN of a ClickHouse store:
// clickhouse://USER:PASS@HOST:PORT/DATABASE.
const Scheme = "clickhouse://"

// Options tune a Store; the zero value is the default.
type Options struct {
	// BatchRecords is the number of records per insert while a large
	// report is read; DefaultBatchRecords when 0.
	BatchRecords int
	// The bounds of the group of committed reports written in one insert
	// per table (see DefaultGroupReports); the defaults when 0.
	// GroupReports 1 writes each report at its Commit.
	GroupReports int
	GroupRecords int
	GroupAge     time.Duration
	// Logger receives one line per schema migration and retention drop.
	Logger *slog.Logger
	// ReadOnly opens an existing store for reading: no database is
	// created, nothing migrated; a store of another schema version than
	// this binary's is refused.
	ReadOnly bool
}

// Store is the ClickHouse store. It implements dmarcd.Store.
type Store struct {
	database string
	conn     driver.Conn // writes: batches and DDL
	ro       *sql.DB     // reads: Query
	opts     Options
	log      *slog.Logger
	seq      sequence  // orders appended alert events and notifications
	group    group     // committed reports not written yet
	known    knownKeys // keys of stored reports, by partition
	// cluster names the ClickHouse cluster the store is spread over
	// (cluster.go); "" on one server. ddl rewrites the migrations for it.
	cluster string
	ddl     *clusterDDL
	// leaseQuorum is the insert_quorum of lease inserts on a cluster
	// (lease.go).
	leaseQuorum uint64
}

var _ dmarcd.Store = (*Store)(nil)

// identifier is what dmarcd accepts as the name of a database or a
// cluster: it is spliced into DDL (CREATE DATABASE, ON CLUSTER), which
// takes no bound parameters.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Open connects to the server named by dsn
// (clickhouse://USER:PASS@HOST:PORT/DATABASE, with the query parameters of
// clickhouse-go such as dial_timeout=10s or secure=true), creates the
// database when it is missing, and brings the schema up to date. With the
// parameter cluster=NAME the store is spread over the servers of that
// cluster, as docs/CLUSTER.md describes (cluster.go).
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenOptions(ctx, dsn, Options{})
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.BatchRecords <= 0 {
		opts.BatchRecords = DefaultBatchRecords
	}
	if opts.GroupReports <= 0 {
		opts.GroupReports = DefaultGroupReports
	}
	if opts.GroupRecords <= 0 {
		opts.GroupRecords = DefaultGroupRecords
	}
	if opts.GroupAge <= 0 {
		opts.GroupAge = DefaultGroupAge
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dsn, cluster, err := splitCluster(dsn)
	if err != nil {
		return nil, fmt.Errorf("opening clickhouse store: %w", err)
	}
	cfg, err := ch.ParseDSN(dsn)
	if err != nil {
		// The error of ParseDSN redacts the password.
		return nil, fmt.Errorf("opening clickhouse store: %w (want %sUSER:PASS@HOST:PORT/DATABASE)", err, Scheme)
	}
	if cfg.Protocol != ch.Native {
		return nil, fmt.Errorf("opening clickhouse store: only the native TCP protocol is supported")
	}
	for i, addr := range cfg.Addr {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			cfg.Addr[i] = net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(DefaultPort))
		}
	}
	database := cfg.Auth.Database
	if database == "" {
		database = "default"
	}
	if !identifier.MatchString(database) {
		return nil, fmt.Errorf("opening clickhouse store: database name %q: want letters, digits and _", database)
	}
	where := strings.Join(cfg.Addr, ",") + "/" + database
	if cluster != "" {
		where += " on cluster " + cluster
	}
	server, err := lookupDatabase(ctx, *cfg, database, cluster, !opts.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("opening clickhouse store %s: %w", where, err)
	}
	if !server.exists {
		return nil, fmt.Errorf("clickhouse database %s does not exist, so it holds no dmarcd store: ingest reports first (dmarcd ingest), or name the store with --store", where)
	}
	cfg.Auth.Database = database
	if cluster != "" && server.readonly != "1" {
		// A user with readonly=1 may set nothing: its profile sets
		// what it needs (docs/CLUSTER.md).
		cfg.Settings = withClusterSettings(cfg.Settings, server.revision)
	}
	conn, err := ch.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("opening clickhouse store %s: %w", where, err)
	}
	s := &Store{database: database, conn: conn, opts: opts, log: log, cluster: cluster}
	if cluster != "" {
		if s.ddl, err = newClusterDDL(cluster, database); err != nil {
			conn.Close()
			return nil, err
		}
	}
	err = s.checkMode(ctx)
	if err == nil && cluster != "" && server.readonly != "1" {
		err = s.checkClusterSettings(ctx)
	}
	if err == nil && cluster != "" {
		err = s.readLeaseQuorum(ctx)
	}
	if err == nil && opts.ReadOnly {
		err = s.checkVersion(ctx)
	} else if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	roCfg := *cfg
	if roCfg.Settings, err = readOnlySettings(ctx, conn, cfg.Settings); err != nil {
		conn.Close()
		return nil, fmt.Errorf("opening clickhouse store %s for reading: %w", where, err)
	}
	s.ro = openReadPool(&roCfg)
	if opts.ReadOnly {
		// The writes of a read-only store fail at the server, as the
		// queries of Query do.
		conn.Close()
		if s.conn, err = ch.Open(&roCfg); err != nil {
			s.ro.Close()
			return nil, fmt.Errorf("opening clickhouse store %s for reading: %w", where, err)
		}
	}
	return s, nil
}

// serverState is what lookupDatabase learnt of the server.
type serverState struct {
	exists   bool   // the database exists
	readonly string // the user's readonly setting: 0, 1 or 2
	revision uint64 // of the native protocol
}

// lookupDatabase says whether the database exists, creating it first when
// create is set (on every server of cluster, when set). It asks before
// creating, so that a user who may not create databases (an analyst) can
// open an existing one.
func lookupDatabase(ctx context.Context, cfg ch.Options, database, cluster string, create bool) (serverState, error) {
	var st serverState
	cfg.Auth.Database = "" // the user's default database
	conn, err := ch.Open(&cfg)
	if err != nil {
		return st, err
	}
	defer conn.Close()
	v, err := conn.ServerVersion()
	if err != nil {
		return st, err
	}
	st.revision = v.Revision
	if err := conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'readonly'").Scan(&st.readonly); err != nil {
		return st, fmt.Errorf("reading the user's settings: %w", err)
	}
	if cluster != "" {
		if err := checkCluster(ctx, conn, cluster); err != nil {
			return st, err
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", database).Scan(&n); err != nil {
		return st, fmt.Errorf("looking for database %s: %w", database, err)
	}
	if st.exists = n > 0; st.exists || !create {
		return st, nil
	}
	stmt := "CREATE DATABASE IF NOT EXISTS `" + database + "`"
	if cluster != "" {
		stmt += " ON CLUSTER " + cluster
	}
	if err := conn.Exec(ctx, stmt); err != nil {
		return st, fmt.Errorf("creating database %s: %w", database, err)
	}
	st.exists = true
	return st, nil
}

// checkCluster refuses a cluster the server does not know, naming those it
// knows.
func checkCluster(ctx context.Context, conn driver.Conn, cluster string) error {
	rows, err := conn.Query(ctx, "SELECT DISTINCT cluster FROM system.clusters ORDER BY cluster")
	if err != nil {
		return fmt.Errorf("reading the server's clusters: %w", err)
	}
	defer rows.Close()
	var known []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("reading the server's clusters: %w", err)
		}
		if name == cluster {
			return nil
		}
		known = append(known, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the server's clusters: %w", err)
	}
	return fmt.Errorf("the server knows no cluster %s (its remote_servers define: %s); see docs/CLUSTER.md", cluster, strings.Join(known, ", "))
}

// readOnlySettings returns the settings for the connections of Query: the
// server's readonly=2 (reads only; settings may change), unless the user is
// read-only already. A user with readonly=1 (the analyst profile of
// docs/SQL.md) may not change any setting, not even readonly: the profile
// sets what it needs.
//
// It also turns on enable_optimize_predicate_expression (off by default in
// 18.16, on in current releases): it pushes a query's WHERE into the
// daily_* views, so that "WHERE domain = ..." reads that domain's rollup
// rows instead of grouping all of them first (ten times faster at 10
// million records).
func readOnlySettings(ctx context.Context, conn driver.Conn, base ch.Settings) (ch.Settings, error) {
	var readonly string
	if err := conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'readonly'").Scan(&readonly); err != nil {
		return nil, err
	}
	out := ch.Settings{}
	for k, v := range base {
		out[k] = v
	}
	if readonly == "0" {
		out["readonly"] = 2
		if _, ok := out["enable_optimize_predicate_expression"]; !ok {
			out["enable_optimize_predicate_expression"] = 1
		}
	}
	return out, nil
}

// Database is the name of the database the store uses.
func (s *Store) Database() string { return s.database }

// Query runs read-only SQL over the views.
func (s *Store) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.ro.QueryContext(ctx, query, args...)
}

// Close writes the reports committed and not written yet (see Flush),
// then closes the connections.
func (s *Store) Close() error {
	err := s.flushOnClose()
	err = errors.Join(err, s.conn.Close())
	if s.ro != nil {
		err = errors.Join(err, s.ro.Close())
	}
	return err
}
