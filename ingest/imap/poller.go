// Package imap reads DMARC report mail from IMAP mailboxes (RFC 9051,
// RFC 3501) and stores the reports in it, without losing or doubling any.
//
// For each configured folder a pass searches every message (UID SEARCH ALL:
// a message is in the folder until its reports are stored, so a crashed run
// finds it again; \Seen is never read or set), and in batches of batch_size
// fetches the sizes, then the messages (BODY.PEEK[], streamed one message at
// a time, each at most MaxMessageBytes). Each message is handed to
// ingest.Ingester; then, per batch:
//
//   - a message whose reports are all stored (or were stored before) moves
//     to the archive folder, or is deleted when delete_after is set;
//   - a message with no parseable report moves to the invalid folder; its
//     bytes and the reason are in the store's quarantine;
//   - a message larger than MaxMessageBytes is not fetched: its header and
//     the reason are quarantined and it moves to the invalid folder;
//   - when the store fails the message stays where it is and the pass
//     ends; it is read again at the next pass, and what was stored of it
//     counts as duplicates then.
//
// Moving uses UID MOVE (RFC 6851); without it, UID COPY, then STORE
// \Deleted, then UID EXPUNGE (RFC 4315), each step only after the previous
// one succeeded, so that a failed copy never deletes anything.
//
// A killed process therefore leaves messages in the folder (to be read
// again), never a message deleted before its reports were committed.
//
// Between passes Run waits with IDLE (RFC 2177) on the first folder where
// the server offers it, else sleeps poll_interval; a dropped connection or a
// restarted server is reconnected with exponential backoff.
package imap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/ingest"
)

// Timing and retry bounds, each stated once.
const (
	// DefaultInitialBackoff is the first wait before reconnecting; it
	// doubles after each failed connection up to DefaultMaxBackoff, and is
	// reset by a complete pass.
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	// DefaultOnceAttempts is how many connections Once tries when the
	// connection drops, before it gives up.
	DefaultOnceAttempts = 5
	// DefaultProgressEvery is how many messages pass between progress log
	// lines on a large folder.
	DefaultProgressEvery = 500

	// DialTimeout bounds a TCP connection and TLS handshake.
	DialTimeout = 30 * time.Second
	// KeepAliveInterval is the TCP keep-alive period, which detects a
	// connection that died silently (a NAT dropped it) while in IDLE.
	KeepAliveInterval = 30 * time.Second
	// CommandTimeout bounds the wait for the server's answer to one
	// command or one message of a FETCH; after it the connection is closed
	// and reconnected.
	CommandTimeout = 2 * time.Minute
	// LogoutTimeout bounds the goodbye at the end of a session.
	LogoutTimeout = 5 * time.Second
	// MaxOversizeHeaderBytes bounds the header kept of a message too large
	// to fetch.
	MaxOversizeHeaderBytes = 64 << 10
)

// Options configure a Poller.
type Options struct {
	// Store receives the reports and the quarantine. Required.
	Store dmarcd.Store
	// Ingest configures the ingester; its Logger defaults to Logger.
	Ingest ingest.Options
	// Metrics are shared by the pollers of a process; nil creates
	// unregistered ones.
	Metrics *Metrics
	Logger  *slog.Logger

	// Zero values take the defaults above. Tests shorten them.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	OnceAttempts   int
	ProgressEvery  int
	// MaxMessageBytes is ingest.MaxMessageBytes unless set lower.
	MaxMessageBytes int64
	// Lease, when set, makes Run read the mailbox only while this
	// daemon holds its lease in the store (lease.go).
	Lease *Lease
}

