package signer

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
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
	// Allowed are the networks that may relay without authentication,
	// mail from any domain; AllowedFor those that may relay mail from
	// some domains only.
	Allowed    []netip.Prefix
	AllowedFor []NetworkDomains
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

// NetworkDomains is a network whose clients may relay mail from some
// domains only.
type NetworkDomains struct {
	Network netip.Prefix
	// Domains are the From domains the network may send as, each with
	// its subdomains.
	Domains []string
}

// User is a user of the relay.
type User struct {
	// Hash is the bcrypt hash of the password.
	Hash []byte
	// Domains are the From domains the user may send as, each with its
	// subdomains; nil: any domain of the key store.
	Domains []string
}

// Users maps user names to users.
type Users map[string]User

// ReadUsers reads a users file: one "name:bcrypt-hash" a line (for example
// from `htpasswd -nbB name password`), optionally followed by
// ":domain,domain..." to limit the From domains the user may send as (each
// with its subdomains); # comments and blank lines allowed.
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
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("users file %s line %d: want name:bcrypt-hash[:domain,...]", path, n)
		}
		// A bcrypt hash holds no ":" ($2y$10$...), so a third field
		// is the domains.
		hash, domains, _ := strings.Cut(rest, ":")
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			// Never quote the line: it may hold a password by mistake.
			return nil, fmt.Errorf("users file %s line %d (user %q): not a bcrypt hash", path, n, name)
		}
		u := User{Hash: []byte(hash)}
		if domains != "" {
			list, err := ParseDomains(strings.Split(domains, ","))
			if err != nil {
				return nil, fmt.Errorf("users file %s line %d (user %q): %w", path, n, name, err)
			}
			u.Domains = list
		}
		users[name] = u
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return users, nil
}

// dummyHash is compared against when the user is unknown, so that unknown
// and known users take the same time.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("dmarcd-no-such-user"), bcrypt.DefaultCost)

func (u Users) check(name, password string) (User, bool) {
	user, ok := u[name]
	hash := user.Hash
	if !ok {
		hash = dummyHash
	}
	return user, bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && ok
}

