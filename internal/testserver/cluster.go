package testserver

// A ClickHouse cluster on loopback: ZooKeeper and ClickHouse servers as
// shards of replicas (../shared/notes/SERVICES.md, "A ClickHouse cluster
// on one machine").

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ZooKeeperJar is the server of Debian's zookeeper package; its manifest
// names the jars it needs.
const ZooKeeperJar = "/usr/share/java/zookeeper.jar"

// Limits of starting and stopping a throwaway ZooKeeper. It answers in
// about 0.5 s on the machines here.
const (
	zooKeeperStartTimeout = 60 * time.Second
	zooKeeperStopTimeout  = 10 * time.Second
	zooKeeperPollInterval = 100 * time.Millisecond
	// zooKeeperHeap bounds the JVM's heap: the tests keep a few thousand
	// small nodes in it.
	zooKeeperHeap = "-Xmx256m"
	// zooKeeperTick is ZooKeeper's unit of time; sessions last 2 to 20
	// ticks.
	zooKeeperTick = 500 * time.Millisecond
	// zooKeeperSession is how long a ClickHouse server's session outlives
	// it: a replica killed, or one that did not close its session, is
	// seen as active for that long, and cannot start again before.
	zooKeeperSession = 3 * time.Second
)

// ClusterName is the name of the cluster in the servers' remote_servers:
// what dmarcd's DSN names with ?cluster=.
const ClusterName = "dmarcd"

// ZooKeeper starts a throwaway standalone ZooKeeper for the test, on a
// loopback port, with its data in a temporary folder, and returns its
// host:port. It is stopped when the test ends. Without java or Debian's
// zookeeper package the test is skipped, or fails when CI=true.
func ZooKeeper(t testing.TB) string {
	t.Helper()
	SkipShort(t, "ZooKeeper")
	java, err := exec.LookPath("java")
	if err == nil {
		_, err = os.Stat(ZooKeeperJar)
	}
	if err != nil {
		Missing(t, "ZooKeeper not installed (%v): apt-get install --no-install-recommends zookeeper", err)
	}
	dir := t.TempDir()
	for range clickHouseStartAttempts {
		var addr string
		if addr, err = startZooKeeper(t, java, dir); err == nil {
			return addr
		}
	}
	t.Fatalf("starting ZooKeeper: %v", err)
	return ""
}

func startZooKeeper(t testing.TB, java, dir string) (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	os.RemoveAll(data)
	if err := os.MkdirAll(data, 0o755); err != nil {
		return "", err
	}
	config := fmt.Sprintf("tickTime=%d\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"admin.enableServer=false\n4lw.commands.whitelist=srvr\n", zooKeeperTick.Milliseconds(), data, port)
	cfgFile := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgFile, []byte(config), 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command(java, zooKeeperHeap, "-Dzookeeper.log.dir="+dir, "-cp", ZooKeeperJar,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgFile)
	var out Output
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("running %s: %w", java, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(zooKeeperStopTimeout):
			cmd.Process.Kill()
			<-exited
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(zooKeeperStartTimeout); !zooKeeperAnswers(addr); {
		select {
		case err := <-exited:
			return "", fmt.Errorf("zookeeper exited (%v): %s", err, out.String())
		case <-time.After(zooKeeperPollInterval):
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("zookeeper did not answer on %s within %v: %s", addr, zooKeeperStartTimeout, out.String())
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("zookeeper output:\n%s", out.String())
		}
	})
	return addr, nil
}

// zooKeeperAnswers says whether ZooKeeper at addr serves requests: its
// four-letter word srvr answers with its mode (standalone) then, and with
// "not currently serving requests" before (ruok says imok already).
func zooKeeperAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	b, _ := io.ReadAll(c)
	return strings.Contains(string(b), "Mode: ")
}

// ClickHouseCluster is a throwaway ClickHouse cluster: servers on
// loopback, each in its own temporary folder, grouped in shards of
// replicas under the name ClusterName, with ZooKeeper for replication and
// ON CLUSTER DDL. Each server has the macros {shard} (01, 02 ...) and
// {replica} (r1, r2 ...), and the users of ClickHouse (default and
// analyst).
type ClickHouseCluster struct {
	// ZooKeeper is the host:port of the cluster's ZooKeeper.
	ZooKeeper string
	// Nodes are the servers, shard by shard, replica by replica.
	Nodes []*ClickHouseNode
}

// ClickHouseNode is one server of a ClickHouseCluster.
type ClickHouseNode struct {
	// Shard and Replica number the server from 1.
	Shard, Replica int
	// Port is its native TCP port.
	Port int

	p *clickHouseProcess
}

