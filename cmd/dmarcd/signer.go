package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dmarcd/dmarcd/internal/dnsrecord"
	"github.com/dmarcd/dmarcd/signer"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

// MaxSignerMessageBytes is the largest signer.max_message_bytes accepted.
const MaxSignerMessageBytes = 1 << 30

// SignerConfig is the [signer] table: the signing SMTP relay and milter
// that `dmarcd signer` runs.
type SignerConfig struct {
	// SMTPListen is the relay's address (host:port), empty for no relay.
	SMTPListen string `toml:"smtp_listen"`
	// TLSCertFile and TLSKeyFile offer STARTTLS; AUTH is only offered over
	// TLS.
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
	// AllowedNetworks may relay without authentication (CIDRs or
	// addresses), mail from any domain of the key store.
	AllowedNetworks []string `toml:"allowed_networks"`
	// Networks ([[signer.network]]) may relay without authentication,
	// mail from their domains only.
	Networks []SignerNetwork `toml:"network"`
	// UsersFile holds "name:bcrypt-hash[:domain,...]" lines of the users
	// who may relay after AUTH PLAIN over TLS; with domains, a user may
	// send mail from those (and their subdomains) only.
	UsersFile string `toml:"users_file"`
	// NextHop (host:port) takes the signed mail; NextHopTLS is
	// "opportunistic", "required" or "none".
	NextHop    string `toml:"next_hop"`
	NextHopTLS string `toml:"next_hop_tls"`
	// MilterListen is the milter's address: host:port, or unix:/path; empty
	// for no milter.
	MilterListen string `toml:"milter_listen"`
	// Unsigned says what happens to mail for a domain without a key:
	// "pass" (unsigned) or "refuse".
	Unsigned string `toml:"unsigned"`
	// Subdomains says how mail from a subdomain without keys of its own
	// is signed: "parent" (with the keys of its nearest parent that has
	// keys, d=PARENT: aligned under adkim=r only) or "own" (not signed).
	Subdomains string `toml:"subdomains"`
	// MaxMessageBytes bounds a message.
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	// MetricsListen is the address of the signer's /metrics, empty for none.
	MetricsListen string `toml:"metrics_listen"`
}

// SignerNetwork is a [[signer.network]] table: a network whose clients may
// relay mail from some domains only.
type SignerNetwork struct {
	// CIDR is the network, or one address.
	CIDR string `toml:"cidr"`
	// Domains are the From domains it may send as, with their
	// subdomains.
	Domains []string `toml:"domains"`
}

// networkDomains reads the [[signer.network]] tables.
func (s *SignerConfig) networkDomains() ([]signer.NetworkDomains, error) {
	var out []signer.NetworkDomains
	for i, n := range s.Networks {
		p, err := signer.ParseNetworks([]string{n.CIDR})
		if err != nil {
			return nil, fmt.Errorf("config: signer.network %d: cidr: %w", i+1, err)
		}
		domains, err := signer.ParseDomains(n.Domains)
		if err != nil {
			return nil, fmt.Errorf("config: signer.network %d (%s): domains: %w", i+1, n.CIDR, err)
		}
		out = append(out, signer.NetworkDomains{Network: p[0], Domains: domains})
	}
	return out, nil
}

func defaultSignerConfig() SignerConfig {
	return SignerConfig{
		AllowedNetworks: []string{"127.0.0.0/8", "::1/128"},
		NextHopTLS:      string(signer.NextHopOpportunistic),
		Unsigned:        string(signer.UnsignedPass),
		Subdomains:      string(signer.SubdomainsParent),
		MaxMessageBytes: signer.DefaultMaxMessageBytes,
	}
}

func (s *SignerConfig) validate() error {
	switch signer.UnsignedPolicy(s.Unsigned) {
	case signer.UnsignedPass, signer.UnsignedRefuse:
	default:
		return fmt.Errorf("config: signer.unsigned %q: want pass or refuse", s.Unsigned)
	}
	switch signer.SubdomainSigning(s.Subdomains) {
	case signer.SubdomainsParent, signer.SubdomainsOwn:
	default:
		return fmt.Errorf("config: signer.subdomains %q: want parent or own", s.Subdomains)
	}
	switch signer.NextHopTLS(s.NextHopTLS) {
	case signer.NextHopOpportunistic, signer.NextHopRequireTLS, signer.NextHopNoTLS:
	default:
		return fmt.Errorf("config: signer.next_hop_tls %q: want opportunistic, required or none", s.NextHopTLS)
	}
	if s.MaxMessageBytes <= 0 || s.MaxMessageBytes > MaxSignerMessageBytes {
		return fmt.Errorf("config: signer.max_message_bytes = %d: want 1 to %d", s.MaxMessageBytes, MaxSignerMessageBytes)
	}
	if _, err := signer.ParseNetworks(s.AllowedNetworks); err != nil {
		return fmt.Errorf("config: signer.allowed_networks: %w", err)
	}
	if _, err := s.networkDomains(); err != nil {
		return err
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return errors.New("config: signer.tls_cert_file and signer.tls_key_file go together")
	}
	if s.UsersFile != "" && s.TLSCertFile == "" {
		return errors.New("config: signer.users_file needs signer.tls_cert_file and tls_key_file: AUTH is only offered over TLS")
	}
	if s.SMTPListen != "" {
		if _, _, err := net.SplitHostPort(s.SMTPListen); err != nil {
			return fmt.Errorf("config: signer.smtp_listen %q: want host:port", s.SMTPListen)
		}
		if _, _, err := net.SplitHostPort(s.NextHop); err != nil {
			return fmt.Errorf("config: signer.next_hop %q: the relay needs a next hop as host:port", s.NextHop)
		}
	}
	if s.MilterListen != "" && !strings.HasPrefix(s.MilterListen, "unix:") {
		if _, _, err := net.SplitHostPort(s.MilterListen); err != nil {
			return fmt.Errorf("config: signer.milter_listen %q: want host:port or unix:/path", s.MilterListen)
		}
	}
	return nil
}

