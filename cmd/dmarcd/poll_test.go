package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/reportgen"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// pollMessage is a mail put into the test mailbox.
type pollMessage struct {
	name string
	data []byte
}

// pollMessages returns the corpus's report mails, its malformed reports
// attached to mails, and generated report mails (zip, gzip, plain XML,
// failure reports) plus a mail without a report.
func pollMessages(t testing.TB, seed uint64, days int) []pollMessage {
	var out []pollMessage
	for _, rel := range corpus.Files(t, "aggregate", "forensic", "tls-rpt") {
		if strings.HasSuffix(rel, ".eml") {
			out = append(out, pollMessage{rel, corpus.Read(t, rel)})
		}
	}
	for _, rel := range corpus.Files(t, "malformed") {
		out = append(out, pollMessage{rel, attached(path.Base(rel), "text/xml", corpus.Read(t, rel))})
	}
	g := reportgen.New(reportgen.Options{Seed: seed, Days: days, FailureReports: 4, MessagesPerDay: 100, Sources: 5,
		Domains: []string{"example.com", "news.example.com"}})
	for _, f := range g.Files() {
		data := f.Data
		if !strings.HasSuffix(f.Name, ".eml") {
			data = attached(f.Name, "text/xml", f.Data)
		}
		out = append(out, pollMessage{fmt.Sprintf("gen%d/%s", seed, f.Name), data})
	}
	out = append(out, pollMessage{"no-report.eml", []byte("From: a@example.net\r\nTo: dmarc@example.com\r\nSubject: hello\r\n\r\nNo report here.\r\n")})
	return out
}

func datas(msgs []pollMessage) [][]byte {
	var out [][]byte
	for _, m := range msgs {
		out = append(out, m.data)
	}
	return out
}

func attached(filename, contentType string, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: reports@reporter.example\r\nTo: dmarc@example.com\r\nSubject: Report %s\r\nMIME-Version: 1.0\r\n", filename)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: %s; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", contentType, filename)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b1--\r\n")
	return b.Bytes()
}

// pollExpectation is what a direct ingest of the messages gives.
type pollExpectation struct {
	content          string
	archive, invalid []string // the messages, normalised and sorted
}

func expectPoll(t testing.TB, msgs []pollMessage) pollExpectation {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "reference.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in := ingest.New(st, ingest.Options{})
	var e pollExpectation
	for _, m := range msgs {
		out, err := in.Ingest(context.Background(), m.data, dmarcd.Origin{Source: "test:" + m.name})
		if err != nil {
			t.Fatal(err)
		}
		if out.Reports() == 0 {
			e.invalid = append(e.invalid, normalised(m.data))
		} else {
			e.archive = append(e.archive, normalised(m.data))
		}
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	slices.Sort(e.archive)
	slices.Sort(e.invalid)
	e.content = storeContent(t, st)
	return e
}

func normalised(b []byte) string {
	return strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
}

func folderTexts(srv *testserver.DovecotServer, folder string) []string {
	var out []string
	for _, m := range srv.Messages(folder) {
		out = append(out, normalised(m))
	}
	slices.Sort(out)
	return out
}

// storeContent describes a store: its report keys, record sums and
// quarantine size, so that two stores compare as strings.
func storeContent(t testing.TB, st *sqlite.Store) string {
	var b strings.Builder
	for _, q := range []string{
		"SELECT report_key FROM aggregate_reports ORDER BY report_key",
		"SELECT report_key FROM failure_reports ORDER BY report_key",
		"SELECT COUNT(*) || ' records, ' || COALESCE(SUM(count), 0) || ' messages' FROM aggregate_records",
		"SELECT COUNT(*) || ' quarantined' FROM quarantine",
	} {
		rows, err := st.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var v string
			rows.Scan(&v)
			b.WriteString(v + "\n")
			n++
		}
		rows.Close()
		fmt.Fprintf(&b, "(%d rows)\n", n)
	}
	return b.String()
}

