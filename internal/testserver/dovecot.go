package testserver

// Dovecot: a throwaway IMAP server (../shared/notes/SERVICES.md).

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// DovecotBinary is where Debian's dovecot-imapd installs the server.
const DovecotBinary = "/usr/sbin/dovecot"

// DovecotStartTimeout bounds the wait for a started Dovecot to greet (it
// takes about 0.06 s on the test machines).
const DovecotStartTimeout = 10 * time.Second

// DovecotStopTimeout bounds the wait for Dovecot to exit after SIGTERM;
// after it the process is killed.
const DovecotStopTimeout = 10 * time.Second

// DovecotServer is a throwaway Dovecot IMAP server with one user, listening
// on 127.0.0.1 without TLS. Its mail is kept in Maildir folders under its
// own temporary folder, which survives Stop and Start.
type DovecotServer struct {
	// Host and Port are where the server listens.
	Host string
	Port int
	// User and Password log in.
	User     string
	Password string
	// Dir holds the configuration, state and mail.
	Dir string

	t    testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Dovecot starts a throwaway Dovecot (SERVICES.md) and stops it when the test
// ends. Without /usr/sbin/dovecot the test is skipped with a clear message,
// or fails when CI=true.
func Dovecot(t testing.TB) *DovecotServer {
	t.Helper()
	DovecotInstalled(t)
	// Not t.TempDir: its folders are private to root, and Dovecot reads
	// mail as the unprivileged user nobody.
	dir, err := os.MkdirTemp("", "dmarcd-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &DovecotServer{Host: "127.0.0.1", Port: port, User: "dmarc", Password: "report-secret", Dir: dir, t: t}
	if err := s.writeConfig(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// DovecotInstalled skips the test with a clear message where Dovecot is not
// installed, or fails it when CI=true.
func DovecotInstalled(t testing.TB) {
	t.Helper()
	SkipShort(t, "a Dovecot server")
	if _, err := os.Stat(DovecotBinary); err != nil {
		Missing(t, "Dovecot is not installed (%v): apt-get install dovecot-imapd, or run .ci/run", err)
	}
}

// Addr is host:port.
func (s *DovecotServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// MailDir is the user's Maildir.
func (s *DovecotServer) MailDir() string { return filepath.Join(s.Dir, "mail", s.User) }

func (s *DovecotServer) writeConfig() error {
	for _, d := range []string{"base", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return err
		}
	}
	// Dovecot reads and writes mail as mail_uid and mail_gid.
	uid, gid, err := dovecotMailOwner()
	if err != nil {
		return err
	}
	if err := os.Chown(filepath.Join(s.Dir, "mail"), uid, gid); err != nil {
		return fmt.Errorf("dovecot mail folder: %w (the tests must run as root)", err)
	}
	users := fmt.Sprintf("%s:{PLAIN}%s::::::\n", s.User, s.Password)
	if err := os.WriteFile(filepath.Join(s.Dir, "users"), []byte(users), 0o644); err != nil {
		return err
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/base
state_dir = %[1]s/state
instance_name = dmarcd-test-%[2]d
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:%[1]s/mail/%%u
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = %[1]s/users
}
userdb {
  driver = static
  args = home=%[1]s/mail/%%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
`, s.Dir, s.Port)
	return os.WriteFile(filepath.Join(s.Dir, "dovecot.conf"), []byte(conf), 0o644)
}

// Start starts the server (again, after Stop: same port, same mail) and
// waits until it greets.
func (s *DovecotServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("dovecot: Start while running")
	}
	cmd := exec.Command(DovecotBinary, "-F", "-c", filepath.Join(s.Dir, "dovecot.conf"))
	out, err := os.OpenFile(filepath.Join(s.Dir, "dovecot.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// A process group of its own, so that Stop ends the imap processes
	// serving connections too, as systemd ends a service's cgroup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting dovecot: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(DovecotStartTimeout)
	for {
		if err := s.greets(); err == nil {
			return
		} else if time.Now().After(deadline) {
			s.t.Fatalf("dovecot did not greet on %s within %s: %v\n%s", s.Addr(), DovecotStartTimeout, err, s.Log())
		}
		select {
		case <-done:
			s.cmd = nil
			s.t.Fatalf("dovecot exited at start: %v\n%s", cmd.ProcessState, s.Log())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// greets connects and reads the IMAP greeting.
func (s *DovecotServer) greets() error {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	return nil
}

// Stop stops the server with SIGTERM and reaps it. The imap processes
// that serve connections outlive Dovecot's master (they finish their
// sessions); Stop kills them, so that every connection drops as in a
// restart of the service. Stopping a stopped server does nothing.
func (s *DovecotServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(DovecotStopTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	s.cmd, s.done = nil, nil
}

// Log returns what the server logged, for failure messages.
func (s *DovecotServer) Log() string {
	var b strings.Builder
	for _, name := range []string{"dovecot.out", "dovecot.log"} {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err == nil {
			b.Write(data)
		}
	}
	return b.String()
}

// dovecotMailOwner looks up the user nobody and the group nogroup, the
// mail_uid and mail_gid of the configuration.
func dovecotMailOwner() (uid, gid int, err error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return 0, 0, fmt.Errorf("dovecot mail owner: %w", err)
	}
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		return 0, 0, fmt.Errorf("dovecot mail group: %w", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(g.Gid)
	return uid, gid, nil
}

// Append puts messages into a folder of the user.
func (s *DovecotServer) Append(folder string, msgs ...[]byte) {
	s.t.Helper()
	c := s.client()
	defer c.Close()
	for i, m := range msgs {
		cmd := c.Append(folder, int64(len(m)), nil)
		if _, err := cmd.Write(m); err != nil {
			s.t.Fatalf("dovecot: appending message %d: %v", i, err)
		}
		if err := cmd.Close(); err != nil {
			s.t.Fatalf("dovecot: appending message %d: %v", i, err)
		}
		if _, err := cmd.Wait(); err != nil {
			s.t.Fatalf("dovecot: appending message %d: %v", i, err)
		}
	}
	c.Logout().Wait()
}

// Messages returns the messages of a folder in order, or nil when the
// folder does not exist.
func (s *DovecotServer) Messages(folder string) [][]byte {
	s.t.Helper()
	c := s.client()
	defer c.Close()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil
	}
	out := [][]byte{}
	if sel.NumMessages == 0 {
		return out
	}
	var all imap.SeqSet
	all.AddRange(1, 0) // 1:*
	msgs, err := c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		s.t.Fatalf("dovecot: fetching %s: %v", folder, err)
	}
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out = append(out, b.Bytes)
		}
	}
	c.Logout().Wait()
	return out
}

// client logs in as the user.
func (s *DovecotServer) client() *imapclient.Client {
	s.t.Helper()
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		s.t.Fatalf("dovecot: %v", err)
	}
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		c.Close()
		s.t.Fatalf("dovecot: login: %v", err)
	}
	return c
}

// Deliver writes messages into the user's INBOX as a local delivery agent
// does, into the Maildir's new/ folder: much faster than APPEND for large
// mailboxes.
func (s *DovecotServer) Deliver(msgs ...[]byte) {
	s.t.Helper()
	uid, gid, err := dovecotMailOwner()
	if err != nil {
		s.t.Fatal(err)
	}
	root := s.MailDir()
	for _, d := range []string{root, filepath.Join(root, "cur"), filepath.Join(root, "new"), filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			s.t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			s.t.Fatal(err)
		}
	}
	now := time.Now().UnixNano()
	for i, m := range msgs {
		name := filepath.Join(root, "new", fmt.Sprintf("%d.M%dP%d.dmarcd-test", now/1e9, now%1e9+int64(i), os.Getpid()))
		if err := os.WriteFile(name, m, 0o600); err != nil {
			s.t.Fatal(err)
		}
		if err := os.Chown(name, uid, gid); err != nil {
			s.t.Fatal(err)
		}
	}
}
