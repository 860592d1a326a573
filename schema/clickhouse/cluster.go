package clickhouse

// Cluster mode: the store on a ClickHouse cluster of shards of replicas
// (docs/CLUSTER.md), named by the DSN's cluster parameter.
//
// The migrations are written once, for one server (migrations/*.sql), and
// rewritten here for a cluster, statement by statement, run ON CLUSTER:
//
//   - a table T becomes T_local on every server, its engine replicated
//     (ReplacingMergeTree -> ReplicatedReplacingMergeTree, with the
//     ZooKeeper path /clickhouse/tables/{shard}/DATABASE/T_local and the
//     replica {replica}: the servers' macros), and T a Distributed table
//     over the T_local of every shard. dmarcd writes T: each row goes to
//     the shard of sipHash64(report_key) (of the first column of the
//     sorting key in a table without report_key), so that every copy of
//     one report, its records and its row, lands on one shard, where
//     FINAL and ReplacingMergeTree collapse them as on one server. A
//     table filled by a materialized view is never written: its
//     Distributed table has no sharding key.
//   - a materialized view reads T_local and writes T'_local on each
//     server: the rollups and the ledger of a report are kept on its
//     shard, from the rows inserted there (ClickHouse runs a materialized
//     view on the replica an insert reaches; the other replicas fetch the
//     rollup rows it made).
//   - a view V becomes V_local on every server, the same SELECT over the
//     local tables and views, and V a Distributed table over the V_local of
//     every shard: each shard answers for its own reports. A view that
//     groups (the daily_* views) is summed once more across the shards:
//     V_shards is the Distributed table and V groups its rows again. The
//     unsettled days of the rollups are therefore decided shard by shard,
//     which is exact: a report, its ledger and its rollup rows are on one
//     shard.
//
// Any other statement (ALTER, DROP ...) is refused here until this file
// learns how to run it on a cluster: a migration that needs one fails in
// the tests (TestClusterSchema) rather than on a user's cluster.

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

// ClusterParam is the DSN parameter that names the cluster:
// clickhouse://USER:PASS@HOST:PORT/DATABASE?cluster=NAME.
const ClusterParam = "cluster"

// ZooKeeperPathPrefix starts the ZooKeeper path of every replicated table:
// ZooKeeperPathPrefix/{shard}/DATABASE/TABLE.
const ZooKeeperPathPrefix = "/clickhouse/tables"

// Suffixes of the names cluster mode adds (see above).
const (
	localSuffix  = "_local"
	shardsSuffix = "_shards"
)

// clusterSettings are set on the store's connections in cluster mode
// (unless the DSN sets them):
//
//   - insert_distributed_sync: an insert into a Distributed table returns
//     once every shard stored its rows, so that what Flush wrote is stored
//     (by default the rows wait on the disk of the server written to, and
//     a duplicate check would not see them);
//   - prefer_localhost_replica 1 (the default) and load_balancing
//     in_order: a process reads each shard on the replica it writes to, so
//     that it reads what it wrote at once, not once the other replicas
//     fetched it. The server dmarcd is connected to writes the rows of
//     its own shard to itself (ClickHouse does so whatever
//     prefer_localhost_replica says), and those of the other shards to
//     their first replica that answers, in the order of the cluster's
//     definition. Processes connected to one server therefore also read
//     each other's writes at once (the outbox's claims, the duplicate
//     checks); docs/CLUSTER.md asks every dmarcd to name the servers in
//     one order.
//
// ClickHouse before 19.x (18.16 of Debian 12) takes only numbers as
// settings from clickhouse-go (a setting is sent in its binary form, which
// the driver writes for numbers only): on those servers the settings that
// are words must be in the profile of dmarcd's user (docs/CLUSTER.md), and
// Open checks that they are.
var clusterSettings = map[string]any{
	"insert_distributed_sync":  1,
	"prefer_localhost_replica": 1,
	"load_balancing":           "in_order",
}

// settingsAsStringsRevision is the last revision of the native protocol
// that sends settings in their binary form (ClickHouse 19.11 sends them
// as strings).
const settingsAsStringsRevision = 54429

// withClusterSettings returns base with clusterSettings added, those that
// are words only for a server of a protocol revision that takes them.
func withClusterSettings(base map[string]any, revision uint64) map[string]any {
	out := map[string]any{}
	for k, v := range clusterSettings {
		if _, word := v.(string); !word || revision > settingsAsStringsRevision {
			out[k] = v
		}
	}
	for k, v := range base {
		out[k] = v
	}
	return out
}

// checkClusterSettings refuses a connection whose settings are not those
// clusterSettings asks for: an old server's profile that lacks the words.
func (s *Store) checkClusterSettings(ctx context.Context) error {
	for k, want := range clusterSettings {
		var got string
		if err := s.conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = ?", k).Scan(&got); err != nil {
			return fmt.Errorf("reading setting %s: %w", k, err)
		}
		if got != fmt.Sprint(want) {
			return fmt.Errorf("setting %s is %s, and dmarcd on a cluster needs %v: set it in the profile of the user dmarcd connects as (a ClickHouse older than 19.11 takes no words as settings from dmarcd), see docs/CLUSTER.md", k, got, want)
		}
	}
	return nil
}