// Poller reads one mailbox.
type Poller struct {
	mb    Mailbox
	opts  Options
	in    *ingest.Ingester
	store dmarcd.Store
	m     *Metrics
	log   *slog.Logger
	creds *credentials
	tls   *tls.Config
	now   func() time.Time

	health health
	// leased says whether Run held the lease at its last try;
	// leaseTried that it tried.
	leased, leaseTried bool

	// Test hooks: afterMessage runs after each message is ingested;
	// noIdle makes Run poll as if the server had no IDLE.
	// left are the messages without a report left in their folder
	// (non_reports = "leave"), by source (folder, UIDVALIDITY and UID),
	// so that later passes do not read them again; a restart reads them
	// once more.
	leftMu sync.Mutex
	left   map[string]bool

	afterMessage func(folder string, uid imap.UID)
	beforeBodies func(folder string, uids []imap.UID)
	noIdle       bool
}

// Error is a failed poll, with its kind: ErrConnect, ErrAuth, ErrCredentials,
// ErrIMAP or ErrStore.
type Error struct {
	Kind string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Kind returns the kind of a poll error, or "" for another error (the
// context ended).
func Kind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// certificateRefused says whether err is the server's certificate failing
// verification: an unknown authority, a wrong name, an expired or invalid
// certificate. Connecting again cannot help; the configuration or the
// server must change.
func certificateRefused(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

func kinded(kind string, format string, args ...any) error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// New returns a Poller of the mailbox, which must be valid.
func New(mb Mailbox, opts Options) (*Poller, error) {
	if err := mb.Validate(); err != nil {
		return nil, err
	}
	if opts.Store == nil {
		return nil, errors.New("imap poller: no store")
	}
	mb = mb.withDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Ingest.Logger == nil {
		opts.Ingest.Logger = opts.Logger
	}
	opts.Ingest.SkipNonReports = mb.NonReports == NonReportsLeave
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil)
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = DefaultInitialBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.OnceAttempts <= 0 {
		opts.OnceAttempts = DefaultOnceAttempts
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = DefaultProgressEvery
	}
	if opts.MaxMessageBytes <= 0 || opts.MaxMessageBytes > ingest.MaxMessageBytes {
		opts.MaxMessageBytes = ingest.MaxMessageBytes
	}
	now := opts.Ingest.Now
	if now == nil {
		now = time.Now
	}
	p := &Poller{
		mb:    mb,
		opts:  opts,
		in:    ingest.New(opts.Store, opts.Ingest),
		store: opts.Store,
		m:     opts.Metrics,
		log:   opts.Logger.With("mailbox", mb.Name),
		creds: &credentials{mb: mb},
		now:   now,
		left:  map[string]bool{},
	}
	if mb.TLS != TLSNone {
		p.tls = &tls.Config{ServerName: mb.Host, MinVersion: tls.VersionTLS12}
		if mb.TLSCAFile != "" {
			pem, err := os.ReadFile(mb.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("mailbox %q: tls_ca_file: %w", mb.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("mailbox %q: tls_ca_file %s holds no PEM certificate", mb.Name, mb.TLSCAFile)
			}
			p.tls.RootCAs = pool
		}
	}
	p.m.init(mb.Name)
	return p, nil
}

// Mailbox returns the configuration, defaults applied.
func (p *Poller) Mailbox() Mailbox { return p.mb }

// Summary counts what a poll did.
type Summary struct {
	Messages    int // messages read
	Aggregate   int // aggregate reports stored
	Records     int64
	Failure     int // failure reports stored
	TLS         int // SMTP TLS reports stored
	Duplicates  int // reports stored before
	Skipped     int // reports the store does not keep
	Quarantined int // messages quarantined whole or in part
	Archived    int // messages moved to the archive folder
	Invalid     int // messages moved to the invalid folder
	Deleted     int // messages deleted (delete_after)
	Left        int // messages without a report left where they are (non_reports = "leave")
}

func (s *Summary) add(o Summary) {
	s.Messages += o.Messages
	s.Aggregate += o.Aggregate
	s.Records += o.Records
	s.Failure += o.Failure
	s.TLS += o.TLS
	s.Duplicates += o.Duplicates
	s.Skipped += o.Skipped
	s.Quarantined += o.Quarantined
	s.Archived += o.Archived
	s.Invalid += o.Invalid
	s.Deleted += o.Deleted
	s.Left += o.Left
}

func (s Summary) logAttrs() []any {
	return []any{"messages", s.Messages, "aggregate", s.Aggregate, "records", s.Records, "failure", s.Failure, "tls", s.TLS,
		"duplicates", s.Duplicates, "skipped", s.Skipped, "quarantined", s.Quarantined,
		"archived", s.Archived, "invalid", s.Invalid, "deleted", s.Deleted, "left", s.Left}
}

// Once makes one pass over every folder of the mailbox. When the
// connection drops it connects again (OnceAttempts connections with
// backoff) and goes on; a refused login, a store failure or a refused
// command end it with an *Error. The summary counts what was done, also on
// error.
func (p *Poller) Once(ctx context.Context) (Summary, error) {
	var sum Summary
	backoff := p.opts.InitialBackoff
	for attempt := 1; ; attempt++ {
		_, err := p.session(ctx, &sum, false)
		if err == nil {
			return sum, nil
		}
		p.failed(err)
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
		if Kind(err) != ErrConnect || attempt >= p.opts.OnceAttempts {
			return sum, err
		}
		p.log.Warn("imap connection lost; connecting again", "err", err, "attempt", attempt, "of", p.opts.OnceAttempts, "in", backoff)
		if !sleep(ctx, backoff) {
			return sum, ctx.Err()
		}
		backoff = min(2*backoff, p.opts.MaxBackoff)
	}
}

// Run reads the mailbox until ctx ends: a pass, then IDLE (or a sleep of
// poll_interval), then another pass. Failures are logged, counted and
// retried with exponential backoff; Run returns nil when ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	defer p.releaseLease()
	backoff := p.opts.InitialBackoff
	for {
		if !p.holdLease(ctx) {
			if !sleep(ctx, p.renewEvery()) {
				return nil
			}
			continue
		}
		var sum Summary
		passes, err := p.session(ctx, &sum, true)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errLeaseLost) {
			continue // standing by
		}
		p.failed(err)
		if passes > 0 {
			backoff = p.opts.InitialBackoff
		}
		if Kind(err) == ErrTLS {
			// Not a network error: wait the longest, and say so loudly.
			backoff = p.opts.MaxBackoff
			p.log.Error("imap server's certificate refused; trying again later", "err", err, "in", backoff)
		} else {
			p.log.Warn("imap session ended; connecting again", "err", err, "kind", Kind(err), "in", backoff)
		}
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, p.opts.MaxBackoff)
	}
}