func writePollConfig(t testing.TB, srv *testserver.DovecotServer, extra string) string {
	cfg := fmt.Sprintf("%s\n[[mailbox]]\nname = \"dovecot\"\nhost = %q\nport = %d\ntls = \"plain\"\nusername = %q\npassword = %q\nbatch_size = 8\n",
		extra, srv.Host, srv.Port, srv.User, srv.Password)
	p := filepath.Join(t.TempDir(), "dmarcd.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkPolled asserts that the store holds what a direct ingest stores and
// that every message is in the archive or invalid folder, as it should.
func checkPolled(t *testing.T, srv *testserver.DovecotServer, db string, want pollExpectation) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := storeContent(t, st); got != want.content {
		t.Errorf("the store differs from a direct ingest:\n--- polled\n%s--- direct\n%s", got, want.content)
	}
	if n := len(srv.Messages("INBOX")); n != 0 {
		t.Errorf("%d messages left in INBOX", n)
	}
	if got := folderTexts(srv, "dmarc-archive"); !slices.Equal(got, want.archive) {
		t.Errorf("the archive holds %d messages, want exactly the %d with reports", len(got), len(want.archive))
	}
	if got := folderTexts(srv, "dmarc-invalid"); !slices.Equal(got, want.invalid) {
		t.Errorf("the invalid folder holds %d messages, want exactly the %d without", len(got), len(want.invalid))
	}
}

// TestPollOnce runs dmarcd poll --once in-process against Dovecot.
func TestPollOnce(t *testing.T) {
	srv := testserver.Dovecot(t)
	msgs := pollMessages(t, 31, 2)
	want := expectPoll(t, msgs)
	srv.Append("INBOX", datas(msgs)...)
	cfg := writePollConfig(t, srv, "")
	db := filepath.Join(t.TempDir(), "d.db")
	code, out, errOut := runCLI(t, "--config", cfg, "--store", db, "poll", "--once")
	if code != exitQuarantined || !strings.Contains(out, fmt.Sprintf("mailbox dovecot: %d messages read", len(msgs))) {
		t.Fatalf("poll --once: exit %d, want %d\n%s\n%s", code, exitQuarantined, out, errOut)
	}
	t.Logf("%d messages:\n%s", len(msgs), out)
	checkPolled(t, srv, db, want)
	code, out, errOut = runCLI(t, "--config", cfg, "--store", db, "poll", "--once")
	if code != exitOK || !strings.Contains(out, "0 messages read") {
		t.Errorf("second poll --once: exit %d\n%s\n%s", code, out, errOut)
	}

	if code, _, errOut := runCLI(t, "--config", cfg, "--store", db, "poll"); code != exitUsage || !strings.Contains(errOut, "--once") {
		t.Errorf("poll without --once: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "--store", db, "poll", "--once"); code != exitUsage || !strings.Contains(errOut, "no [[mailbox]]") {
		t.Errorf("poll without mailboxes: exit %d: %s", code, errOut)
	}
	cfg = writePollConfig(t, srv, "")
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(text, []byte(srv.Password), []byte("wrong"), 1), 0o600)
	if code, _, errOut := runCLI(t, "--config", cfg, "--store", db, "poll", "--once"); code != exitFailure || !strings.Contains(errOut, "imap login failed") {
		t.Errorf("poll with a wrong password: exit %d: %s", code, errOut)
	}
	// A password file that is not there is a configuration error: exit 2,
	// before anything is opened.
	missing := filepath.Join(t.TempDir(), "nowhere", "password")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[[mailbox]]\nname = \"m\"\nhost = \"127.0.0.1\"\nusername = \"u\"\npassword_file = %q\ntls = \"plain\"\n", missing)), 0o600)
	if code, _, errOut := runCLI(t, "--config", cfg, "--store", db, "poll", "--once"); code != exitUsage || !strings.Contains(errOut, "password_file") {
		t.Errorf("poll with a missing password file: exit %d: %s", code, errOut)
	}
}

func TestMailboxConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ text, want string }{
		{"[[mailbox]]\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\ntls = \"ssl\"\n", `tls "ssl"`},
		{"[[mailbox]]\nhost = \"h\"\nusername = \"u\"\n", "exactly one of password and password_file"},
		{"[[mailbox]]\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\nauth = \"ntlm\"\n", `auth "ntlm"`},
		{"[[mailbox]]\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\n[[mailbox]]\nhost = \"h\"\nusername = \"u\"\npassword = \"q\"\n", "both named"},
		{"[[mailbox]]\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\nfolder = \"INBOX\"\n", "unknown keys: mailbox.folder"},
		{"[[mailbox]]\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\npoll_interval = \"soon\"\n", "poll_interval"},
	} {
		_, err := loadConfigBytes(t, dir, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.text, err, tc.want)
		}
	}
}

