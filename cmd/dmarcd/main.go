// Command dmarcd ingests DMARC aggregate and failure reports, stores them
// (an embedded SQLite file by default) and answers SQL over them.
//
// Run "dmarcd --help" for the commands. Exit codes: 0 success; 1 failure
// (the store or a source failed); 2 bad usage or configuration; 3 the run
// completed but some input could not be parsed and was quarantined.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/schema"
)

// Exit codes, for scripts.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitQuarantined = 3
)

// version may be set at build time with -ldflags "-X main.version=...";
// else the module's version and the VCS revision come from the build
// information (see versionText).
var version = ""

type cli struct {
	Config    string `help:"Configuration file (TOML); see dmarcd.example.toml. Unknown keys are refused." type:"path" env:"DMARCD_CONFIG" placeholder:"FILE"`
	Store     string `help:"Store DSN: a SQLite file path, sqlite:PATH, or clickhouse://USER:PASS@HOST:PORT/DATABASE (native TCP). Overrides the config file (default dmarcd.db)." env:"DMARCD_STORE" placeholder:"DSN"`
	LogLevel  string `help:"Log level: debug, info, warn, error (default info, or the config file's)." enum:"debug,info,warn,error," default:""`
	LogFormat string `help:"Log format: text or json." enum:"text,json," default:""`

	Ingest  ingestCmd  `cmd:"" help:"Store the reports found in files, folders, Maildir folders, mbox files or standard input (-)."`
	Query   queryCmd   `cmd:"" help:"Run SQL over the stored reports (views: reports, records, dkim_signatures, failures, tls_*, quarantined, alerts, daily_*; docs/SQL.md)."`
	Domains domainsCmd `cmd:"" help:"Print per-domain DMARC compliance from the stored reports."`
	Daily   dailyCmd   `cmd:"" help:"Print a domain's compliance day by day: volume, DMARC pass rate, DKIM- and SPF-aligned shares, dispositions."`
	Sources sourcesCmd `cmd:"" help:"Print the sources (addresses) that send as a domain: their sender's class, reverse DNS, results."`
	Senders sendersCmd `cmd:"" help:"Print the senders of a domain (services and servers, from DKIM, SPF and confirmed reverse DNS): class, volume, results, and how to fix the legitimate ones that fail."`
	TLS     tlsCmd     `cmd:"" name:"tls" help:"Print what SMTP TLS reports (RFC 8460) say: sessions per policy domain and policy (MTA-STS, DANE), failure rates, failures by kind and MX host."`
	Domain  domainCmd  `cmd:"" help:"Set up a sender domain: print the SPF, DKIM and DMARC records to publish (domain add)."`
	Check   checkCmd   `cmd:"" help:"Check the live DNS of a sender domain: SPF limits, DMARC (RFC 9989), DKIM selectors, report authorization, drift. Exit 1 on errors."`
	Advise  adviseCmd  `cmd:"" help:"Print the rollout recommendation per domain (advance, hold or roll back, with evidence and the exact DMARC record to publish) and the DKIM keys due."`
	Alerts  alertsCmd  `cmd:"" help:"Show the alerts firing now, or run the alert checks once (--check) and post them to Slack."`
	Migrate migrateCmd `cmd:"" help:"Create or upgrade the store's schema (every command does so on open)."`
	Prune   pruneCmd   `cmd:"" help:"Drop the reports, failure reports and quarantined input older than the retention (retention_months, or --months), as the daemon does daily."`
	RunCmd  runCmd     `cmd:"" name:"run" help:"Run the daemon until SIGINT or SIGTERM: read the configured IMAP mailboxes (IDLE, or polling), check for alerts, post the weekly recommendation, serve /metrics."`
	Poll    pollCmd    `cmd:"" help:"Read the configured IMAP mailboxes once (--once) and exit, for cron."`
	Keys    keysCmd    `cmd:"" help:"Manage DKIM signing keys: generate, import, list, publish (dns), rotate, advance, retire."`
	Signer  signerCmd  `cmd:"" help:"Run the DKIM signer: the SMTP relay and/or the milter of the [signer] table, until SIGINT or SIGTERM."`
	Web     webCmd     `cmd:"" help:"Serve the web page alone (web.listen, 127.0.0.1:8478 by default): domains, advice, trends, sources, keys, records, failure reports."`
	Org     orgCmd     `cmd:"" help:"Manage the dashboard's organisations and the sender domains they own (web.accounts_file)."`
	User    userCmd    `cmd:"" help:"Manage the dashboard's users: add, passwd, remove, role (web.accounts_file)."`
	Token   tokenCmd   `cmd:"" help:"Manage the organisations' API tokens for /api/v1 (web.accounts_file): add, list, revoke."`
	Version versionCmd `cmd:"" help:"Print the version."`
}

