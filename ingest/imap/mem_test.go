package imap

// Fast tests of the edge cases against go-imap's in-memory server. The
// integration tests against Dovecot are in dovecot_test.go.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dmarcd/dmarcd"
)

const (
	memUser     = "dmarc@example.com"
	memPassword = "mem-secret"
)

// memServer is an in-memory IMAP server on a loopback port.
type memServer struct {
	Host string
	Port int
	user *imapmemserver.User
	// token is the OAuth 2.0 access token the server accepts.
	token atomic.Value
	// unavailable is how many logins fail with NO [UNAVAILABLE].
	unavailable atomic.Int32
}

func (s *memServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// startMem starts a server with the capabilities; nil caps offer
// IMAP4rev2 (MOVE, UIDPLUS, IDLE).
func startMem(t testing.TB, caps imap.CapSet) *memServer {
	t.Helper()
	return startMemWith(t, caps, nil, nil)
}

// startMemWith starts a server that offers STARTTLS with starttls, and
// listens through wrap (for implicit TLS) when not nil.
func startMemWith(t testing.TB, caps imap.CapSet, starttls *tls.Config, wrap func(net.Listener) net.Listener) *memServer {
	t.Helper()
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	}
	s := &memServer{Host: "127.0.0.1", user: imapmemserver.NewUser(memUser, memPassword)}
	s.token.Store("")
	if err := s.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &oauthSession{srv: s}, nil, nil
		},
		Caps:         caps,
		TLSConfig:    starttls,
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	if wrap != nil {
		ln = wrap(ln)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// oauthSession is the in-memory user session plus XOAUTH2 and OAUTHBEARER.
type oauthSession struct {
	*imapmemserver.UserSession // nil until logged in
	srv                        *memServer
}

func (s *oauthSession) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

func (s *oauthSession) Login(username, password string) error {
	if s.srv.unavailable.Add(-1) >= 0 {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Temporary authentication failure"}
	}
	if err := s.srv.user.Login(username, password); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(s.srv.user)
	return nil
}

func (s *oauthSession) AuthenticateMechanisms() []string {
	return []string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}
}

func (s *oauthSession) valid(user, token string) bool {
	want := s.srv.token.Load().(string)
	return user == memUser && want != "" && token == want
}

func (s *oauthSession) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case "XOAUTH2":
		return &xoauth2Server{sess: s}, nil
	case "OAUTHBEARER":
		return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if !s.valid(o.Username, o.Token) {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			s.UserSession = imapmemserver.NewUserSession(s.srv.user)
			return nil
		}), nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "mechanism not supported"}
}