// TestExampleMailboxes loads the commented [[mailbox]] examples of
// dmarcd.example.toml with their comment marks removed.
func TestExampleMailboxes(t *testing.T) {
	example, err := os.ReadFile("../../dmarcd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	// The mailbox examples: the comment block from the first
	// "# [[mailbox]]" on, settings uncommented, prose left as comments.
	setting := regexp.MustCompile(`^# (\[|[a-z0-9_]+ = )`)
	var b strings.Builder
	in := false
	for _, line := range strings.Split(string(example), "\n") {
		in = in || line == "# [[mailbox]]"
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			break
		}
		if setting.MatchString(line) {
			line = strings.TrimPrefix(line, "# ")
		}
		b.WriteString(line + "\n")
	}
	cfg, err := loadConfigBytes(t, t.TempDir(), b.String())
	if err != nil {
		t.Fatalf("the example mailboxes do not load: %v\n%s", err, b.String())
	}
	var names []string
	for _, mb := range cfg.Mailboxes {
		names = append(names, mb.Name)
	}
	if strings.Join(names, ",") != "reports,m365,gmail" || cfg.Mailboxes[0].PollInterval != 5*time.Minute ||
		cfg.Mailboxes[1].OAuth2 == nil || len(cfg.Mailboxes[2].TokenCommand) != 3 {
		t.Errorf("example mailboxes: %+v", cfg.Mailboxes)
	}
}