// failed counts an error and logs what the user can do about a refused
// login.
func (p *Poller) failed(err error) {
	kind := Kind(err)
	if kind == "" {
		return
	}
	p.m.Errors.WithLabelValues(p.mb.Name, kind).Inc()
	p.health.failed(kind, err, p.now())
	switch kind {
	case ErrAuth:
		p.log.Error("imap login failed: check the username and the password or token of the mailbox",
			"host", p.mb.Host, "username", p.mb.Username, "auth", p.mb.Auth, "err", err)
	case ErrCredentials:
		p.log.Error("imap login impossible: no password or token could be read", "auth", p.mb.Auth, "err", err)
	}
}

// session connects, logs in and makes passes: one, or until ctx ends or
// the connection fails when keep is set. It returns the number of complete
// passes.
func (p *Poller) session(ctx context.Context, sum *Summary, keep bool) (int, error) {
	cn, err := p.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer cn.logout()
	if err := cn.ensureFolders(); err != nil {
		return 0, err
	}
	if keep && len(p.mb.Folders) > 1 && cn.canIdle() {
		// IDLE tells about one folder: the others get connections of
		// their own, for the time of the session.
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() { stop(); wg.Wait() }()
		for _, f := range p.mb.Folders[1:] {
			wg.Go(func() { p.watch(wctx, f, cn.wake) })
		}
	}
	for passes := 0; ; {
		if !p.holdLease(ctx) {
			return passes, errLeaseLost
		}
		start := time.Now()
		var pass Summary
		err := cn.pass(ctx, &pass)
		sum.add(pass)
		if err != nil {
			return passes, err
		}
		passes++
		p.m.success(p.mb.Name, p.now())
		p.health.succeeded(p.now())
		attrs := append(pass.logAttrs(), "elapsed", time.Since(start).Round(time.Millisecond))
		if pass.Messages > 0 {
			p.log.Info("imap pass done", attrs...)
		} else {
			p.log.Debug("imap pass done", attrs...)
		}
		if !keep {
			return passes, nil
		}
		if err := cn.wait(ctx); err != nil {
			return passes, err
		}
	}
}

