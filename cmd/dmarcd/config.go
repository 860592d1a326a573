package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/advisor/alert"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/ingest"
	imapingest "github.com/dmarcd/dmarcd/ingest/imap"
)

// Config is the daemon's configuration file (TOML). dmarcd.example.toml in
// the repository documents every key. Unknown keys are refused, so that a
// misspelt setting is an error and not a silent default.
type Config struct {
	// Store is the DSN of the store: a SQLite file path or sqlite:PATH,
	// or clickhouse://USER:PASS@HOST:PORT/DATABASE.
	Store string `toml:"store"`
	// RetentionMonths is how many months of reports the store keeps
	// before the current one: the daemon drops older data once a day
	// (dmarcd.Retainer), and so does dmarcd prune. 0 keeps everything.
	RetentionMonths int `toml:"retention_months"`
	// LeaseSeconds is how long a daemon's hold on a mailbox, and on the
	// alert checks, lasts without renewal, when several daemons share
	// the store (docs/CLUSTER.md): a daemon that dies is replaced by
	// another after at most this long. 0 is 60.
	LeaseSeconds int           `toml:"lease_seconds"`
	Log          LogConfig     `toml:"log"`
	Ingest       IngestConfig  `toml:"ingest"`
	Metrics      MetricsConfig `toml:"metrics"`
	// Mailboxes are the IMAP accounts that dmarcd run and dmarcd poll
	// read: [[mailbox]] tables.
	Mailboxes []MailboxConfig `toml:"mailbox"`
	// Domains are the sender domains dmarcd advises on: [[domain]] tables.
	Domains []dmarcd.SenderDomain `toml:"domain"`
	// Senders add sending services to the catalogue (analyze/senders.toml)
	// or replace its entries of the same id: [[sender]] tables.
	Senders []analyze.Service `toml:"sender"`
	DNS     DNSConfig         `toml:"dns"`
	// Keys is the DKIM key store and its rotation (keys.go).
	Keys KeysConfig `toml:"keys"`
	// Signer is the signing relay and milter (signer.go).
	Signer SignerConfig `toml:"signer"`
	// Sending, Advisor, Alerts, Slack and Schedule: advise.go.
	Sending  SendingConfig  `toml:"sending"`
	Advisor  advisor.Gates  `toml:"advisor"`
	Alerts   AlertsConfig   `toml:"alerts"`
	Slack    SlackConfig    `toml:"slack"`
	Schedule ScheduleConfig `toml:"schedule"`
	Web      WebConfig      `toml:"web"` // the web page (web.go)
}

// minLeaseSeconds bounds lease_seconds from below: a holder renews every
// third of it, and each renewal is a few writes to the store.
const minLeaseSeconds = 3

// leaseDuration is lease_seconds as a duration.
func (c *Config) leaseDuration() time.Duration {
	if c.LeaseSeconds == 0 {
		return imapingest.DefaultLeaseDuration
	}
	return time.Duration(c.LeaseSeconds) * time.Second
}

// DNSConfig sets how dmarcd asks DNS (checks, the advisor, reverse DNS of
// sources).
type DNSConfig struct {
	// Resolver is the address (host:port) of the recursive resolver to
	// ask; empty for the first nameserver of /etc/resolv.conf.
	Resolver string `toml:"resolver"`
	// TimeoutSeconds bounds one DNS query.
	TimeoutSeconds int `toml:"timeout_seconds"`
}

// LogConfig sets up log/slog.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// IngestConfig sets what is kept of reports.
type IngestConfig struct {
	// KeepFailureBody keeps the body of the reported message of failure
	// reports; by default only its header is kept (personal data).
	KeepFailureBody bool `toml:"keep_failure_body"`
	// NonReportKeepBytes bounds what the quarantine keeps of mail that
	// holds no report (its header and the start of its body); 0 for the
	// default (ingest.DefaultNonReportKeepBytes, 64 KiB).
	NonReportKeepBytes int `toml:"non_report_keep_bytes"`
}

// options are the ingest options of the configuration.
func (c IngestConfig) options() ingest.Options {
	return ingest.Options{KeepFailureBody: c.KeepFailureBody, NonReportKeepBytes: c.NonReportKeepBytes}
}

// MetricsConfig sets the Prometheus endpoint of the daemon.
type MetricsConfig struct {
	// Listen is the address of /metrics, empty for none.
	Listen string `toml:"listen"`
}

// defaultConfig is the configuration without a file.
func defaultConfig() Config {
	return Config{
		Store:    "dmarcd.db",
		Log:      LogConfig{Level: "info", Format: "text"},
		DNS:      DNSConfig{TimeoutSeconds: 5},
		Keys:     defaultKeysConfig(),
		Signer:   defaultSignerConfig(),
		Advisor:  advisor.DefaultGates,
		Alerts:   defaultAlertsConfig(),
		Schedule: ScheduleConfig{Weekly: alert.DefaultWeeklySpec, TimeZone: "UTC"},
		Web:      defaultWebConfig(),
	}
}

// loadConfig reads path over the defaults. An empty path gives the
// defaults.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, nil
	}
	md, err := toml.DecodeFile(path, &cfg)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, fmt.Errorf("config file %s does not exist", path)
	}
	if err != nil {
		return cfg, fmt.Errorf("config file %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("config file %s: unknown keys: %s (see dmarcd.example.toml)", path, strings.Join(keys, ", "))
	}
	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("config: log.format %q: want text or json", c.Log.Format)
	}
	if c.LeaseSeconds != 0 && c.LeaseSeconds < minLeaseSeconds {
		return fmt.Errorf("config: lease_seconds %d: want %d or more (a hold is trusted until %v before it ends), or 0 for 60", c.LeaseSeconds, minLeaseSeconds, dmarcd.LeaseMargin)
	}
	if c.RetentionMonths < 0 {
		return fmt.Errorf("config: retention_months %d: want 0 (keep everything) or more", c.RetentionMonths)
	}
	if err := c.Keys.validate(); err != nil {
		return err
	}
	if err := c.Signer.validate(); err != nil {
		return err
	}
	if err := c.validateAdvise(); err != nil {
		return err
	}
	if err := c.Web.validate(); err != nil {
		return err
	}
	return validateMailboxes(c.Mailboxes)
}
