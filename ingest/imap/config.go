package imap

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Defaults and bounds of a Mailbox, each stated once.
const (
	// DefaultFolder is read when a mailbox names no folders.
	DefaultFolder = "INBOX"
	// DefaultArchiveFolder receives messages whose reports are all stored.
	// A flat name, so that it is valid whatever the server's hierarchy
	// delimiter.
	DefaultArchiveFolder = "dmarc-archive"
	// DefaultInvalidFolder receives messages that hold no parseable report.
	DefaultInvalidFolder = "dmarc-invalid"

	// DefaultBatchSize is how many messages one FETCH asks for; a batch is
	// moved to the archive in one MOVE once its messages are ingested.
	DefaultBatchSize = 100
	// MaxBatchSize bounds batch_size.
	MaxBatchSize = 10_000

	// DefaultPollInterval is how often a folder is read when the server
	// offers no IDLE; with IDLE (which watches one folder per connection:
	// the first on the session's connection, each other one on a
	// connection of its own) it is how often IDLE is renewed, every folder
	// read again and the connection checked.
	DefaultPollInterval = 5 * time.Minute
	// MinPollInterval bounds poll_interval from below, to spare servers.
	MinPollInterval = time.Second

	// DefaultPortTLS is the port of implicit TLS (RFC 8314 §7: imaps).
	DefaultPortTLS = 993
	// DefaultPortPlain is the port of STARTTLS and plain connections.
	DefaultPortPlain = 143
)

// TLS modes of a Mailbox.
const (
	TLSImplicit = "tls"      // TLS from the first byte (port 993), the default
	TLSStart    = "starttls" // STARTTLS on a plain connection (port 143)
	TLSNone     = "plain"    // no TLS at all: only when set explicitly
)

// Authentication kinds of a Mailbox.
const (
	AuthPassword    = "password"    // LOGIN with a password, the default
	AuthXOAUTH2     = "xoauth2"     // SASL XOAUTH2 (Microsoft 365, Gmail)
	AuthOAuthBearer = "oauthbearer" // SASL OAUTHBEARER, RFC 7628
)

// Mailbox is one IMAP account to read reports from: a [[mailbox]] table of
// the configuration file. Zero fields take the defaults above.
type Mailbox struct {
	// Name labels the mailbox in logs and metrics; username@host when
	// empty.
	Name string `toml:"name"`
	Host string `toml:"host"`
	// Port defaults to 993 for tls and 143 for starttls and plain.
	Port int `toml:"port"`
	// TLS is "tls" (the default), "starttls" or "plain".
	TLS string `toml:"tls"`
	// TLSCAFile is a PEM file of CA certificates to trust instead of the
	// system's, for servers with a private CA.
	TLSCAFile string `toml:"tls_ca_file"`

	Username string `toml:"username"`
	// Auth is "password" (the default), "xoauth2" or "oauthbearer".
	Auth string `toml:"auth"`
	// Password, or PasswordFile (read again at each login, so that a
	// rotated password needs no restart): exactly one for auth "password".
	Password     string `toml:"password"`
	PasswordFile string `toml:"password_file"`
	// Exactly one token source for auth "xoauth2" and "oauthbearer":
	// TokenFile holds an access token kept fresh by another program and is
	// read at each login; TokenCommand is run at each login and prints one;
	// OAuth2 lets dmarcd refresh tokens itself.
	TokenFile    string        `toml:"token_file"`
	TokenCommand []string      `toml:"token_command"`
	OAuth2       *OAuth2Config `toml:"oauth2"`

	// Folders are read in order; ["INBOX"] when empty.
	Folders []string `toml:"folders"`
	// ArchiveFolder and InvalidFolder are created when missing.
	ArchiveFolder string `toml:"archive_folder"`
	InvalidFolder string `toml:"invalid_folder"`
	// DeleteAfter deletes a message once every report in it is stored,
	// instead of moving it to ArchiveFolder. Off by default: nothing is
	// deleted unless configured. Invalid messages are never deleted.
	DeleteAfter bool `toml:"delete_after"`

	// NonReports says what becomes of mail that holds no report at all:
	// "move" (the default) keeps its header and the start of its body in
	// the quarantine and moves it to InvalidFolder; "leave" keeps nothing
	// and leaves it where it is, for a mailbox that also receives other
	// mail.
	NonReports string `toml:"non_reports"`

	BatchSize    int           `toml:"batch_size"`
	PollInterval time.Duration `toml:"poll_interval"`
}