// conn is one logged-in connection.
type conn struct {
	p    *Poller
	c    *imapclient.Client
	wake chan struct{} // new mail announced (EXISTS)

	watchdog *time.Timer // closes c when the server does not answer
	timedOut atomic.Bool
}

// connect dials, greets and logs in.
func (p *Poller) connect(ctx context.Context) (*conn, error) {
	addr := net.JoinHostPort(p.mb.Host, strconv.Itoa(p.mb.Port))
	cn := &conn{p: p, wake: make(chan struct{}, 1)}
	opts := &imapclient.Options{
		TLSConfig: p.tls,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case cn.wake <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	dialer := &net.Dialer{Timeout: DialTimeout, KeepAlive: KeepAliveInterval}
	var nc net.Conn
	var err error
	if p.mb.TLS == TLSImplicit {
		nc, err = (&tls.Dialer{NetDialer: dialer, Config: p.tls}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		if certificateRefused(err) {
			return nil, kinded(ErrTLS, "connecting to %s (%s): the server's certificate is refused: %w; for a server with a private CA set tls_ca_file, else fix its certificate", addr, p.mb.TLS, err)
		}
		return nil, kinded(ErrConnect, "connecting to %s (%s): %w", addr, p.mb.TLS, err)
	}
	// Closing the connection under the client fails whatever waits on it.
	cn.watchdog = time.AfterFunc(CommandTimeout, func() {
		cn.timedOut.Store(true)
		nc.Close()
	})
	// Until logged in, ctx ending closes the connection too.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if p.mb.TLS == TLSStart {
		cn.c, err = imapclient.NewStartTLS(nc, opts)
		if err != nil {
			cn.disarm()
			nc.Close()
			if certificateRefused(err) {
				return nil, kinded(ErrTLS, "STARTTLS with %s: the server's certificate is refused: %w; for a server with a private CA set tls_ca_file, else fix its certificate", addr, err)
			}
			return nil, cn.fail("STARTTLS with "+addr, err)
		}
	} else {
		cn.c = imapclient.New(nc, opts)
	}
	if err := cn.c.WaitGreeting(); err != nil {
		cn.close()
		return nil, cn.fail("greeting of "+addr, err)
	}
	if err := cn.login(ctx); err != nil {
		cn.close()
		return nil, err
	}
	cn.disarm()
	p.log.Debug("imap logged in", "host", addr, "tls", p.mb.TLS,
		"idle", cn.c.Caps().Has(imap.CapIdle), "move", cn.c.Caps().Has(imap.CapMove), "uidplus", cn.c.Caps().Has(imap.CapUIDPlus))
	return cn, nil
}

func (cn *conn) login(ctx context.Context) error {
	mb := cn.p.mb
	var err error
	var sc sasl.Client
	switch mb.Auth {
	case AuthPassword:
		pw, perr := cn.p.creds.password()
		if perr != nil {
			return &Error{Kind: ErrCredentials, Err: perr}
		}
		err = cn.c.Login(mb.Username, pw).Wait()
	default:
		var serr error
		if sc, serr = cn.p.creds.saslClient(ctx); serr != nil {
			return &Error{Kind: ErrCredentials, Err: serr}
		}
		cn.arm(CommandTimeout) // the token may have taken a while
		err = cn.c.Authenticate(sc)
	}
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeUnavailable {
		// RFC 5530 §3: the server's authentication backend is down for
		// a while; nothing is wrong with the credentials.
		return kinded(ErrConnect, "logging in to %s: %w", mb.Host, err)
	}
	if errors.As(err, &ie) {
		cn.p.creds.refused()
		return kinded(ErrAuth, "logging in to %s as %s (%s): %w%s", mb.Host, mb.Username, mb.Auth, err, refusal(sc))
	}
	return cn.fail("logging in", err)
}

// arm (re)starts the watchdog: the server must answer within d.
func (cn *conn) arm(d time.Duration) { cn.watchdog.Reset(d) }

// disarm stops the watchdog while dmarcd works or waits on purpose.
func (cn *conn) disarm() { cn.watchdog.Stop() }

// fail turns a command's error into an *Error: a refusal by the server
// (NO, BAD) is ErrIMAP, anything else means the connection is gone.
func (cn *conn) fail(what string, err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return kinded(ErrIMAP, "%s: %w", what, err)
	}
	if cn.timedOut.Load() {
		return kinded(ErrConnect, "%s: no answer from the server within CommandTimeout (%s): %w", what, CommandTimeout, err)
	}
	return kinded(ErrConnect, "%s: %w", what, err)
}

