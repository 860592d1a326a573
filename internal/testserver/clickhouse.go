// Package testserver starts throwaway servers for tests: each runs in the
// foreground from its own temporary folder, on a loopback port, and is
// stopped when the test ends. Where a server's binary is missing the test
// is skipped, or fails when CI=true, so that CI never passes by skipping.
// It is for tests only.
package testserver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// ClickHouseServer is the binary ClickHouse runs from; Debian's
// clickhouse-server package installs it (18.16 on Debian 12).
const ClickHouseServer = "/usr/sbin/clickhouse-server"

// Limits of starting and stopping a throwaway ClickHouse. It answers in
// about 0.2 s and stops in under 2 s on the machines here.
const (
	clickHouseStartTimeout = 30 * time.Second
	clickHouseStopTimeout  = 10 * time.Second
	clickHousePollInterval = 50 * time.Millisecond
	// clickHouseStartAttempts covers losing a free port to another process
	// between finding it and the server binding it.
	clickHouseStartAttempts = 3
)

const clickHouseConfig = `<?xml version="1.0"?>
<yandex>
    <logger>
        <console>1</console>
        <level>warning</level>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp}</tcp_port>
    <http_port>{http}</http_port>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
{cluster}</yandex>
`

// The default user, passwordless and limited to loopback, and an "analyst"
// user with the read-only profile that docs/SQL.md describes. A server
// looks at its idle connections every poll_interval seconds (10 by
// default) to see whether it is stopping: 1 lets it stop in about a
// second while clients (and the other servers of a cluster) keep
// connections open.
const clickHouseUsers = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <poll_interval>1</poll_interval>
        </default>
        <readonly>
            <readonly>1</readonly>
            <poll_interval>1</poll_interval>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <analyst>
            <password>analyst</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>readonly</profile>
            <quota>default</quota>
        </analyst>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
`

// ClickHouse starts a throwaway ClickHouse server for the test and returns
// the DSN of a database of its own in it, with a name no other test uses:
// clickhouse://default:@127.0.0.1:PORT/test_xxxxxxxx. The database does not
// exist yet (the store creates it). The server is stopped and its folder
// removed when the test ends. The same server also has a user "analyst"
// (password "analyst") with the read-only profile.
func ClickHouse(t testing.TB) (dsn string) {
	t.Helper()
	SkipShort(t, "a ClickHouse server")
	if _, err := os.Stat(ClickHouseServer); err != nil {
		Missing(t, "ClickHouse server not installed (%v): apt-get install clickhouse-server clickhouse-client", err)
	}
	var port int
	var err error
	for range clickHouseStartAttempts {
		if port, err = startClickHouse(t); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("starting ClickHouse: %v", err)
	}
	return fmt.Sprintf("clickhouse://default:@127.0.0.1:%d/%s", port, clickHouseDatabaseName())
}

// ClickHouseDatabase returns dsn with another, unused database name: a
// second database on the same server (or cluster: the query parameters of
// dsn are kept).
func ClickHouseDatabase(dsn string) string {
	dsn, query, _ := strings.Cut(dsn, "?")
	i := strings.LastIndexByte(dsn, '/')
	out := dsn[:i+1] + clickHouseDatabaseName()
	if query != "" {
		out += "?" + query
	}
	return out
}

func clickHouseDatabaseName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "test_" + hex.EncodeToString(b)
}

// startClickHouse runs one server and waits until it answers. It returns
// its native TCP port.
func startClickHouse(t testing.TB) (int, error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "clickhouse-test-")
	if err != nil {
		return 0, err
	}
	ports, err := freePorts(2)
	if err != nil {
		os.RemoveAll(dir)
		return 0, err
	}
	p := &clickHouseProcess{dir: dir, tcp: ports[0], config: expand(clickHouseConfig, map[string]string{
		"{tcp}": strconv.Itoa(ports[0]), "{http}": strconv.Itoa(ports[1]), "{dir}": dir, "{cluster}": ""})}
	if err := p.start(); err != nil {
		os.RemoveAll(dir)
		return 0, err
	}
	t.Cleanup(func() {
		p.stop()
		os.RemoveAll(dir)
		if t.Failed() {
			if s := p.out.String(); s != "" {
				t.Logf("clickhouse-server output:\n%s", s)
			}
		}
	})
	return p.tcp, nil
}

// clickHouseProcess is one clickhouse-server run from its folder, which
// outlives the process: a stopped server starts again with its data.
type clickHouseProcess struct {
	dir    string
	tcp    int
	config string // config.xml
	users  string // users.xml; clickHouseUsers when ""

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error // receives the exit of cmd, once
	out    Output
}

// start writes the configuration, runs the server and waits until it
// answers on its TCP port.
func (p *clickHouseProcess) start() error {
	users := p.users
	if users == "" {
		users = clickHouseUsers
	}
	for name, text := range map[string]string{"config.xml": p.config, "users.xml": users} {
		if err := os.WriteFile(filepath.Join(p.dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	cmd := exec.Command(ClickHouseServer, "--config-file="+filepath.Join(p.dir, "config.xml"))
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", ClickHouseServer, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()

	deadline := time.Now().Add(clickHouseStartTimeout)
	for {
		if clickHouseAnswers(p.tcp) {
			return nil
		}
		select {
		case err := <-exited:
			exited <- err // for stop
			p.stop()
			return fmt.Errorf("clickhouse-server exited (%v): %s", err, p.out.String())
		case <-time.After(clickHousePollInterval):
		}
		if time.Now().After(deadline) {
			p.stop()
			return fmt.Errorf("clickhouse-server did not answer on port %d within %v: %s", p.tcp, clickHouseStartTimeout, p.out.String())
		}
	}
}

// stop ends the server with SIGTERM, or kills it after
// clickHouseStopTimeout, and waits for it to exit. A stopped server's stop
// does nothing.
func (p *clickHouseProcess) stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(clickHouseStopTimeout):
		cmd.Process.Kill()
		<-exited
	}
}

// expand replaces each key of vars in text by its value.
func expand(text string, vars map[string]string) string {
	for k, v := range vars {
		text = strings.ReplaceAll(text, k, v)
	}
	return text
}

// freePorts returns n distinct free loopback ports (see FreePort).
func freePorts(n int) ([]int, error) {
	var ports []int
	seen := map[int]bool{}
	for len(ports) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// clickHouseAnswers says whether the server on port runs queries: clickhouse-client
// where it is installed, else a TCP connection (the server listens once it
// has loaded its tables).
func clickHouseAnswers(port int) bool {
	if client, err := exec.LookPath("clickhouse-client"); err == nil {
		return exec.Command(client, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "-q", "SELECT 1").Run() == nil
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