// What becomes of mail that holds no report (Mailbox.NonReports).
const (
	NonReportsMove  = "move"
	NonReportsLeave = "leave"
)

// OAuth2Config lets dmarcd get access tokens itself with the OAuth 2.0
// refresh-token grant (RFC 6749 §6), as Microsoft 365 and Gmail issue them.
// The refresh token is obtained once, out of band (for example with the
// provider's device-code flow), and written to RefreshTokenFile. When the
// token endpoint returns a new refresh token (Microsoft rotates them), it
// replaces the file's content.
type OAuth2Config struct {
	// TokenURL is the token endpoint, for example
	// https://login.microsoftonline.com/TENANT/oauth2/v2.0/token or
	// https://oauth2.googleapis.com/token.
	TokenURL string `toml:"token_url"`
	ClientID string `toml:"client_id"`
	// ClientSecret or ClientSecretFile; neither for a public client.
	ClientSecret     string `toml:"client_secret"`
	ClientSecretFile string `toml:"client_secret_file"`
	// RefreshTokenFile holds the refresh token; dmarcd rewrites it when
	// the token rotates, so it must be writable.
	RefreshTokenFile string `toml:"refresh_token_file"`
	// Scopes requested, for example
	// ["https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"]
	// or ["https://mail.google.com/"].
	Scopes []string `toml:"scopes"`
}

// withDefaults returns m with its zero fields set to the defaults.
func (m Mailbox) withDefaults() Mailbox {
	if m.NonReports == "" {
		m.NonReports = NonReportsMove
	}
	if m.TLS == "" {
		m.TLS = TLSImplicit
	}
	if m.Port == 0 {
		m.Port = DefaultPortPlain
		if m.TLS == TLSImplicit {
			m.Port = DefaultPortTLS
		}
	}
	if m.Auth == "" {
		m.Auth = AuthPassword
	}
	if len(m.Folders) == 0 {
		m.Folders = []string{DefaultFolder}
	}
	if m.ArchiveFolder == "" {
		m.ArchiveFolder = DefaultArchiveFolder
	}
	if m.InvalidFolder == "" {
		m.InvalidFolder = DefaultInvalidFolder
	}
	if m.BatchSize == 0 {
		m.BatchSize = DefaultBatchSize
	}
	if m.PollInterval == 0 {
		m.PollInterval = DefaultPollInterval
	}
	if m.Name == "" {
		m.Name = m.Username + "@" + m.Host
	}
	return m
}

// Label is the name of the mailbox in logs and metrics.
func (m Mailbox) Label() string { return m.withDefaults().Name }