// StartClickHouseCluster starts ZooKeeper and shards×replicas ClickHouse
// servers for the test, and stops them when it ends. Without the servers'
// binaries the test is skipped, or fails when CI=true.
func StartClickHouseCluster(t testing.TB, shards, replicas int) *ClickHouseCluster {
	t.Helper()
	SkipShort(t, "a ClickHouse cluster")
	if _, err := os.Stat(ClickHouseServer); err != nil {
		Missing(t, "ClickHouse server not installed (%v): apt-get install clickhouse-server clickhouse-client", err)
	}
	c := &ClickHouseCluster{ZooKeeper: ZooKeeper(t)}
	var err error
	for range clickHouseStartAttempts {
		if err = c.start(t, shards, replicas); err == nil {
			return c
		}
	}
	t.Fatalf("starting a ClickHouse cluster of %d shards of %d replicas: %v", shards, replicas, err)
	return nil
}

// start runs the servers, each on three new ports (native, HTTP,
// interserver); the configuration of each names all of them.
func (c *ClickHouseCluster) start(t testing.TB, shards, replicas int) error {
	n := shards * replicas
	ports, err := freePorts(3 * n)
	if err != nil {
		return err
	}
	c.Nodes = nil
	var servers strings.Builder
	servers.WriteString("    <remote_servers>\n        <" + ClusterName + ">\n")
	for s := 1; s <= shards; s++ {
		servers.WriteString("            <shard>\n                <internal_replication>true</internal_replication>\n")
		for r := 1; r <= replicas; r++ {
			node := &ClickHouseNode{Shard: s, Replica: r, Port: ports[3*len(c.Nodes)]}
			c.Nodes = append(c.Nodes, node)
			fmt.Fprintf(&servers, "                <replica><host>127.0.0.1</host><port>%d</port></replica>\n", node.Port)
		}
		servers.WriteString("            </shard>\n")
	}
	servers.WriteString("        </" + ClusterName + ">\n    </remote_servers>\n")
	zkHost, zkPort, _ := net.SplitHostPort(c.ZooKeeper)

	var started []*clickHouseProcess
	fail := func(err error) error {
		for _, p := range started {
			p.stop()
			os.RemoveAll(p.dir)
		}
		return err
	}
	for i, node := range c.Nodes {
		dir, err := os.MkdirTemp("", "clickhouse-cluster-test-")
		if err != nil {
			return fail(err)
		}
		cluster := fmt.Sprintf(`    <interserver_http_port>%d</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <zookeeper><node><host>%s</host><port>%s</port></node><session_timeout_ms>%d</session_timeout_ms></zookeeper>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
%s    <macros><shard>%02d</shard><replica>r%d</replica></macros>
`, ports[3*i+2], zkHost, zkPort, zooKeeperSession.Milliseconds(), servers.String(), node.Shard, node.Replica)
		node.p = &clickHouseProcess{dir: dir, tcp: node.Port, users: clusterUsers, config: expand(clickHouseConfig, map[string]string{
			"{tcp}": strconv.Itoa(node.Port), "{http}": strconv.Itoa(ports[3*i+1]), "{dir}": dir, "{cluster}": cluster})}
		if err := node.p.start(); err != nil {
			os.RemoveAll(dir)
			return fail(err)
		}
		started = append(started, node.p)
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, node := range c.Nodes {
			wg.Go(node.p.stop)
		}
		wg.Wait()
		for _, node := range c.Nodes {
			if t.Failed() {
				if s := node.p.out.String(); s != "" {
					t.Logf("clickhouse-server %s output:\n%s", node, s)
				}
			}
			os.RemoveAll(node.p.dir)
		}
	})
	return nil
}

// clusterUsers are the users of clickHouseUsers with the setting that
// docs/CLUSTER.md asks of the profile of dmarcd's user on a ClickHouse
// that takes no words as settings from clickhouse-go (18.16).
var clusterUsers = strings.ReplaceAll(clickHouseUsers, "<poll_interval>1</poll_interval>",
	"<poll_interval>1</poll_interval>\n            <load_balancing>in_order</load_balancing>")

// DSN returns the DSN of database on the cluster, reached through node i:
// clickhouse://default:@127.0.0.1:PORT/DATABASE?cluster=dmarcd.
func (c *ClickHouseCluster) DSN(i int, database string) string {
	return c.Nodes[i].DSN(database) + "?cluster=" + ClusterName
}

// NewDSN returns the DSN, through node 0, of a database no other test
// uses; it does not exist yet.
func (c *ClickHouseCluster) NewDSN() string { return c.DSN(0, clickHouseDatabaseName()) }

// DSN returns the DSN of database on this server alone, without the
// cluster: what reads one replica's own tables.
func (n *ClickHouseNode) DSN(database string) string {
	return fmt.Sprintf("clickhouse://default:@127.0.0.1:%d/%s", n.Port, database)
}

func (n *ClickHouseNode) String() string {
	return fmt.Sprintf("shard %d replica %d (port %d)", n.Shard, n.Replica, n.Port)
}

// Stop stops the server (SIGTERM; killed after a while), keeping its
// folder: Start runs it again with its data.
func (n *ClickHouseNode) Stop() { n.p.stop() }

// Start runs a stopped server again, on the same ports and folder, and
// waits until it answers.
func (n *ClickHouseNode) Start() error { return n.p.start() }