// buildDmarcd builds the command into the test's folder.
func buildDmarcd(t testing.TB) string {
	bin := filepath.Join(t.TempDir(), "dmarcd")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// killPoint says when to SIGKILL a run: after so many messages were
// ingested, after so many moves, or after a time.
type killPoint struct {
	ingested int
	moved    int
	after    time.Duration
}

func (k killPoint) String() string {
	switch {
	case k.ingested > 0:
		return fmt.Sprintf("after %d messages ingested", k.ingested)
	case k.moved > 0:
		return fmt.Sprintf("after move %d", k.moved)
	}
	return "after " + k.after.String()
}

// runUntil runs dmarcd and kills it at the point; it says whether it was
// killed, else its exit code.
func runUntil(t *testing.T, bin string, args []string, k *killPoint) (killed bool, code int, stderr string, ingested int) {
	cmd := exec.Command(bin, args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if k != nil && k.after > 0 {
		timer := time.AfterFunc(k.after, func() { cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	var log strings.Builder
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	moved := 0
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if strings.Contains(line, `msg="imap message ingested"`) {
			ingested++
		}
		if strings.Contains(line, `msg="imap messages moved"`) {
			moved++
		}
		if k != nil && ((k.ingested > 0 && ingested == k.ingested) || (k.moved > 0 && moved == k.moved)) {
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	io.Copy(io.Discard, pipe)
	cmd.Wait()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return true, -1, log.String(), ingested
	}
	return false, cmd.ProcessState.ExitCode(), log.String(), ingested
}

// TestPollCrash kills dmarcd poll --once with SIGKILL at several points of
// a pass, again and again, and runs it until a run finishes: every report is
// then stored exactly once (as a direct ingest stores them), and every
// message is in the archive or invalid folder, none lost, none left.
func TestPollCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dmarcd and runs it many times")
	}
	testserver.DovecotInstalled(t)
	bin := buildDmarcd(t)
	msgs := pollMessages(t, 41, 8)
	want := expectPoll(t, msgs)
	schedules := []struct {
		name   string
		points []killPoint
	}{
		{"mid-batch", []killPoint{{ingested: 3}, {ingested: 13}, {ingested: 5}, {ingested: 30}, {ingested: 21}}},
		{"after-move", []killPoint{{moved: 1}, {moved: 2}, {moved: 1}, {moved: 4}}},
		{"timed", []killPoint{{after: 25 * time.Millisecond}, {after: 50 * time.Millisecond}, {after: 75 * time.Millisecond},
			{after: 100 * time.Millisecond}, {after: 125 * time.Millisecond}, {after: 150 * time.Millisecond}}},
	}
	for _, sch := range schedules {
		t.Run(sch.name, func(t *testing.T) {
			srv := testserver.Dovecot(t)
			srv.Append("INBOX", datas(msgs)...)
			cfg := writePollConfig(t, srv, "")
			db := filepath.Join(t.TempDir(), "d.db")
			args := []string{"--config", cfg, "--store", db, "--log-level", "debug", "poll", "--once"}
			var kills []string
			for run := 0; ; run++ {
				if run > 40 {
					t.Fatal("no run finished after 40 runs")
				}
				var k *killPoint
				if run < len(sch.points) {
					k = &sch.points[run]
				}
				killed, code, log, n := runUntil(t, bin, args, k)
				if killed {
					kills = append(kills, fmt.Sprintf("%s: %d ingested", k, n))
					continue
				}
				if code != exitOK && code != exitQuarantined {
					t.Fatalf("run %d: exit %d\n%s", run, code, log)
				}
				break
			}
			t.Logf("%d messages; killed %d times (%s), then a run finished", len(msgs), len(kills), strings.Join(kills, ", "))
			if len(kills) == 0 {
				t.Error("no run was killed: the kill points come too late")
			}
			if killed, code, log, _ := runUntil(t, bin, args, nil); killed || code != exitOK || strings.Contains(log, "imap message ingested") {
				t.Errorf("a last run found work: exit %d\n%s", code, log)
			}
			checkPolled(t, srv, db, want)
		})
	}
}

// TestRunDaemon runs dmarcd run as a process: it reads new mail as it
// arrives (IDLE), serves /metrics, and stops on SIGTERM.
func TestRunDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dmarcd")
	}
	srv := testserver.Dovecot(t)
	bin := buildDmarcd(t)
	msgs := pollMessages(t, 51, 1)[:12]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	cfg := writePollConfig(t, srv, fmt.Sprintf("[metrics]\nlisten = %q\n", listen))
	db := filepath.Join(t.TempDir(), "d.db")
	cmd := exec.Command(bin, "--config", cfg, "--store", db, "run")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	defer func() {
		if t.Failed() {
			t.Logf("dmarcd run logged:\n%s", stderr.String())
		}
	}()
	metrics := func() string {
		resp, err := http.Get("http://" + listen + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen\n%s", what, stderr.String())
			}
		}
	}
	waitFor("a first pass", func() bool {
		return strings.Contains(metrics(), `dmarcd_imap_last_success_timestamp_seconds{mailbox="dovecot"}`)
	})
	srv.Append("INBOX", datas(msgs)...)
	waitFor("reading the new mail", func() bool { return len(srv.Messages("INBOX")) == 0 })
	body := metrics()
	for _, want := range []string{
		fmt.Sprintf("dmarcd_imap_messages_seen_total{mailbox=\"dovecot\"} %d", len(msgs)),
		`dmarcd_imap_reports_stored_total{kind="aggregate",mailbox="dovecot"}`,
		`dmarcd_imap_errors_total{kind="auth",mailbox="dovecot"}`,
		`dmarcd_aggregate_decoder_fallbacks_total{reason="charset"} 0`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(stderr.String(), "dmarcd stopped") {
			t.Errorf("after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("dmarcd run did not stop on SIGTERM\n%s", stderr.String())
	}
}

// TestPollLargeMailMemory polls a mailbox holding one large mail without a
// report (a scan with a big attachment sent to the report address): the
// process's peak memory stays within about twice the mail's size, and the
// quarantine keeps its header and first bytes, not the whole.
func TestPollLargeMailMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dmarcd")
	}
	srv := testserver.Dovecot(t)
	bin := buildDmarcd(t)
	const size = 48 << 20
	var b strings.Builder
	b.WriteString("From: scanner@example.com\r\nTo: dmarc@example.com\r\nSubject: Scan\r\nMIME-Version: 1.0\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for b.Len() < size {
		b.WriteString("JVBERi0xLjcKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29k\r\n")
	}
	mail := b.Len()
	srv.Append("INBOX", []byte(b.String()))
	b.Reset()
	cfg := writePollConfig(t, srv, "")
	db := filepath.Join(t.TempDir(), "d.db")
	code, peak, out := runPeak(t, bin, "--config", cfg, "--store", db, "poll", "--once")
	if code != exitQuarantined {
		t.Fatalf("poll --once: exit %d\n%s", code, out)
	}
	t.Logf("a mail of %d MiB: peak RSS %d MiB", mail>>20, peak>>20)
	if limit := int64(2 * mail); peak > limit {
		t.Errorf("peak RSS %d MiB for a mail of %d MiB, over twice its size", peak>>20, mail>>20)
	}
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.Query(context.Background(), "SELECT size FROM quarantined")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var kept int
	if !rows.Next() || rows.Scan(&kept) != nil || kept != 64<<10 {
		t.Errorf("the quarantine keeps %d bytes, want 64 KiB", kept)
	}
}

// runPeak runs a command and returns its exit code, its peak resident
// memory (VmHWM of /proc/PID/status, read while it runs: the rusage of a
// child of a large test process counts the parent's pages, which the child
// shares until it execs) and its output.
func runPeak(t *testing.T, bin string, args ...string) (int, int64, string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			if b, err := os.ReadFile(status); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						var kb int64
						fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
						peak.Store(max(peak.Load(), kb<<10))
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	cmd.Wait()
	close(done)
	return cmd.ProcessState.ExitCode(), peak.Load(), out.String()
}