// Validate checks the mailbox as configured, defaults applied. Errors name
// the mailbox and the key.
func (m Mailbox) Validate() error {
	m = m.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("mailbox %q: "+format, append([]any{m.Name}, args...)...))
	}
	if m.Host == "" {
		bad("host is required")
	}
	if m.Username == "" {
		bad("username is required")
	}
	if m.Port < 1 || m.Port > 65535 {
		bad("port %d: want 1 to 65535", m.Port)
	}
	switch m.TLS {
	case TLSImplicit, TLSStart, TLSNone:
	default:
		bad("tls %q: want tls, starttls or plain", m.TLS)
	}
	if m.TLSCAFile != "" && m.TLS == TLSNone {
		bad("tls_ca_file is set but tls is plain")
	}
	switch m.NonReports {
	case NonReportsMove, NonReportsLeave:
	default:
		bad("non_reports %q: want move or leave", m.NonReports)
	}
	passwords := count(m.Password != "", m.PasswordFile != "")
	tokens := count(m.TokenFile != "", len(m.TokenCommand) > 0, m.OAuth2 != nil)
	switch m.Auth {
	case AuthPassword:
		if passwords != 1 {
			bad("auth password needs exactly one of password and password_file")
		}
		if tokens != 0 {
			bad("token_file, token_command and [oauth2] are for auth xoauth2 or oauthbearer")
		}
	case AuthXOAUTH2, AuthOAuthBearer:
		if tokens != 1 {
			bad("auth %s needs exactly one of token_file, token_command and [mailbox.oauth2]", m.Auth)
		}
		if passwords != 0 {
			bad("password and password_file are for auth password")
		}
		if m.OAuth2 != nil {
			if err := m.OAuth2.validate(); err != nil {
				bad("oauth2: %v", err)
			}
		}
	default:
		bad("auth %q: want password, xoauth2 or oauthbearer", m.Auth)
	}
	seen := map[string]bool{}
	for _, f := range m.Folders {
		if f == "" {
			bad("folders: an empty folder name")
		}
		if seen[folderKey(f)] {
			bad("folders: %q is listed twice", f)
		}
		seen[folderKey(f)] = true
	}
	// Reading the archive or invalid folder would process its messages
	// again and again.
	if seen[folderKey(m.ArchiveFolder)] {
		bad("archive_folder %q is also a folder to read", m.ArchiveFolder)
	}
	if seen[folderKey(m.InvalidFolder)] {
		bad("invalid_folder %q is also a folder to read", m.InvalidFolder)
	}
	if folderKey(m.ArchiveFolder) == folderKey(m.InvalidFolder) {
		bad("archive_folder and invalid_folder are both %q", m.ArchiveFolder)
	}
	if m.BatchSize < 1 || m.BatchSize > MaxBatchSize {
		bad("batch_size %d: want 1 to %d", m.BatchSize, MaxBatchSize)
	}
	if m.PollInterval < MinPollInterval {
		bad("poll_interval %s: want at least %s", m.PollInterval, MinPollInterval)
	}
	return errors.Join(errs...)
}

func (o *OAuth2Config) validate() error {
	u, err := url.Parse(o.TokenURL)
	if o.TokenURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("token_url %q: want an https URL", o.TokenURL)
	}
	if o.ClientID == "" {
		return errors.New("client_id is required")
	}
	if o.ClientSecret != "" && o.ClientSecretFile != "" {
		return errors.New("client_secret and client_secret_file are both set")
	}
	if o.RefreshTokenFile == "" {
		return errors.New("refresh_token_file is required")
	}
	return nil
}

// folderKey compares folder names: INBOX is case-insensitive (RFC 9051
// §5.1), other names are not.
func folderKey(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func count(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

// CheckFiles checks that the files the mailbox names (password, token,
// OAuth client secret and refresh token, CA) can be read now: a daemon or
// a cron poll says so at start, as a configuration error, rather than at
// each login. They are read again at each login, so that a rotated secret
// needs no restart.
func (m Mailbox) CheckFiles() error {
	files := map[string]string{"password_file": m.PasswordFile, "token_file": m.TokenFile, "tls_ca_file": m.TLSCAFile}
	if m.OAuth2 != nil {
		files["oauth2.client_secret_file"] = m.OAuth2.ClientSecretFile
		files["oauth2.refresh_token_file"] = m.OAuth2.RefreshTokenFile
	}
	for _, key := range slices.Sorted(maps.Keys(files)) {
		path := files[key]
		if path == "" {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("mailbox %s: %s: %w", m.Name, key, err)
		}
		f.Close()
	}
	return nil
}