// xoauth2Server checks XOAUTH2 as Gmail does: a bad token gets a JSON
// challenge, and the client's empty answer a failure.
type xoauth2Server struct {
	sess   *oauthSession
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, imapserver.ErrAuthFailed
	}
	fields := strings.Split(string(resp), "\x01")
	user := strings.TrimPrefix(fields[0], "user=")
	var token string
	if len(fields) > 1 {
		token = strings.TrimPrefix(fields[1], "auth=Bearer ")
	}
	if !x.sess.valid(user, token) {
		x.failed = true
		return []byte(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	x.sess.UserSession = imapmemserver.NewUserSession(x.sess.srv.user)
	return nil, true, nil
}

// memMailbox is the configuration of the test user.
func (s *memServer) mailbox() Mailbox {
	return Mailbox{Name: "mem", Host: s.Host, Port: s.Port, TLS: TLSNone, Username: memUser, Password: memPassword}
}

func (s *memServer) append(t testing.TB, folder string, msgs []testMessage) {
	t.Helper()
	appendAll(t, s.Addr(), memUser, memPassword, folder, msgs)
}

func (s *memServer) counts(t testing.TB, folders ...string) map[string]int {
	t.Helper()
	return folderCounts(t, s.Addr(), memUser, memPassword, folders...)
}

// newPoller returns a poller with fresh metrics and a log to inspect.
func newPoller(t testing.TB, mb Mailbox, store dmarcd.Store, opts Options) (*Poller, *Metrics, *logBuffer) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	log, lb := newLogger(t)
	if opts.Logger == nil {
		opts.Logger = log
	}
	opts.Store, opts.Metrics = store, m
	if opts.InitialBackoff == 0 {
		opts.InitialBackoff = 10 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 50 * time.Millisecond
	}
	p, err := New(mb, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, m, lb
}

func TestOnceStoresAndFiles(t *testing.T) {
	srv := startMem(t, nil)
	msgs := generated(1, 2, 3)
	want := expect(t, msgs)
	srv.append(t, "INBOX", msgs)

	st := openStore(t)
	mb := srv.mailbox()
	mb.BatchSize = 4
	p, m, lb := newPoller(t, mb, st, Options{ProgressEvery: 10})
	sum, err := p.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages: %+v", len(msgs), sum)
	if n := strings.Count(lb.String(), `msg="imap progress"`); n != (len(msgs)-1)/10 || !strings.Contains(lb.String(), "eta=") {
		t.Errorf("%d progress lines for %d messages, want one every 10 with an ETA:\n%s", n, len(msgs), lb)
	}
	if got := contentOf(t, st); !equalContent(got, want.Content) {
		t.Errorf("store holds %s, a direct ingest %s", got, want.Content)
	}
	counts := srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if counts["INBOX"] != 0 || counts[DefaultArchiveFolder] != want.Archive || counts[DefaultInvalidFolder] != want.Invalid {
		t.Errorf("folders %v, want INBOX 0, archive %d, invalid %d", counts, want.Archive, want.Invalid)
	}
	if sum.Messages != len(msgs) || sum.Archived != want.Archive || sum.Invalid != want.Invalid || sum.Quarantined != int(want.Content.Quarantined) {
		t.Errorf("summary %+v; want %d messages, %d archived, %d invalid, %d quarantined", sum, len(msgs), want.Archive, want.Invalid, want.Content.Quarantined)
	}
	if v := counterValue(t, m.MessagesSeen.WithLabelValues("mem")); v != float64(len(msgs)) {
		t.Errorf("messages seen metric %v, want %d", v, len(msgs))
	}
	if v := counterValue(t, m.ReportsStored.WithLabelValues("mem", "aggregate")); v != float64(len(want.Content.Aggregate)) {
		t.Errorf("aggregate reports stored metric %v, want %d", v, len(want.Content.Aggregate))
	}
	if v := counterValue(t, m.ReportsStored.WithLabelValues("mem", "failure")); v != float64(len(want.Content.Failure)) {
		t.Errorf("failure reports stored metric %v, want %d", v, len(want.Content.Failure))
	}
	if v := counterValue(t, m.LastSuccessTime.WithLabelValues("mem")); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success metric %v", v)
	}

	// A second pass finds nothing; a message appended again is a
	// duplicate and is archived.
	if sum, err := p.Once(context.Background()); err != nil || sum.Messages != 0 {
		t.Errorf("second pass: %+v, %v", sum, err)
	}
	srv.append(t, "INBOX", msgs[:1])
	sum, err = p.Once(context.Background())
	if err != nil || sum.Duplicates != 1 || sum.Archived != 1 || sum.Aggregate != 0 {
		t.Errorf("a message again: %+v, %v", sum, err)
	}
	if got := contentOf(t, st); !equalContent(got, want.Content) {
		t.Errorf("after the duplicate the store holds %s, want %s", got, want.Content)
	}
	if v := counterValue(t, m.Duplicates.WithLabelValues("mem")); v != 1 {
		t.Errorf("duplicates metric %v", v)
	}
}

func equalContent(a, b storeContent) bool {
	return strings.Join(a.Aggregate, ",") == strings.Join(b.Aggregate, ",") &&
		strings.Join(a.Failure, ",") == strings.Join(b.Failure, ",") &&
		a.Records == b.Records && a.Messages == b.Messages && a.Quarantined == b.Quarantined
}

// TestBatchBoundaries reads folders of sizes around the batch size.
func TestBatchBoundaries(t *testing.T) {
	all := generated(2, 3, 2)
	for _, n := range []int{0, 1, 2, 3, 4, 6, 7} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			srv := startMem(t, nil)
			msgs := all[:n]
			srv.append(t, "INBOX", msgs)
			mb := srv.mailbox()
			mb.BatchSize = 3
			p, _, _ := newPoller(t, mb, openStore(t), Options{})
			sum, err := p.Once(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			counts := srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
			if sum.Messages != n || counts["INBOX"] != 0 || counts[DefaultArchiveFolder]+counts[DefaultInvalidFolder] != n {
				t.Errorf("%d messages: summary %+v, folders %v", n, sum, counts)
			}
		})
	}
}

