package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
	"github.com/dmarcd/dmarcd/dashboards/web"
)

// WebConfig is the [web] table: the web page of the daemon (dmarcd run and
// dmarcd web).
type WebConfig struct {
	// Listen is the address of the page; empty for none. An address other
	// than loopback needs a token or basic authentication.
	Listen string `toml:"listen"`
	// Token is required as "Authorization: Bearer TOKEN", or once as
	// ?token=TOKEN (which sets a cookie). TokenFile reads it from a file
	// instead, to keep it out of the config.
	Token     string `toml:"token"`
	TokenFile string `toml:"token_file"`
	// BasicAuthUser and the password in BasicAuthPasswordFile are HTTP
	// basic authentication.
	BasicAuthUser         string `toml:"basic_auth_user"`
	BasicAuthPasswordFile string `toml:"basic_auth_password_file"`
	// AccountsFile is the dashboard's state file (an embedded SQLite
	// file, whatever the store): organisations, users, sessions, audit
	// log. Once it holds a user, the page asks everyone to log in and
	// shows each user their organisations' domains only.
	AccountsFile string `toml:"accounts_file"`
	// SecureCookies marks the login cookies Secure although the page
	// speaks plain HTTP: set it behind a TLS reverse proxy.
	SecureCookies bool `toml:"secure_cookies"`
	// SlackWebhookPrefixes are the addresses an organisation's own Slack
	// webhook may start with (accounts.DefaultWebhookPrefixes, Slack's
	// incoming webhooks, when empty): dmarcd posts to what a customer
	// types, so nothing else of the network is reachable that way.
	SlackWebhookPrefixes []string `toml:"slack_webhook_prefixes"`
}

// DefaultWebListen is where the page is served without configuration: the
// local machine only.
const DefaultWebListen = "127.0.0.1:8478"

// Bounds of the web page's HTTP server. A page may wait for DNS (reverse
// lookups of sources, the advisor's lookups), hence the long write timeout.
const (
	webReadHeaderTimeout = 10 * time.Second
	webReadTimeout       = 30 * time.Second
	webWriteTimeout      = web.RequestTimeout + 10*time.Second
	webIdleTimeout       = 2 * time.Minute
	webMaxHeaderBytes    = 64 << 10
	webShutdownTimeout   = 5 * time.Second
	// webSecretFileMaxBytes bounds a token or password file.
	webSecretFileMaxBytes = 4096
)

func defaultWebConfig() WebConfig {
	return WebConfig{Listen: DefaultWebListen, SlackWebhookPrefixes: slices.Clone(accounts.DefaultWebhookPrefixes)}
}

func (c *WebConfig) validate() error {
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("config: web.listen %q: want HOST:PORT, for example %s: %v", c.Listen, DefaultWebListen, err)
		}
	}
	if c.Token != "" && c.TokenFile != "" {
		return errors.New("config: [web]: set token or token_file, not both")
	}
	if (c.BasicAuthUser == "") != (c.BasicAuthPasswordFile == "") {
		return errors.New("config: [web]: basic authentication needs both basic_auth_user and basic_auth_password_file")
	}
	for _, p := range c.SlackWebhookPrefixes {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.HasSuffix(u.Path, "/") {
			return fmt.Errorf("config: web.slack_webhook_prefixes: %q: want a web address that ends its host or path with '/', for example https://hooks.slack.com/", p)
		}
	}
	return nil
}

// webhookPrefixes are the allowed starts of an organisation's webhook.
func (c WebConfig) webhookPrefixes() []string {
	if len(c.SlackWebhookPrefixes) > 0 {
		return c.SlackWebhookPrefixes
	}
	return accounts.DefaultWebhookPrefixes
}

// auth reads the secrets of the page, from their files where set.
func (c *WebConfig) auth() (web.Auth, error) {
	a := web.Auth{Token: c.Token, BasicUser: c.BasicAuthUser}
	var err error
	if c.TokenFile != "" {
		if a.Token, err = readSecret(c.TokenFile, "web.token_file"); err != nil {
			return a, err
		}
	}
	if c.BasicAuthPasswordFile != "" {
		if a.BasicPassword, err = readSecret(c.BasicAuthPasswordFile, "web.basic_auth_password_file"); err != nil {
			return a, err
		}
	}
	return a, nil
}

// readSecret reads a secret from a file, without its final newline. The
// error names the file, never its content.
func readSecret(path, key string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, webSecretFileMaxBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: reading %s: %w", key, path, err)
	}
	if len(b) > webSecretFileMaxBytes {
		return "", fmt.Errorf("%s: %s is longer than %d bytes", key, path, webSecretFileMaxBytes)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return s, nil
}