// splitCluster takes the cluster parameter out of dsn, which clickhouse-go
// would send to the server as a setting, and returns the rest of the DSN
// and the cluster's name ("" when absent).
func splitCluster(dsn string) (string, string, error) {
	base, query, ok := strings.Cut(dsn, "?")
	if !ok {
		return dsn, "", nil
	}
	var keep []string
	cluster := ""
	for _, p := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(p, "=")
		if k != ClusterParam {
			keep = append(keep, p)
			continue
		}
		if !identifier.MatchString(v) {
			return "", "", fmt.Errorf("cluster name %q: want letters, digits and _", v)
		}
		cluster = v
	}
	if len(keep) > 0 {
		base += "?" + strings.Join(keep, "&")
	}
	return base, cluster, nil
}

// clusterDDL rewrites the statements of the migrations for a cluster.
type clusterDDL struct {
	cluster, database string
	// names are the tables and views of the schema, whose references
	// in a statement become their _local names.
	names map[string]bool
	// fed are the tables that materialized views fill.
	fed map[string]bool
}

var (
	createTable = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*)\)\s*ENGINE\s*=\s*(\w+)(?:\(([^)]*)\))?(.*)$`)
	createMV    = regexp.MustCompile(`(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\s+(.*)$`)
	createView  = regexp.MustCompile(`(?s)^CREATE VIEW IF NOT EXISTS (\w+) AS\s+(.*)$`)
	// reference finds the tables a SELECT reads.
	reference   = regexp.MustCompile(`(?i)\b(FROM|JOIN)(\s+)(\w+)\b`)
	reportKey   = regexp.MustCompile(`(?m)^\s*report_key\s`)
	sortingKey  = regexp.MustCompile(`ORDER BY\s*\(?\s*(\w+)`)
	sumColumn   = regexp.MustCompile(`(?is)^sum\((.*)\)\s+AS\s+(\w+)$`)
	plainColumn = regexp.MustCompile(`^\w+$`)
)

// newClusterDDL reads the names the migrations (and createMigrations)
// define.
func newClusterDDL(cluster, database string) (*clusterDDL, error) {
	c := &clusterDDL{cluster: cluster, database: database, names: map[string]bool{}, fed: map[string]bool{}}
	stmts, err := allStatements()
	if err != nil {
		return nil, err
	}
	for _, stmt := range stmts {
		switch {
		case createTable.MatchString(stmt):
			c.names[createTable.FindStringSubmatch(stmt)[1]] = true
		case createMV.MatchString(stmt):
			m := createMV.FindStringSubmatch(stmt)
			c.fed[m[2]] = true
		case createView.MatchString(stmt):
			c.names[createView.FindStringSubmatch(stmt)[1]] = true
		}
	}
	return c, nil
}

// allStatements are createMigrations and the statements of every
// migration, in order.
func allStatements() ([]string, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	out := []string{createMigrations}
	for _, f := range files {
		text, err := migrations.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, splitStatements(string(text))...)
	}
	return out, nil
}

// rewrite returns the statements that do on the cluster what stmt does on
// one server.
func (c *clusterDDL) rewrite(stmt string) ([]string, error) {
	switch {
	case createTable.MatchString(stmt):
		return c.table(createTable.FindStringSubmatch(stmt))
	case createMV.MatchString(stmt):
		m := createMV.FindStringSubmatch(stmt)
		return []string{fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s ON CLUSTER %s TO %s AS %s",
			c.qualified(m[1]), c.cluster, c.qualified(m[2]+localSuffix), c.localReferences(m[3]))}, nil
	case createView.MatchString(stmt):
		m := createView.FindStringSubmatch(stmt)
		return c.view(m[1], m[2])
	}
	first, _, _ := strings.Cut(strings.TrimSpace(stmt), "\n")
	return nil, fmt.Errorf("cluster mode cannot run %q: only CREATE TABLE, MATERIALIZED VIEW and VIEW IF NOT EXISTS are rewritten for a cluster (schema/clickhouse/cluster.go)", first)
}

// table makes the replicated T_local and the Distributed T.
func (c *clusterDDL) table(m []string) ([]string, error) {
	name, columns, engine, args, rest := m[1], m[2], m[3], m[4], m[5]
	if !strings.HasSuffix(engine, "MergeTree") || strings.HasPrefix(engine, "Replicated") {
		return nil, fmt.Errorf("table %s: cluster mode replicates the MergeTree engines, not %s", name, engine)
	}
	local := name + localSuffix
	params := fmt.Sprintf("'%s/{shard}/%s/%s', '{replica}'", ZooKeeperPathPrefix, c.database, local)
	if strings.TrimSpace(args) != "" {
		params += ", " + args
	}
	key := ""
	if !c.fed[name] {
		switch {
		case reportKey.MatchString(columns):
			key = "report_key"
		case sortingKey.MatchString(rest):
			key = sortingKey.FindStringSubmatch(rest)[1]
		default:
			return nil, fmt.Errorf("table %s: no report_key column and no sorting key to shard it by", name)
		}
	}
	return []string{
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s ON CLUSTER %s (%s) ENGINE = Replicated%s(%s)%s",
			c.qualified(local), c.cluster, columns, engine, params, rest),
		c.distributed(name, local, key),
	}, nil
}

// distributed makes the Distributed table name over local on every shard,
// sharded by sipHash64(key) when key is set.
func (c *clusterDDL) distributed(name, local, key string) string {
	sharding := ""
	if key != "" {
		sharding = ", sipHash64(" + key + ")"
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s ON CLUSTER %s AS %s ENGINE = Distributed('%s', '%s', '%s'%s)",
		c.qualified(name), c.cluster, c.qualified(local), c.cluster, c.database, local, sharding)
}

// view makes V_local and the Distributed V, or for a view that groups,
// V_shards and the view V that groups its rows again.
func (c *clusterDDL) view(name, query string) ([]string, error) {
	local := name + localSuffix
	out := []string{fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s ON CLUSTER %s AS %s", c.qualified(local), c.cluster, c.localReferences(query))}
	regroup, err := regroupQuery(name, query)
	if err != nil {
		return nil, err
	}
	if regroup == "" {
		return append(out, c.distributed(name, local, "")), nil
	}
	shards := name + shardsSuffix
	return append(out, c.distributed(shards, local, ""),
		fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s ON CLUSTER %s AS %s", c.qualified(name), c.cluster,
			strings.Replace(regroup, "{from}", c.qualified(shards), 1))), nil
}

// regroupQuery returns, for a view whose SELECT groups, the SELECT that
// groups the shards' rows of it again, reading "{from}"; "" for a view that
// does not group. A view that groups may only select its keys and sums
// (sum(...) AS name), which add up across shards.
func regroupQuery(name, query string) (string, error) {
	from := topLevel(query, "FROM")
	if !strings.HasPrefix(strings.ToUpper(query), "SELECT") || from < 0 {
		return "", fmt.Errorf("view %s: its query must start with SELECT ... FROM", name)
	}
	if topLevel(query, "GROUP BY") < 0 {
		return "", nil
	}
	var columns, keys []string
	for _, col := range splitTopLevel(query[len("SELECT"):from]) {
		col = strings.Join(strings.Fields(col), " ")
		switch {
		case plainColumn.MatchString(col):
			columns, keys = append(columns, col), append(keys, col)
		case sumColumn.MatchString(col):
			alias := sumColumn.FindStringSubmatch(col)[2]
			columns = append(columns, "sum("+alias+") AS "+alias)
		default:
			return "", fmt.Errorf("view %s groups its rows: on a cluster each shard's groups are summed again, so it may select only its keys and sum(...) AS name, not %q", name, col)
		}
	}
	return fmt.Sprintf("SELECT %s FROM {from} GROUP BY %s", strings.Join(columns, ", "), strings.Join(keys, ", ")), nil
}

// localReferences makes the tables and views a SELECT reads their _local
// names, with the database: a Distributed table's query runs on each
// shard in the default database of the connection between the servers.
func (c *clusterDDL) localReferences(query string) string {
	return reference.ReplaceAllStringFunc(query, func(s string) string {
		m := reference.FindStringSubmatch(s)
		if !c.names[m[3]] {
			return s
		}
		return m[1] + m[2] + c.qualified(m[3]+localSuffix)
	})
}

func (c *clusterDDL) qualified(name string) string { return c.database + "." + name }

// topLevel returns the offset of keyword (upper case, words separated by
// one space) in query outside parentheses, strings and quoted names, or
// -1.
func topLevel(query, keyword string) int {
	words := strings.Fields(keyword)
	depth := 0
	for i := 0; i < len(query); i++ {
		switch c := query[i]; c {
		case '(':
			depth++
		case ')':
			depth--
		case '\'', '`', '"':
			for i++; i < len(query) && query[i] != c; i++ {
				if query[i] == '\\' {
					i++
				}
			}
		default:
			if depth == 0 && (i == 0 || !isWordByte(query[i-1])) && matchWords(query[i:], words) {
				return i
			}
		}
	}
	return -1
}

// matchWords says whether s starts with words, separated by white space,
// case aside, the last one ending there.
func matchWords(s string, words []string) bool {
	for i, w := range words {
		if i > 0 {
			t := strings.TrimLeft(s, " \t\r\n")
			if len(t) == len(s) {
				return false
			}
			s = t
		}
		if len(s) < len(w) || !strings.EqualFold(s[:len(w)], w) {
			return false
		}
		s = s[len(w):]
	}
	return s == "" || !isWordByte(s[0])
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// splitTopLevel splits a select list on the commas outside parentheses
// and strings.
func splitTopLevel(list string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(list); i++ {
		switch c := list[i]; c {
		case '(':
			depth++
		case ')':
			depth--
		case '\'', '`', '"':
			for i++; i < len(list) && list[i] != c; i++ {
				if list[i] == '\\' {
					i++
				}
			}
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(list[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(list[start:]))
}