// TestWithoutMove: a server without MOVE gets COPY, STORE \Deleted and UID
// EXPUNGE (with UIDPLUS) or EXPUNGE.
func TestWithoutMove(t *testing.T) {
	for name, caps := range map[string]imap.CapSet{
		"uidplus":    {imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}},
		"no-uidplus": {imap.CapIMAP4rev1: {}},
	} {
		t.Run(name, func(t *testing.T) {
			srv := startMem(t, caps)
			msgs := generated(3, 1, 1)
			want := expect(t, msgs)
			srv.append(t, "INBOX", msgs)
			st := openStore(t)
			mb := srv.mailbox()
			mb.BatchSize = 5
			p, _, _ := newPoller(t, mb, st, Options{})
			if _, err := p.Once(context.Background()); err != nil {
				t.Fatal(err)
			}
			counts := srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
			if counts["INBOX"] != 0 || counts[DefaultArchiveFolder] != want.Archive || counts[DefaultInvalidFolder] != want.Invalid {
				t.Errorf("folders %v, want INBOX 0, archive %d, invalid %d", counts, want.Archive, want.Invalid)
			}
			if got := contentOf(t, st); !equalContent(got, want.Content) {
				t.Errorf("store holds %s, want %s", got, want.Content)
			}
		})
	}
}

// TestFoldersCreated reads two folders, one missing, into folders that
// do not exist yet.
func TestFoldersCreated(t *testing.T) {
	srv := startMem(t, nil)
	if err := srv.user.Create("Reports", nil); err != nil {
		t.Fatal(err)
	}
	msgs := generated(4, 1, 1)
	srv.append(t, "Reports", msgs[:3])
	srv.append(t, "INBOX", msgs[3:])
	mb := srv.mailbox()
	mb.Folders = []string{"INBOX", "Reports", "Reports/Later"}
	mb.ArchiveFolder = "Archive/DMARC"
	mb.InvalidFolder = "Archive/DMARC invalid"
	p, _, lb := newPoller(t, mb, openStore(t), Options{})
	sum, err := p.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	counts := srv.counts(t, "INBOX", "Reports", "Reports/Later", "Archive/DMARC", "Archive/DMARC invalid")
	if counts["INBOX"] != 0 || counts["Reports"] != 0 || counts["Reports/Later"] != 0 ||
		counts["Archive/DMARC"]+counts["Archive/DMARC invalid"] != len(msgs) || sum.Messages != len(msgs) {
		t.Errorf("folders %v, summary %+v", counts, sum)
	}
	if n := strings.Count(lb.String(), "imap folder created"); n != 3 {
		t.Errorf("%d folders created, want 3:\n%s", n, lb)
	}
}