// env is what every command receives: the merged configuration, the
// logger, a context cancelled on SIGINT/SIGTERM, and the clock.
type env struct {
	ctx    context.Context
	cfg    Config
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
	// now is the clock: time.Now in the binary, a fixed day in tests, so
	// that no test depends on the day it runs.
	now func() time.Time
	// redact removes the configuration's secrets from text that leaves
	// the process (alerts; the logger redacts on its own).
	redact redactor
	// dashboard is the dashboard's state file (web.accounts_file), opened
	// once for the process by e.accounts; shared by copies of e.
	dashboard *sharedAccounts
}

// openStore opens the configured store, creating it or bringing its
// schema up to date: for the commands that write.
func (e *env) openStore() (dmarcd.Store, error) {
	return schema.Open(e.ctx, e.cfg.Store)
}

// openStoreReadOnly opens the configured store for the commands that only
// read: a store that is not there is an error (exit 1), not a new empty
// one.
func (e *env) openStoreReadOnly() (dmarcd.Store, error) {
	return schema.OpenReadOnly(e.ctx, e.cfg.Store)
}

// exitError carries an exit code through kong's Run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// GCPercent is the garbage collector's target (GOGC) when the environment
// sets none. dmarcd's live heap is small, 3-7 MB while it ingests, so at
// Go's default of 100 the collector runs every few MB allocated, a fifth to
// a third of the CPU of `dmarcd ingest`; at 400 it runs a quarter as often,
// for about 11 MB more resident memory (BENCHMARKS.md, "Per message").
const GCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, time.Now))
}

// run is main without the process: tests call it with their own clock.
func run(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("dmarcd"),
		kong.Description("dmarcd turns DMARC reports into safe decisions: it ingests aggregate, failure and SMTP TLS reports, "+
			"stores them once (an embedded SQLite file by default), and answers SQL over them.\n\n"+
			"Exit codes: 0 success; 1 failure; 2 bad usage or configuration; 3 completed, but some input was quarantined."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitPanic(code)) }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "dmarcd:", err)
		return exitFailure
	}
	code := exitOK
	func() {
		defer func() {
			if r := recover(); r != nil {
				if c, ok := r.(exitPanic); ok {
					code = int(c)
					return
				}
				panic(r)
			}
		}()
		kctx, err := parser.Parse(args)
		if err != nil {
			parser.Errorf("%s", err)
			code = exitUsage
			return
		}
		code = c.execute(kctx, stdout, stderr, now)
	}()
	return code
}

// exitPanic lets kong's --help and usage errors return an exit code from
// run instead of exiting the process, so that tests can call run.
type exitPanic int

func (c *cli) execute(kctx *kong.Context, stdout, stderr io.Writer, now func() time.Time) int {
	cfg, err := loadConfig(c.Config)
	if err != nil {
		fmt.Fprintln(stderr, "dmarcd:", err)
		return exitUsage
	}
	if c.Store != "" {
		cfg.Store = c.Store
	}
	if c.LogLevel != "" {
		cfg.Log.Level = c.LogLevel
	}
	if c.LogFormat != "" {
		cfg.Log.Format = c.LogFormat
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Secrets of the configuration appear in no log line and no error.
	red := newRedactor(secrets(cfg))
	e := &env{ctx: ctx, cfg: cfg, log: newLogger(cfg.Log, stderr, red), stdout: stdout, stderr: stderr, now: now, redact: red,
		dashboard: &sharedAccounts{}}
	err = kctx.Run(e)
	e.dashboard.close()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "dmarcd:", red.text(ee.err.Error()))
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "dmarcd:", red.text(err.Error()))
	return exitFailure
}

func newLogger(c LogConfig, w io.Writer, red redactor) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(redactHandler{next: h, r: red})
}

type versionCmd struct{}

func (versionCmd) Run(e *env) error {
	fmt.Fprintln(e.stdout, "dmarcd", versionText())
	return nil
}

// versionText is the version of the binary: the module version (a tag for
// `go install ...@v1.2.3`, "(devel)" for a build in a checkout), the VCS
// revision with its time and whether the tree was modified, and the Go
// version.
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return cmp.Or(version, "(unknown)")
	}
	v := cmp.Or(version, bi.Main.Version, "(devel)")
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev != "" {
		v += fmt.Sprintf(" (revision %.12s, %s%s)", rev, at, modified)
	}
	return v + " " + bi.GoVersion
}

type migrateCmd struct{}

func (migrateCmd) Run(e *env) error {
	st, err := e.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	e.log.Info("store schema is up to date", "store", e.cfg.Store)
	return nil
}
