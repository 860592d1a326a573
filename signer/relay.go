package signer

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
)

// Limits of the SMTP relay.
const (
	// DefaultMaxMessageBytes bounds a message (the SIZE extension).
	DefaultMaxMessageBytes = 32 << 20
	// MaxRecipients bounds the recipients of one message (RFC 5321
	// §4.5.3.1.8 asks servers to take at least 100).
	MaxRecipients = 100
	// RelayReadTimeout and RelayWriteTimeout bound one command or reply.
	RelayReadTimeout  = 5 * time.Minute
	RelayWriteTimeout = time.Minute
	// NextHopTimeout bounds the relay's conversation with the next hop.
	NextHopTimeout = 5 * time.Minute
	// authFailureDelay slows down password guessing.
	authFailureDelay = time.Second
	// MaxUsersFileBytes bounds the users file.
	MaxUsersFileBytes = 1 << 20
)

// NextHopTLS says how the relay uses TLS towards its next hop.
type NextHopTLS string

const (
	// NextHopOpportunistic uses STARTTLS when offered, without checking
	// the certificate (RFC 7435).
	NextHopOpportunistic NextHopTLS = "opportunistic"
	// NextHopRequireTLS requires STARTTLS and a certificate valid for the
	// next hop's host name.
	NextHopRequireTLS NextHopTLS = "required"
	// NextHopNoTLS never uses TLS (a next hop on the same machine).
	NextHopNoTLS NextHopTLS = "none"
)

// RelayConfig configures the SMTP relay.
type RelayConfig struct {
	// Signer signs the messages.
	Signer *Signer
	// Allowed are the networks that may relay without authentication.
	Allowed []netip.Prefix
	// Users are the users who may relay after AUTH PLAIN over TLS.
	Users Users
	// TLS, when set, offers STARTTLS; without it AUTH is never offered.
	TLS *tls.Config
	// NextHop is the host:port mail is passed to, and NextHopTLS how.
	NextHop    string
	NextHopTLS NextHopTLS
	// MaxMessageBytes bounds a message; DefaultMaxMessageBytes when 0.
	MaxMessageBytes int64
	// Hostname is the name in the greeting.
	Hostname string
	Log      *slog.Logger
	Metrics  *Metrics
}

// Users maps user names to bcrypt password hashes.
type Users map[string][]byte

// ReadUsers reads a users file: one "name:bcrypt-hash" a line (for example
// from `htpasswd -nbB name password`), # comments and blank lines allowed.
func ReadUsers(path string) (Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	users := Users{}
	sc := bufio.NewScanner(io.LimitReader(f, MaxUsersFileBytes))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("users file %s line %d: want name:bcrypt-hash", path, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			// Never quote the line: it may hold a password by mistake.
			return nil, fmt.Errorf("users file %s line %d (user %q): not a bcrypt hash", path, n, name)
		}
		users[name] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return users, nil
}

// dummyHash is compared against when the user is unknown, so that unknown
// and known users take the same time.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("dmarcd-no-such-user"), bcrypt.DefaultCost)

func (u Users) check(name, password string) bool {
	hash, ok := u[name]
	if !ok {
		hash = dummyHash
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && ok
}

// Relay is the signing SMTP relay.
type Relay struct {
	cfg    RelayConfig
	server *smtp.Server
}

// NewRelay makes a relay; Serve runs it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Signer == nil {
		return nil, errors.New("signer: the relay needs a signer")
	}
	if cfg.NextHop == "" {
		return nil, errors.New("signer: the relay needs a next hop (signer.next_hop)")
	}
	if _, _, err := net.SplitHostPort(cfg.NextHop); err != nil {
		return nil, fmt.Errorf("signer: next hop %q: want host:port", cfg.NextHop)
	}
	switch cfg.NextHopTLS {
	case "":
		cfg.NextHopTLS = NextHopOpportunistic
	case NextHopOpportunistic, NextHopRequireTLS, NextHopNoTLS:
	default:
		return nil, fmt.Errorf("signer: next hop TLS %q: want opportunistic, required or none", cfg.NextHopTLS)
	}
	if len(cfg.Users) > 0 && cfg.TLS == nil {
		return nil, errors.New("signer: users can only authenticate over TLS: set a certificate and key")
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	r := &Relay{cfg: cfg}
	s := smtp.NewServer(smtp.BackendFunc(r.newSession))
	s.Domain = cfg.Hostname
	s.TLSConfig = cfg.TLS
	s.AllowInsecureAuth = false // AUTH only after STARTTLS (RFC 4954 §4)
	s.MaxMessageBytes = cfg.MaxMessageBytes
	s.MaxRecipients = MaxRecipients
	s.ReadTimeout = RelayReadTimeout
	s.WriteTimeout = RelayWriteTimeout
	s.ErrorLog = slogLogger{cfg.Log}
	r.server = s
	return r, nil
}

// Serve accepts connections on l until Close.
func (r *Relay) Serve(l net.Listener) error {
	err := r.server.Serve(l)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the relay and closes its connections.
func (r *Relay) Close() error { return r.server.Close() }

// slogLogger turns go-smtp's log lines into slog lines.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) {
	l.log.Warn("smtp relay", "msg", fmt.Sprintf(format, v...))
}
func (l slogLogger) Println(v ...any) { l.log.Warn("smtp relay", "msg", fmt.Sprint(v...)) }