// ParseDomains reads a list of domain names for NetworkDomains and
// User.Domains: lower-cased, without a final dot; an empty list is an
// error (no domain at all would refuse every message).
func ParseDomains(list []string) ([]string, error) {
	var out []string
	for _, d := range list {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d == "" {
			continue
		}
		if !strings.Contains(d, ".") || strings.ContainsAny(d, " @/:") {
			return nil, fmt.Errorf("%q is not a domain name", d)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("no domain")
	}
	return out, nil
}

// Relay is the signing SMTP relay.
type Relay struct {
	cfg    RelayConfig
	server *smtp.Server
	hop    *nextHop
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
	r := &Relay{cfg: cfg, hop: newNextHop(cfg.NextHop, cfg.NextHopTLS, cfg.Hostname, cfg.Metrics)}
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

// Close stops the relay and closes its connections, and those to the next
// hop.
func (r *Relay) Close() error {
	err := r.server.Close()
	r.hop.close()
	return err
}

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

// session is one client connection. A transaction runs on the next hop as
// it runs here: MAIL opens it there, each RCPT is the next hop's answer for
// that recipient, and DATA sends the signed message; so a recipient the
// next hop refuses is refused alone, while the client is still there to
// hear it, and no accepted recipient is ever bounced for another's refusal.
type session struct {
	r       *Relay
	conn    *smtp.Conn
	remote  netip.Addr
	allowed bool     // by network
	domains []string // the From domains the client may use; nil: any
	user    string
	from    string
	to      []string
	// hop is the next hop's side of the transaction, from MAIL to its end;
	// nil when the next hop failed during the transaction.
	hop *hopConn
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
		if !s.allowed {
			for _, n := range r.cfg.AllowedFor {
				if n.Network.Contains(s.remote) {
					s.allowed, s.domains = true, n.Domains
					break
				}
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
		u, ok := s.r.cfg.Users.check(username, password)
		if !ok {
			if s.r.cfg.Metrics != nil {
				s.r.cfg.Metrics.AuthFailures.Inc()
			}
			s.r.cfg.Log.Warn("smtp relay: authentication failed", "remote", s.remote, "user", username)
			time.Sleep(authFailureDelay)
			return smtp.ErrAuthFailed
		}
		s.user, s.domains = username, u.Domains
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

// mayUse says whether the client may send mail from domain: any domain,
// or one of its domains or a subdomain of one.
func (s *session) mayUse(domain string) bool {
	if s.domains == nil {
		return true
	}
	for _, d := range s.domains {
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return true
		}
	}
	return false
}

var (
	errNextHopUnavailable = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 0}, Message: "The next hop is unavailable, try again later"}
	errSigningFailed      = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Signing failed, try again later"}
)

// hopFailed handles an error of the next hop during the transaction: its
// answer goes to the client as it is (a refusal stays a refusal, a
// temporary failure stays temporary); a broken connection is dropped and
// the client told to try again later.
func (s *session) hopFailed(err error, what string) error {
	log := s.r.cfg.Log.With("remote", s.remote, "next_hop", s.r.cfg.NextHop)
	if se, ok := isSMTPReply(err); ok {
		kind := nextHopDeferred
		if se.Code >= 500 {
			kind = nextHopRefused
		}
		s.r.cfg.Metrics.nextHopFailure(kind)
		log.Warn("smtp relay: the next hop refused "+what, "reply", replyText(err))
		return se
	}
	s.r.cfg.Metrics.nextHopFailure(nextHopIO)
	log.Error("smtp relay: the connection to the next hop broke", "during", what, "err", err)
	if s.hop != nil {
		s.r.hop.discard(s.hop)
		s.hop = nil
	}
	return errNextHopUnavailable
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if err := s.mayRelay(); err != nil {
		s.r.cfg.Log.Warn("smtp relay: refused mail from a client neither in the allowed networks nor authenticated", "remote", s.remote)
		return err
	}
	s.end()
	hop, err := s.r.hop.get()
	if err != nil {
		s.r.cfg.Log.Error("smtp relay: no connection to the next hop", "remote", s.remote, "next_hop", s.r.cfg.NextHop, "err", err)
		return errNextHopUnavailable
	}
	s.hop = hop
	var hopOpts *smtp.MailOptions
	if opts != nil {
		// What the message is; not the client's AUTH= or other
		// parameters, which are about this hop.
		hopOpts = &smtp.MailOptions{Body: opts.Body, Size: opts.Size, UTF8: opts.UTF8}
	}
	if err := hop.c.Mail(from, hopOpts); err != nil {
		err = s.hopFailed(err, "the sender")
		s.end()
		return err
	}
	s.from, s.to = from, nil
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.mayRelay(); err != nil {
		return err
	}
	if s.hop == nil {
		s.r.cfg.Metrics.recipient("deferred")
		return errNextHopUnavailable
	}
	if err := s.hop.c.Rcpt(to, nil); err != nil {
		err = s.hopFailed(err, "a recipient")
		result := "deferred"
		if se, ok := err.(*smtp.SMTPError); ok && se.Code >= 500 {
			result = "refused"
		}
		s.r.cfg.Metrics.recipient(result)
		return err
	}
	s.r.cfg.Metrics.recipient("accepted")
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	if err := s.mayRelay(); err != nil {
		return err
	}
	raw, err := readData(r, s.conn.Conn(), s.r.cfg.MaxMessageBytes)
	if err != nil {
		if errors.Is(err, errMalformedEnd) {
			s.r.cfg.Log.Warn("smtp relay: refused a message that ends with a bare CR or LF", "remote", s.remote)
		}
		return err
	}
	if int64(len(raw)) > s.r.cfg.MaxMessageBytes {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
	}
	if s.hop == nil {
		return errNextHopUnavailable
	}
	msg := CRLF(raw)
	res, err := s.r.cfg.Signer.Sign(msg)
	if err != nil {
		s.r.cfg.Log.Error("smtp relay: signing failed", "remote", s.remote, "err", err)
		return errSigningFailed
	}
	log := s.r.cfg.Log.With("remote", s.remote, "user", s.user, "from_domain", res.FromDomain, "result", res.Outcome)
	if !s.mayUse(res.FromDomain) {
		res.Outcome = OutcomeRefused
		s.r.cfg.Metrics.count(FrontendSMTP, res)
		log.Warn("smtp relay: refused mail from a domain the client may not use", "allowed", strings.Join(s.domains, ","))
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "You may not send mail from " + res.FromDomain + " through this relay"}
	}
	if res.Outcome == OutcomeRefused {
		s.r.cfg.Metrics.count(FrontendSMTP, res)
		log.Warn("smtp relay: refused unsigned mail", "reason", res.Reason)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "No DKIM key for the From domain: " + res.Reason}
	}
	w, err := s.hop.c.Data()
	if err != nil {
		return s.hopFailed(err, "the message")
	}
	_, err = io.WriteString(w, s.received())
	for _, sig := range res.Signatures {
		if err == nil {
			_, err = io.WriteString(w, sig)
		}
	}
	if err == nil {
		_, err = w.Write(msg)
	}
	if err != nil {
		w.Close()
		return s.hopFailed(err, "the message")
	}
	if err := w.Close(); err != nil {
		return s.hopFailed(err, "the message")
	}
	s.hop.messages++
	s.r.cfg.Metrics.count(FrontendSMTP, res)
	log.Info("smtp relay: message relayed", "selectors", strings.Join(res.Selectors, ","), "reason", res.Reason, "recipients", len(s.to))
	return nil
}

// received is the Received field the relay adds (RFC 5321 §4.4): who sent
// the message, with what, when, and for whom when there is one recipient
// (naming more would tell each the others).
func (s *session) received() string {
	proto := "ESMTP"
	if s.tls() {
		proto += "S"
	}
	if s.user != "" {
		proto += "A" // RFC 3848
	}
	helo := s.conn.Hostname()
	if helo == "" {
		helo = "unknown"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (dmarcd signer) with %s id %s", helo, s.remote, s.r.cfg.Hostname, proto, receivedID())
	if len(s.to) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", s.to[0])
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", time.Now().Format(time.RFC1123Z))
	return b.String()
}

// receivedID is a random id for the Received field, to find the message
// in the logs of both hops.
func receivedID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// end ends the transaction: the next hop's connection goes back to the
// pool (it is reset before its next use).
func (s *session) end() {
	if s.hop != nil {
		s.r.hop.put(s.hop)
		s.hop = nil
	}
	s.from, s.to = "", nil
}

func (s *session) Reset()        { s.end() }
func (s *session) Logout() error { s.end(); return nil }

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