func (cn *conn) logout() {
	cn.arm(LogoutTimeout)
	cn.c.Logout().Wait()
	cn.close()
}

func (cn *conn) close() {
	cn.disarm()
	cn.c.Close()
}

// ensureFolders creates the folders that are missing.
func (cn *conn) ensureFolders() error {
	mb := cn.p.mb
	cn.arm(CommandTimeout)
	defer cn.disarm()
	list, err := cn.c.List("", "*", nil).Collect()
	if err != nil {
		return cn.fail("listing folders", err)
	}
	have := map[string]bool{"INBOX": true}
	for _, l := range list {
		have[folderKey(l.Mailbox)] = true
	}
	for _, f := range append(append([]string{}, mb.Folders...), mb.ArchiveFolder, mb.InvalidFolder) {
		if have[folderKey(f)] {
			continue
		}
		cn.arm(CommandTimeout)
		err := cn.c.Create(f, nil).Wait()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
			err = nil // another client was quicker
		}
		if err != nil {
			return cn.fail("creating folder "+f, err)
		}
		// Subscribed, so that mail clients show it; not all servers
		// support subscriptions, and nothing depends on it.
		cn.c.Subscribe(f).Wait()
		have[folderKey(f)] = true
		cn.p.log.Info("imap folder created", "folder", f)
	}
	return nil
}