var (
	errNotAllowed = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required: this relay takes mail from its networks and authenticated users only"}
	errTLSRequired = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11},
		Message: "Encryption required for authentication: STARTTLS first"}
)

type session struct {
	r       *Relay
	conn    *smtp.Conn
	remote  netip.Addr
	allowed bool // by network
	user    string
	from    string
	to      []string
}

func (r *Relay) newSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{r: r, conn: c}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		s.remote = ap.Addr().Unmap()
		for _, p := range r.cfg.Allowed {
			if p.Contains(s.remote) {
				s.allowed = true
				break
			}
		}
	}
	return s, nil
}

func (s *session) tls() bool {
	_, ok := s.conn.TLSConnectionState()
	return ok
}

// AuthMechanisms offers PLAIN on TLS connections only.
func (s *session) AuthMechanisms() []string {
	if !s.tls() || len(s.r.cfg.Users) == 0 {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if !s.tls() {
		return nil, errTLSRequired
	}
	if mech != sasl.Plain || len(s.r.cfg.Users) == 0 {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		if !s.r.cfg.Users.check(username, password) {
			if s.r.cfg.Metrics != nil {
				s.r.cfg.Metrics.AuthFailures.Inc()
			}
			s.r.cfg.Log.Warn("smtp relay: authentication failed", "remote", s.remote, "user", username)
			time.Sleep(authFailureDelay)
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

// mayRelay: never an open relay.
func (s *session) mayRelay() error {
	if s.allowed || s.user != "" {
		return nil
	}
	return errNotAllowed
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := s.mayRelay(); err != nil {
		s.r.cfg.Log.Warn("smtp relay: refused mail from a client neither in the allowed networks nor authenticated", "remote", s.remote)
		return err
	}
	s.from, s.to = from, nil
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.mayRelay(); err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	if err := s.mayRelay(); err != nil {
		return err
	}
	// go-smtp stops the reader at MaxMessageBytes; the limit here is a
	// second bound.
	raw, err := io.ReadAll(io.LimitReader(r, s.r.cfg.MaxMessageBytes+1))
	if err != nil {
		return err
	}
	if int64(len(raw)) > s.r.cfg.MaxMessageBytes {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
	}
	msg := CRLF(raw)
	res, err := s.r.cfg.Signer.Sign(msg)
	if err != nil {
		s.r.cfg.Log.Error("smtp relay: signing failed", "remote", s.remote, "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Signing failed, try again later"}
	}
	s.r.cfg.Metrics.count(FrontendSMTP, res)
	log := s.r.cfg.Log.With("remote", s.remote, "user", s.user, "from_domain", res.FromDomain, "result", res.Outcome)
	if res.Outcome == OutcomeRefused {
		log.Warn("smtp relay: refused unsigned mail", "reason", res.Reason)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "No DKIM key for the From domain: " + res.Reason}
	}
	var out bytes.Buffer
	for _, sig := range res.Signatures {
		out.WriteString(sig)
	}
	out.Write(msg)
	if err := s.r.forward(s.from, s.to, out.Bytes()); err != nil {
		log.Error("smtp relay: the next hop did not take the message", "next_hop", s.r.cfg.NextHop, "err", err)
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			return se
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 0}, Message: "The next hop is unavailable, try again later"}
	}
	log.Info("smtp relay: message relayed", "selectors", strings.Join(res.Selectors, ","), "reason", res.Reason, "recipients", len(s.to))
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// forward passes a signed message to the next hop.
func (r *Relay) forward(from string, to []string, msg []byte) error {
	c, err := r.dialNextHop()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// dialNextHop connects to the next hop, with STARTTLS as configured.
func (r *Relay) dialNextHop() (*smtp.Client, error) {
	dial := func() (net.Conn, error) {
		conn, err := net.DialTimeout("tcp", r.cfg.NextHop, 30*time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(NextHopTimeout))
		}
		return conn, err
	}
	plain := func() (*smtp.Client, error) {
		conn, err := dial()
		if err != nil {
			return nil, err
		}
		c := smtp.NewClient(conn)
		if err := c.Hello(r.cfg.Hostname); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if r.cfg.NextHopTLS == NextHopNoTLS {
		return plain()
	}
	host, _, _ := net.SplitHostPort(r.cfg.NextHop)
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if r.cfg.NextHopTLS == NextHopOpportunistic {
		tc.InsecureSkipVerify = true // opportunistic TLS checks no certificate (RFC 7435 §1.3)
	}
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	c, err := smtp.NewClientStartTLS(conn, tc)
	if err != nil && r.cfg.NextHopTLS == NextHopOpportunistic && strings.Contains(err.Error(), "support STARTTLS") {
		return plain() // not offered: go on in clear text
	}
	if err != nil {
		return nil, fmt.Errorf("STARTTLS with the next hop: %w", err)
	}
	return c, nil
}

// ParseNetworks parses CIDRs and bare addresses.
func ParseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a network (CIDR) nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
