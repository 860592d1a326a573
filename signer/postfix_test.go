package signer

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

// postfixMasterCF is the smallest master.cf of a relay-only instance: no
// chroot, the SMTP server on a loopback port, the log on standard output.
const postfixMasterCF = `%s inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// startPostfix runs a throwaway Postfix (postfix -c DIR start-fg) that
// takes mail on a loopback port, passes it through the milter at
// milterAddr and relays it to relayHost. It returns the SMTP address.
func startPostfix(t testing.TB, milterAddr, relayHost string) string {
	t.Helper()
	postfix := testserver.Need(t, "/usr/sbin/postfix", "postfix")
	// The Postfix daemons run as the postfix user: the folder must be
	// reachable by it, which t.TempDir (0700) is not.
	dir, err := os.MkdirTemp("", "dmarcd-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	owner, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("the postfix user: %v", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	for _, d := range []string{"queue", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		t.Fatalf("Postfix runs as root in these tests: %v", err)
	}
	port, err := testserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr := fmt.Sprintf("127.0.0.1:%d", port)
	mainCF := strings.Join([]string{
		"compatibility_level = 3.6",
		"queue_directory = " + filepath.Join(dir, "queue"),
		"data_directory = " + filepath.Join(dir, "data"),
		"mail_owner = postfix",
		"setgid_group = postdrop",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"myhostname = mta.test",
		"mydomain = test",
		"mydestination =",
		"local_recipient_maps =",
		"alias_maps =",
		"alias_database =",
		"mynetworks = 127.0.0.0/8",
		"smtpd_relay_restrictions = permit_mynetworks, reject",
		"relayhost = [" + strings.Replace(relayHost, ":", "]:", 1),
		"smtp_host_lookup = native",
		"smtp_tls_security_level = none",
		"smtpd_milters = inet:" + milterAddr,
		"milter_default_action = tempfail",
		"maillog_file = /dev/stdout",
		"queue_run_delay = 1s",
		"minimal_backoff_time = 1s",
		"maximal_backoff_time = 2s",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(fmt.Sprintf(postfixMasterCF, smtpAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	// check creates the queue folders with their owners and modes.
	if out, err := exec.Command(postfix, "-c", dir, "check").CombinedOutput(); err != nil {
		t.Fatalf("postfix check: %v\n%s", err, out)
	}
	var log testserver.Output
	cmd := exec.Command(postfix, "-c", dir, "start-fg")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("postfix start-fg: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = exec.Command(postfix, "-c", dir, "stop").Run()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("postfix log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", smtpAddr, time.Second)
		if err == nil {
			c.Close()
			return smtpAddr
		}
		select {
		case err := <-done:
			t.Fatalf("postfix stopped: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix does not listen on %s: %v\n%s", smtpAddr, err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPostfixMilterRotation: swaks -> Postfix -> our milter -> sink at each
// stage of a rotation.
func TestPostfixMilterRotation(t *testing.T) {
	testserver.Need(t, "/usr/bin/swaks", "swaks")
	needDKIMPy(t)
	sink, got := startSink(t)
	ring, stages, records := rotation(t, "football.example.com")
	m, err := NewMilter(MilterConfig{Signer: &Signer{Keys: ring, Unsigned: UnsignedRefuse}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go m.Serve(l)
	t.Cleanup(func() { m.Close() })
	mta := startPostfix(t, l.Addr().String(), sink)
	for _, stage := range stages {
		stage.move(t)
		swaks(t, mta, stage.name)
		msg := receive(t, got, 60*time.Second)
		if !bytes.Contains(msg.Data, []byte("by mta.test (Postfix)")) {
			t.Fatalf("%s: the message did not pass through Postfix:\n%s", stage.name, msg.Data)
		}
		checkDelivered(t, stage, msg.Data, records)
	}
}