// wait returns when a new pass is due: new mail was announced (IDLE on
// the first folder, or a watcher of another folder), or poll_interval
// passed. It returns ctx's error when ctx ends.
func (cn *conn) wait(ctx context.Context) error {
	mb := cn.p.mb
	wait := mb.PollInterval
	if cn.p.opts.Lease != nil {
		// Back in time to renew the lease.
		wait = min(wait, cn.p.renewEvery())
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	if !cn.canIdle() {
		cn.disarm()
		select {
		case <-timer.C:
			return nil
		case <-cn.wake: // a watcher of another folder
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-cn.c.Closed():
			return kinded(ErrConnect, "connection closed by the server")
		}
	}
	_, err := cn.idle(ctx, mb.Folders[0], timer.C)
	if err != nil {
		return err
	}
	return ctx.Err()
}

// canIdle says whether the connection waits with IDLE.
func (cn *conn) canIdle() bool { return !cn.p.noIdle && cn.c.Caps().Has(imap.CapIdle) }

// idle selects folder and waits in IDLE (RFC 2177) until new mail is
// announced (cn.wake; announced is set), stop fires, ctx ends, or the
// connection closes (an error).
func (cn *conn) idle(ctx context.Context, folder string, stop <-chan time.Time) (announced bool, err error) {
	cn.arm(CommandTimeout)
	if _, err := cn.c.Select(folder, nil).Wait(); err != nil {
		return false, cn.fail("selecting folder "+folder, err)
	}
	select {
	case <-cn.wake: // mail arrived before IDLE
		cn.disarm()
		return true, nil
	default:
	}
	idle, err := cn.c.Idle()
	if err != nil {
		return false, cn.fail("starting IDLE", err)
	}
	cn.disarm()
	var closed bool
	select {
	case <-cn.wake:
		announced = true
	case <-stop:
	case <-ctx.Done():
	case <-cn.c.Closed():
		closed = true
	}
	cn.arm(CommandTimeout)
	if err := idle.Close(); err != nil {
		return announced, cn.fail("ending IDLE", err)
	}
	if closed {
		return announced, kinded(ErrConnect, "connection closed by the server in IDLE")
	}
	if err := idle.Wait(); err != nil {
		return announced, cn.fail("ending IDLE", err)
	}
	cn.disarm()
	return announced, nil
}

// watch keeps a connection of its own in IDLE on folder (one of the
// mailbox's folders after the first, which the session's connection
// watches), and wakes the session (wake) when mail arrives there, so that
// every folder is read as soon as mail arrives in it, not only every
// poll_interval. It reconnects with backoff, and returns when ctx ends.
// Its failures are logged, not counted: the session still reads the
// folder every poll_interval.
func (p *Poller) watch(ctx context.Context, folder string, wake chan<- struct{}) {
	backoff := p.opts.InitialBackoff
	for ctx.Err() == nil {
		cn, err := p.connect(ctx)
		if err == nil {
			backoff = p.opts.InitialBackoff
			err = cn.watchFolder(ctx, folder, wake)
			cn.logout()
		}
		if ctx.Err() != nil {
			return
		}
		p.log.Debug("imap folder watch ended; connecting again", "folder", folder, "err", err, "in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, p.opts.MaxBackoff)
	}
}

// watchFolder waits in IDLE on folder, renewing it every poll_interval,
// and passes each announcement on to wake.
func (cn *conn) watchFolder(ctx context.Context, folder string, wake chan<- struct{}) error {
	if !cn.canIdle() {
		<-ctx.Done() // the session polls the folder
		return nil
	}
	for ctx.Err() == nil {
		timer := time.NewTimer(cn.p.mb.PollInterval)
		announced, err := cn.idle(ctx, folder, timer.C)
		timer.Stop()
		if err != nil {
			return err
		}
		if announced {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// source names a message as an IMAP URL (RFC 5092), in the form of
// dmarcd.Origin.Source.
func (p *Poller) source(folder string, uidValidity uint32, uid imap.UID) string {
	host := p.mb.Host
	if p.mb.Port != DefaultPortPlain {
		host = net.JoinHostPort(host, strconv.Itoa(p.mb.Port))
	}
	u := url.URL{Scheme: "imap", User: url.User(p.mb.Username), Host: host}
	return fmt.Sprintf("%s/%s;UIDVALIDITY=%d;UID=%d", u.String(), url.PathEscape(folder), uidValidity, uid)
}

// sleep waits d, or less when ctx ends; it says whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Health is what the last attempts on a mailbox gave, for the ingest-health
// alert.
type Health struct {
	Mailbox     string
	LastSuccess time.Time // end of the last complete pass
	// LastError, LastErrorKind and LastErrorAt are of the last failure
	// since the last success; empty after a success.
	LastError     string
	LastErrorKind string
	LastErrorAt   time.Time
	// Failures counts the failures since the last success.
	Failures int
}

type health struct {
	mu sync.Mutex
	h  Health
}

func (h *health) failed(kind string, err error, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.h.LastError, h.h.LastErrorKind, h.h.LastErrorAt = err.Error(), kind, at
	h.h.Failures++
}

func (h *health) succeeded(at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.h = Health{LastSuccess: at}
}

// Health returns the state of the mailbox's last attempts.
func (p *Poller) Health() Health {
	p.health.mu.Lock()
	defer p.health.mu.Unlock()
	h := p.health.h
	h.Mailbox = p.mb.Name
	return h
}