type webCmd struct {
	Listen string `help:"Address to serve the page on; overrides web.listen (default 127.0.0.1:8478). Other than loopback, [web] must set a token or basic authentication." placeholder:"HOST:PORT"`
}

// Run serves the web page alone until SIGINT or SIGTERM.
func (c *webCmd) Run(e *env) error {
	if c.Listen != "" {
		e.cfg.Web.Listen = c.Listen
		if err := e.cfg.Web.validate(); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	if e.cfg.Web.Listen == "" {
		return &exitError{code: exitUsage, err: errors.New("web: web.listen is empty: set it in [web] or give --listen")}
	}
	// The configuration first: a usage error says so before the store
	// is looked at.
	auth, err := e.cfg.Web.auth()
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if err := auth.Validate(); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if err := checkWebListen(e.cfg.Web, auth); err != nil {
		return err
	}
	st, err := e.openStoreReadOnly()
	if err != nil {
		return err
	}
	defer st.Close()
	stop, err := startWeb(e, st)
	if err != nil {
		return err
	}
	<-e.ctx.Done()
	stop()
	return nil
}

// startWeb serves the web page on web.listen and returns the function that
// stops it. It refuses an address other than loopback without a secret.
func startWeb(e *env, st dmarcd.Store) (stop func(), err error) {
	cfg := e.cfg.Web
	auth, err := cfg.auth()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	if err := checkWebListen(cfg, auth); err != nil {
		return nil, err
	}
	acc, err := e.accounts()
	if err != nil {
		return nil, err
	}
	h, err := newWebHandler(e, st, auth, acc)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("web.listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: webReadHeaderTimeout, ReadTimeout: webReadTimeout,
		WriteTimeout: webWriteTimeout, IdleTimeout: webIdleTimeout, MaxHeaderBytes: webMaxHeaderBytes}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("web server failed", "err", err)
		}
	}()
	e.log.Info("serving the web page", "url", "http://"+ln.Addr().String()+"/", "auth", auth.Enabled(), "accounts", acc != nil)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), webShutdownTimeout)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// checkWebListen refuses an address other than loopback without a secret
// or logins (web.accounts_file).
func checkWebListen(cfg WebConfig, auth web.Auth) error {
	if cfg.AccountsFile != "" {
		return nil
	}
	if err := web.CheckListen(cfg.Listen, auth); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}

// newWebHandler builds the page from the configuration: the same advisor,
// key advice and wizard as dmarcd advise, dmarcd keys and dmarcd domain add.
func newWebHandler(e *env, st dmarcd.Store, auth web.Auth, acc *accounts.Store) (*web.Handler, error) {
	a, err := newAdvisor(e, st)
	if err != nil {
		return nil, err
	}
	r, err := newResolver(e.cfg.DNS)
	if err != nil {
		return nil, err
	}
	opts := web.Options{
		Store:       st,
		Recommender: a,
		Classifier:  a.Classifier,
		KeyAdvice: func(ctx context.Context) ([]advisor.KeyAdvice, error) {
			return keyAdvice(e.withContext(ctx), st)
		},
		Plan: func(ctx context.Context, d dmarcd.SenderDomain) (*advisor.Plan, error) {
			// The [[domain]] table wins; else the settings the page
			// passes (a domain set up through it).
			if c, ok := lookupConfigured(e.cfg, d.Name); ok {
				d = c
			}
			if len(d.RUA) == 0 {
				d.RUA = defaultRUA(e.cfg)
			}
			keys, err := dkimKeys(e.cfg, d.Name)
			if err != nil {
				return nil, err
			}
			return advisor.PlanDomain(ctx, r, advisor.DomainSetup{Domain: d, Ours: ourSPF(e.cfg.Sending), DKIM: keys})
		},
		LookupTXT:            txtLookup(e.cfg.DNS),
		RSABits:              e.cfg.Keys.RSABits,
		DefaultRUA:           defaultRUA(e.cfg),
		Auth:                 auth,
		Accounts:             acc,
		SecureCookies:        e.cfg.Web.SecureCookies,
		SlackWebhookPrefixes: e.cfg.Web.webhookPrefixes(),
		Logger:               e.log,
		Now:                  e.now,
	}
	// Without [[domain]] tables every domain with reports is advised on,
	// as dmarcd advise does.
	if len(e.cfg.Domains) > 0 {
		opts.Domains = func(context.Context) ([]dmarcd.SenderDomain, error) { return e.cfg.Domains, nil }
	}
	if acc != nil {
		// Key forms for the editors of the domains.
		if opts.KeyStore, err = configuredKeyStore(e.cfg); err != nil {
			return nil, err
		}
	}
	return web.New(opts)
}

// withContext is e with another context: a request's.
func (e *env) withContext(ctx context.Context) *env {
	c := *e
	c.ctx = ctx
	return &c
}