type signerCmd struct {
	KeysDir string `help:"Key store folder; overrides keys.dir of the config file." env:"DMARCD_KEYS_DIR" placeholder:"DIR" type:"path"`
}

// Run runs the relay and/or the milter of the [signer] table until SIGINT
// or SIGTERM.
func (c *signerCmd) Run(e *env) error {
	cfg := e.cfg.Signer
	if cfg.SMTPListen == "" && cfg.MilterListen == "" {
		return &exitError{code: exitUsage, err: errors.New("the config file sets neither signer.smtp_listen nor signer.milter_listen: nothing to run")}
	}
	dir := e.cfg.Keys.Dir
	if c.KeysDir != "" {
		dir = c.KeysDir
	}
	st, err := keystore.Open(dir)
	if err != nil {
		return err
	}
	ring, err := signer.NewKeyring(st, signer.DefaultReloadInterval, e.log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	metrics, err := signer.NewMetrics(reg)
	if err != nil {
		return err
	}
	ring.Instrument(metrics)
	s := &signer.Signer{Keys: ring, Unsigned: signer.UnsignedPolicy(cfg.Unsigned), Subdomains: signer.SubdomainSigning(cfg.Subdomains)}
	if s.Subdomains == signer.SubdomainsParent {
		warnStrictDKIMAlignment(e, ring.Domains())
	}

	errc := make(chan error, 3)
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	if cfg.SMTPListen != "" {
		rc := signer.RelayConfig{Signer: s, NextHop: cfg.NextHop, NextHopTLS: signer.NextHopTLS(cfg.NextHopTLS),
			MaxMessageBytes: cfg.MaxMessageBytes, Log: e.log, Metrics: metrics}
		if rc.Allowed, err = signer.ParseNetworks(cfg.AllowedNetworks); err != nil {
			return err
		}
		if rc.AllowedFor, err = cfg.networkDomains(); err != nil {
			return err
		}
		if cfg.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
			if err != nil {
				return fmt.Errorf("signer TLS certificate: %w", err)
			}
			rc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		if cfg.UsersFile != "" {
			if rc.Users, err = signer.ReadUsers(cfg.UsersFile); err != nil {
				return err
			}
		}
		relay, err := signer.NewRelay(rc)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", cfg.SMTPListen)
		if err != nil {
			return fmt.Errorf("signer.smtp_listen: %w", err)
		}
		closers = append(closers, relay.Close)
		go func() { errc <- relay.Serve(ln) }()
		e.log.Info("signing relay listening", "addr", ln.Addr().String(), "next_hop", cfg.NextHop, "auth", len(rc.Users) > 0)
	}
	if cfg.MilterListen != "" {
		m, err := signer.NewMilter(signer.MilterConfig{Signer: s, MaxMessageBytes: cfg.MaxMessageBytes, Log: e.log, Metrics: metrics})
		if err != nil {
			return err
		}
		network, addr := "tcp", cfg.MilterListen
		if p, ok := strings.CutPrefix(addr, "unix:"); ok {
			network, addr = "unix", p
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			return fmt.Errorf("signer.milter_listen: %w", err)
		}
		closers = append(closers, m.Close)
		go func() { errc <- m.Serve(ln) }()
		e.log.Info("signing milter listening", "addr", cfg.MilterListen)
	}
	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("signer.metrics_listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: metricsReadHeaderTimeout}
		closers = append(closers, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
			defer cancel()
			return srv.Shutdown(ctx)
		})
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	select {
	case <-e.ctx.Done():
		e.log.Info("signer stopping")
		return nil
	case err := <-errc:
		return err
	}
}

// warnStrictDKIMAlignment warns about each domain whose DMARC record asks
// for strict DKIM alignment (adkim=s) while signer.subdomains = "parent":
// mail from its subdomains is then signed with d=DOMAIN, which does not
// align with the subdomain under adkim=s (RFC 7489 §3.1.1), so DKIM does
// not make it pass DMARC.
func warnStrictDKIMAlignment(e *env, domains []string) {
	lookup := txtLookup(e.cfg.DNS)
	for _, d := range domains {
		txts, err := lookup(e.ctx, "_dmarc."+d)
		if err != nil {
			e.log.Debug("reading the DMARC record for the alignment check failed", "domain", d, "err", err)
			continue
		}
		for _, txt := range dnsrecord.SelectDMARC(txts) {
			if r, _, err := dnsrecord.ParseDMARC(txt); err == nil && r.ADKIM == "s" {
				e.log.Warn("mail from subdomains of this domain is signed with its keys (d="+d+"), which fail adkim=s in its DMARC record: give each sending subdomain its own keys (dmarcd keys generate --domain SUB.DOMAIN), or set signer.subdomains = \"own\"",
					"domain", d)
			}
		}
	}
}