// TestLoginFailure: a refused login is an ErrAuth, logged clearly, counted,
// not retried by Once; Run retries it and heals once the password file is
// fixed.
func TestLoginFailure(t *testing.T) {
	srv := startMem(t, nil)
	srv.append(t, "INBOX", generated(5, 1, 0)[:2])
	pwFile := filepath.Join(t.TempDir(), "password")
	os.WriteFile(pwFile, []byte("wrong\n"), 0o600)
	mb := srv.mailbox()
	mb.Password, mb.PasswordFile = "", pwFile
	p, m, lb := newPoller(t, mb, openStore(t), Options{})
	_, err := p.Once(context.Background())
	if Kind(err) != ErrAuth {
		t.Fatalf("Once: %v (kind %q), want kind %q", err, Kind(err), ErrAuth)
	}
	if v := counterValue(t, m.Errors.WithLabelValues("mem", ErrAuth)); v != 1 {
		t.Errorf("auth errors metric %v after Once, want 1 (no retry)", v)
	}
	if !strings.Contains(lb.String(), "imap login failed") || strings.Contains(lb.String(), "wrong") {
		t.Errorf("log lacks the login failure, or shows the password:\n%s", lb)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	eventually(t, 5*time.Second, "Run retried the login", func() bool {
		return counterValue(t, m.Errors.WithLabelValues("mem", ErrAuth)) >= 3
	})
	os.WriteFile(pwFile, []byte(memPassword+"\n"), 0o600)
	eventually(t, 5*time.Second, "Run logged in with the fixed password", func() bool {
		return srv.counts(t, "INBOX")["INBOX"] == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestLoginUnavailable: NO [UNAVAILABLE] at login (RFC 5530: the server's
// authentication backend is down) is retried, not reported as bad
// credentials.
func TestLoginUnavailable(t *testing.T) {
	srv := startMem(t, nil)
	srv.append(t, "INBOX", generated(15, 1, 0)[:1])
	srv.unavailable.Store(2)
	p, m, _ := newPoller(t, srv.mailbox(), openStore(t), Options{OnceAttempts: 3})
	if sum, err := p.Once(context.Background()); err != nil || sum.Archived != 1 {
		t.Fatalf("%+v, %v", sum, err)
	}
	if a, c := counterValue(t, m.Errors.WithLabelValues("mem", ErrAuth)), counterValue(t, m.Errors.WithLabelValues("mem", ErrConnect)); a != 0 || c != 2 {
		t.Errorf("auth errors %v, connect errors %v; want 0 and 2", a, c)
	}
}

// TestOversize: a message larger than the limit is not fetched; its header
// is quarantined with the reason and it moves to the invalid folder.
func TestOversize(t *testing.T) {
	srv := startMem(t, nil)
	msgs := generated(6, 1, 0)[:3]
	big := attachmentMail("huge.xml.gz", "application/gzip", bytes.Repeat([]byte("x"), 40_000))
	msgs = append(msgs, testMessage{"huge.eml", big})
	srv.append(t, "INBOX", msgs)
	st := openStore(t)
	p, m, _ := newPoller(t, srv.mailbox(), st, Options{MaxMessageBytes: 30_000})
	sum, err := p.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	counts := srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if counts["INBOX"] != 0 || counts[DefaultArchiveFolder] != 3 || counts[DefaultInvalidFolder] != 1 {
		t.Errorf("folders %v", counts)
	}
	if sum.Quarantined != 1 || sum.Messages != 4 {
		t.Errorf("summary %+v", sum)
	}
	rows, err := st.Query(context.Background(), "SELECT reason, message_id, raw FROM quarantine")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatal("nothing quarantined")
	}
	var reason, msgID string
	var raw []byte
	if err := rows.Scan(&reason, &msgID, &raw); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "larger than MaxMessageBytes (30000)") || msgID != "<huge.xml.gz@reporter.example>" ||
		!bytes.HasPrefix(raw, []byte("From: ")) || len(raw) > 1000 {
		t.Errorf("quarantined %q, %q, %d bytes:\n%s", reason, msgID, len(raw), raw)
	}
	if v := counterValue(t, m.Quarantined.WithLabelValues("mem")); v != 1 {
		t.Errorf("quarantined metric %v", v)
	}
}

func TestDeleteAfter(t *testing.T) {
	srv := startMem(t, nil)
	msgs := generated(7, 1, 1)
	want := expect(t, msgs)
	srv.append(t, "INBOX", msgs)
	mb := srv.mailbox()
	mb.DeleteAfter = true
	p, m, _ := newPoller(t, mb, openStore(t), Options{})
	sum, err := p.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	counts := srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if counts["INBOX"] != 0 || counts[DefaultArchiveFolder] != 0 || counts[DefaultInvalidFolder] != want.Invalid || sum.Deleted != want.Archive {
		t.Errorf("folders %v, summary %+v; want %d deleted, %d invalid", counts, sum, want.Archive, want.Invalid)
	}
	if v := counterValue(t, m.MessagesMoved.WithLabelValues("mem", MovedDeleted)); v != float64(want.Archive) {
		t.Errorf("deleted metric %v", v)
	}
}

// failingStore fails every write after the first ok ones.
type failingStore struct {
	dmarcd.Store
	mu     sync.Mutex
	ok     int
	broken bool
}

var errDiskFull = errors.New("disk full")

func (s *failingStore) allow() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ok == 0 || s.broken {
		s.broken = true
		return errDiskFull
	}
	s.ok--
	return nil
}

func (s *failingStore) BeginAggregate(ctx context.Context, r *dmarcd.AggregateReport, o dmarcd.Origin) (dmarcd.RecordWriter, error) {
	if err := s.allow(); err != nil {
		return nil, err
	}
	return s.Store.BeginAggregate(ctx, r, o)
}

func (s *failingStore) AddFailure(ctx context.Context, f *dmarcd.FailureReport, o dmarcd.Origin) error {
	if err := s.allow(); err != nil {
		return err
	}
	return s.Store.AddFailure(ctx, f, o)
}

// Flush passes on to the store: the poller flushes before it files.
func (s *failingStore) Flush(ctx context.Context) error {
	return s.Store.(dmarcd.Flusher).Flush(ctx)
}

func (s *failingStore) Quarantine(ctx context.Context, q dmarcd.Quarantined) error {
	if err := s.allow(); err != nil {
		return err
	}
	return s.Store.Quarantine(ctx, q)
}

// TestStoreFailure: when the store fails the message stays in the folder,
// the messages before it are filed, and a later pass finishes the job.
func TestStoreFailure(t *testing.T) {
	srv := startMem(t, nil)
	msgs := generated(8, 2, 2)
	want := expect(t, msgs)
	srv.append(t, "INBOX", msgs)
	st := openStore(t)
	mb := srv.mailbox()
	mb.BatchSize = 4
	failing := &failingStore{Store: st, ok: 6}
	p, m, lb := newPoller(t, mb, failing, Options{})
	sum, err := p.Once(context.Background())
	if Kind(err) != ErrStore || !errors.Is(err, errDiskFull) {
		t.Fatalf("Once with a failing store: %v", err)
	}
	counts := srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if counts["INBOX"] != len(msgs)-sum.Archived-sum.Invalid || sum.Archived+sum.Invalid == 0 || counts["INBOX"] == 0 {
		t.Errorf("after the failure: folders %v, summary %+v", counts, sum)
	}
	if v := counterValue(t, m.Errors.WithLabelValues("mem", ErrStore)); v != 1 {
		t.Errorf("store errors metric %v", v)
	}
	if !strings.Contains(lb.String(), "stays in its folder") {
		t.Errorf("no log line about the store failure:\n%s", lb)
	}

	p2, _, _ := newPoller(t, mb, st, Options{})
	if _, err := p2.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := contentOf(t, st); !equalContent(got, want.Content) {
		t.Errorf("store holds %s, want %s", got, want.Content)
	}
	counts = srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if counts["INBOX"] != 0 || counts[DefaultArchiveFolder] != want.Archive || counts[DefaultInvalidFolder] != want.Invalid {
		t.Errorf("folders %v, want archive %d, invalid %d", counts, want.Archive, want.Invalid)
	}
}

// TestGracefulStop: when ctx ends mid-batch, the message in hand is
// finished and the messages done are filed before Once returns.
func TestGracefulStop(t *testing.T) {
	srv := startMem(t, nil)
	msgs := generated(9, 2, 0)
	srv.append(t, "INBOX", msgs)
	mb := srv.mailbox()
	mb.BatchSize = 10
	p, _, _ := newPoller(t, mb, openStore(t), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	p.afterMessage = func(string, imap.UID) {
		if n++; n == 3 {
			cancel()
		}
	}
	sum, err := p.Once(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Once: %v", err)
	}
	counts := srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if sum.Messages != 3 || counts[DefaultArchiveFolder]+counts[DefaultInvalidFolder] != 3 || counts["INBOX"] != len(msgs)-3 {
		t.Errorf("summary %+v, folders %v", sum, counts)
	}
}

// TestRunIdle: with IDLE, new mail is read at once, long before the poll
// interval; ctx ending stops Run.
func TestRunIdle(t *testing.T) {
	srv := startMem(t, nil)
	msgs := generated(10, 1, 2)
	srv.append(t, "INBOX", msgs[:2])
	mb := srv.mailbox()
	mb.PollInterval = time.Hour
	testRun(t, srv, mb, "INBOX", msgs, nil)
}

// TestRunIdleOtherFolder: mail arriving in a folder after the first is
// read at once too (a connection of its own waits in IDLE there), not
// only at the next poll_interval.
func TestRunIdleOtherFolder(t *testing.T) {
	srv := startMem(t, nil)
	msgs := generated(13, 1, 2)
	srv.append(t, "INBOX", msgs[:2])
	mb := srv.mailbox()
	mb.Folders = []string{"INBOX", "Failure reports"}
	mb.PollInterval = time.Hour
	testRun(t, srv, mb, "Failure reports", msgs, nil)
}

// TestRunPoll: without IDLE, new mail is read after poll_interval.
func TestRunPoll(t *testing.T) {
	srv := startMem(t, nil)
	msgs := generated(11, 1, 2)
	srv.append(t, "INBOX", msgs[:2])
	mb := srv.mailbox()
	mb.PollInterval = time.Second
	testRun(t, srv, mb, "INBOX", msgs, func(p *Poller) { p.noIdle = true })
}

// testRun runs the poller: its first pass reads msgs[:2] from INBOX, then
// the rest of msgs arrives in folder and must be read.
func testRun(t *testing.T, srv *memServer, mb Mailbox, folder string, msgs []testMessage, setup func(*Poller)) {
	p, m, _ := newPoller(t, mb, openStore(t), Options{})
	if setup != nil {
		setup(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	seen := func(n int) func() bool {
		return func() bool { return counterValue(t, m.MessagesSeen.WithLabelValues("mem")) == float64(n) }
	}
	eventually(t, 5*time.Second, "the first pass read 2 messages", seen(2))
	time.Sleep(50 * time.Millisecond) // Run is waiting now
	start := time.Now()
	srv.append(t, folder, msgs[2:])
	eventually(t, 5*time.Second, "new mail was read", seen(len(msgs)))
	t.Logf("new mail read %s after it arrived", time.Since(start).Round(time.Millisecond))
	eventually(t, 5*time.Second, "the folder is empty", func() bool { return srv.counts(t, folder)[folder] == 0 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when ctx ended")
	}
}

// TestOAuth logs in with XOAUTH2 and OAUTHBEARER, the token read from a
// file at each login; a stale token is an auth error.
func TestOAuth(t *testing.T) {
	for _, auth := range []string{AuthXOAUTH2, AuthOAuthBearer} {
		t.Run(auth, func(t *testing.T) {
			srv := startMem(t, nil)
			srv.token.Store("token-1")
			srv.append(t, "INBOX", generated(12, 1, 0)[:1])
			tokenFile := filepath.Join(t.TempDir(), "token")
			os.WriteFile(tokenFile, []byte("token-1\n"), 0o600)
			mb := srv.mailbox()
			mb.Password, mb.Auth, mb.TokenFile = "", auth, tokenFile
			p, m, _ := newPoller(t, mb, openStore(t), Options{})
			if sum, err := p.Once(context.Background()); err != nil || sum.Messages != 1 {
				t.Fatalf("with a good token: %+v, %v", sum, err)
			}
			srv.token.Store("token-2") // the old token expired
			if _, err := p.Once(context.Background()); Kind(err) != ErrAuth {
				t.Errorf("with a stale token: %v, want kind %s", err, ErrAuth)
			}
			if v := counterValue(t, m.Errors.WithLabelValues("mem", ErrAuth)); v != 1 {
				t.Errorf("auth errors metric %v", v)
			}
			os.WriteFile(tokenFile, []byte("token-2\n"), 0o600)
			if _, err := p.Once(context.Background()); err != nil {
				t.Errorf("with the refreshed token file: %v", err)
			}
		})
	}
}

// TestOAuth2Refresh gets the access token from a token endpoint with the
// refresh token, and keeps the rotated refresh token.
func TestOAuth2Refresh(t *testing.T) {
	srv := startMem(t, nil)
	srv.token.Store("access-1")
	srv.append(t, "INBOX", generated(13, 1, 0)[:2])
	var requests atomic.Int32
	tokenServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		r.ParseForm()
		// refresh-1 gives access-1 and rotates to refresh-2, which gives
		// access-2.
		access := map[string]string{"refresh-1": "access-1", "refresh-2": "access-2"}[r.Form.Get("refresh_token")]
		if r.Form.Get("grant_type") != "refresh_token" || access == "" || r.Form.Get("client_id") != "dmarcd-test" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": "refresh-2"})
	}))
	defer tokenServer.Close()
	dir := t.TempDir()
	refreshFile := filepath.Join(dir, "refresh")
	os.WriteFile(refreshFile, []byte("refresh-1\n"), 0o600)
	mb := srv.mailbox()
	mb.Password, mb.Auth = "", AuthXOAUTH2
	mb.OAuth2 = &OAuth2Config{TokenURL: tokenServer.URL, ClientID: "dmarcd-test", RefreshTokenFile: refreshFile, Scopes: []string{"https://mail.google.com/"}}
	p, _, _ := newPoller(t, mb, openStore(t), Options{})
	for range 2 {
		if sum, err := p.Once(context.Background()); err != nil {
			t.Fatalf("%+v, %v", sum, err)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d token requests for two logins within the token's life, want 1", n)
	}
	if data, _ := os.ReadFile(refreshFile); string(data) != "refresh-2\n" {
		t.Errorf("refresh token file holds %q after rotation", data)
	}
	if srv.counts(t, "INBOX")["INBOX"] != 0 {
		t.Error("the inbox was not read")
	}
	// The server revokes access-1 before its expiry: the login fails
	// once, and the next one gets a new token.
	srv.token.Store("access-2")
	if _, err := p.Once(context.Background()); Kind(err) != ErrAuth {
		t.Errorf("with a revoked token: %v", err)
	}
	if _, err := p.Once(context.Background()); err != nil {
		t.Errorf("after a refused token: %v", err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

// TestTokenCommand runs a command for the token.
func TestTokenCommand(t *testing.T) {
	srv := startMem(t, nil)
	srv.token.Store("from-command")
	mb := srv.mailbox()
	mb.Password, mb.Auth, mb.TokenCommand = "", AuthOAuthBearer, []string{"/bin/sh", "-c", "echo from-command"}
	p, _, _ := newPoller(t, mb, openStore(t), Options{})
	if _, err := p.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	mb.TokenCommand = []string{"/bin/sh", "-c", "echo no token >&2; exit 3"}
	p, _, _ = newPoller(t, mb, openStore(t), Options{})
	if _, err := p.Once(context.Background()); Kind(err) != ErrCredentials || !strings.Contains(err.Error(), "no token") {
		t.Errorf("failing command: %v", err)
	}
}

// TestConnectRetry: Once retries a refused connection OnceAttempts times.
func TestConnectRetry(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	mb := Mailbox{Host: "127.0.0.1", Port: port, TLS: TLSNone, Username: "u", Password: "p"}
	p, m, _ := newPoller(t, mb, openStore(t), Options{OnceAttempts: 3})
	_, err := p.Once(context.Background())
	if Kind(err) != ErrConnect {
		t.Fatalf("Once against a closed port: %v", err)
	}
	if v := counterValue(t, m.Errors.WithLabelValues("u@127.0.0.1", ErrConnect)); v != 3 {
		t.Errorf("connect errors metric %v, want 3", v)
	}
}

func TestValidate(t *testing.T) {
	good := Mailbox{Host: "imap.example.com", Username: "dmarc", PasswordFile: "/etc/pw"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit func(*Mailbox)
		want string
	}{
		{func(m *Mailbox) { m.Host = "" }, "host is required"},
		{func(m *Mailbox) { m.Username = "" }, "username is required"},
		{func(m *Mailbox) { m.TLS = "ssl" }, `tls "ssl"`},
		{func(m *Mailbox) { m.Auth = "kerberos" }, `auth "kerberos"`},
		{func(m *Mailbox) { m.Password = "x" }, "exactly one of password and password_file"},
		{func(m *Mailbox) { m.PasswordFile = "" }, "exactly one of password and password_file"},
		{func(m *Mailbox) { m.Auth = AuthXOAUTH2 }, "exactly one of token_file"},
		{func(m *Mailbox) { m.Auth, m.PasswordFile, m.TokenFile = AuthXOAUTH2, "", "/t" }, ""},
		{func(m *Mailbox) {
			m.Auth, m.PasswordFile, m.OAuth2 = AuthOAuthBearer, "", &OAuth2Config{TokenURL: "ftp://x", ClientID: "c", RefreshTokenFile: "/r"}
		}, "token_url"},
		{func(m *Mailbox) { m.Folders = []string{"INBOX", "inbox"} }, "listed twice"},
		{func(m *Mailbox) { m.Folders = []string{"INBOX", "dmarc-archive"} }, "also a folder to read"},
		{func(m *Mailbox) { m.InvalidFolder = DefaultArchiveFolder }, "are both"},
		{func(m *Mailbox) { m.BatchSize = -1 }, "batch_size"},
		{func(m *Mailbox) { m.PollInterval = time.Millisecond }, "poll_interval"},
		{func(m *Mailbox) { m.Port = 70000 }, "port 70000"},
	} {
		m := good
		tc.edit(&m)
		err := m.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", m, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", m, err, tc.want)
		}
	}
}

func TestSource(t *testing.T) {
	p, err := New(Mailbox{Host: "mail.example.com", Username: "dmarc@example.com", Password: "x"}, Options{Store: openStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	got := p.source("Reports/DMARC 2026", 7, 42)
	want := "imap://dmarc%40example.com@mail.example.com:993/Reports%2FDMARC%202026;UIDVALIDITY=7;UID=42"
	if got != want {
		t.Errorf("source %q, want %q", got, want)
	}
}

// TestTLSModes reads over implicit TLS and STARTTLS with a private CA
// (tls_ca_file), and shows that TLS is the default: a mailbox without tls
// set does not fall back to plain text.
func TestTLSModes(t *testing.T) {
	certPEM, tlsCert := selfSigned(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, certPEM, 0o644)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{tlsCert}}

	for _, mode := range []string{TLSImplicit, TLSStart} {
		t.Run(mode, func(t *testing.T) {
			var srv *memServer
			if mode == TLSImplicit {
				srv = startMemWith(t, nil, nil, func(ln net.Listener) net.Listener { return tls.NewListener(ln, serverTLS) })
			} else {
				srv = startMemWith(t, nil, serverTLS, nil)
			}
			msg := generated(14, 1, 0)[0]
			if _, err := srv.user.Append("INBOX", bytes.NewReader(msg.Data), &imap.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			mb := srv.mailbox()
			mb.TLS, mb.TLSCAFile = mode, caFile
			p, _, _ := newPoller(t, mb, openStore(t), Options{})
			if sum, err := p.Once(context.Background()); err != nil || sum.Archived != 1 {
				t.Fatalf("%s: %+v, %v", mode, sum, err)
			}
			// Without the CA the server is not trusted: a refused
			// certificate, not a network error, so not tried again.
			mb.TLSCAFile = ""
			p, m, _ := newPoller(t, mb, openStore(t), Options{OnceAttempts: 5, InitialBackoff: time.Minute})
			if _, err := p.Once(context.Background()); Kind(err) != ErrTLS || !strings.Contains(err.Error(), "certificate is refused") {
				t.Errorf("%s without the CA: %v", mode, err)
			}
			if v := counterValue(t, m.Errors.WithLabelValues("mem", ErrTLS)); v != 1 {
				t.Errorf("%s: %v tls errors counted, want 1 (no retry)", mode, v)
			}
		})
	}
	t.Run("default", func(t *testing.T) {
		srv := startMem(t, nil) // plain text only
		mb := srv.mailbox()
		mb.TLS = ""
		p, _, _ := newPoller(t, mb, openStore(t), Options{OnceAttempts: 1})
		if _, err := p.Once(context.Background()); Kind(err) != ErrConnect {
			t.Errorf("the default (tls) against a plain-text server: %v", err)
		}
	})
}

// selfSigned makes a certificate for 127.0.0.1.
func selfSigned(t testing.TB) ([]byte, tls.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dmarcd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestNonReportsLeave: with non_reports = "leave", mail without a report
// stays where it is, nothing of it is quarantined, and later passes do not
// read it again; report mail is archived as always.
func TestNonReportsLeave(t *testing.T) {
	srv := startMem(t, nil)
	reports := generated(31, 1, 0)[:3]
	other := []testMessage{{Name: "newsletter", Data: []byte("From: news@example.org\r\nSubject: Our news\r\n\r\nHello.\r\n")}}
	srv.append(t, "INBOX", append(append([]testMessage{}, reports...), other...))
	st := openStore(t)
	mb := srv.mailbox()
	mb.NonReports = NonReportsLeave
	p, _, _ := newPoller(t, mb, st, Options{})
	sum, err := p.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	counts := srv.counts(t, "INBOX", DefaultArchiveFolder, DefaultInvalidFolder)
	if sum.Left != 1 || sum.Quarantined != 0 || counts["INBOX"] != 1 || counts[DefaultArchiveFolder] != len(reports) || counts[DefaultInvalidFolder] != 0 {
		t.Errorf("summary %+v, folders %v", sum, counts)
	}
	if n := scalar(t, st, "SELECT COUNT(*) FROM quarantined"); n != 0 {
		t.Errorf("%d quarantined", n)
	}
	if sum, err := p.Once(context.Background()); err != nil || sum.Messages != 0 {
		t.Errorf("second pass read %+v, %v", sum, err)
	}
	mb.NonReports = "keep"
	if err := mb.Validate(); err == nil {
		t.Error("non_reports = \"keep\" accepted")
	}
}
