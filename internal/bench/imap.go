package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

// harnessT lets the harness start the throwaway servers of
// internal/testserver outside a test: it implements the few methods of
// testing.TB they call (Helper, Cleanup, Fatal, Fatalf, Skip, Log, Logf);
// the embedded nil TB panics on any other, which would be a bug here.
type harnessT struct {
	testing.TB
	cleanups []func()
}

// tbFailure is the panic of harnessT.Fatal, recovered by withT.
type tbFailure struct{ msg string }

func (t *harnessT) Helper()                           {}
func (t *harnessT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *harnessT) Fatal(args ...any)                 { panic(tbFailure{fmt.Sprint(args...)}) }
func (t *harnessT) Fatalf(format string, args ...any) { panic(tbFailure{fmt.Sprintf(format, args...)}) }
func (t *harnessT) Skip(args ...any)                  { panic(tbFailure{"skipped: " + fmt.Sprint(args...)}) }
func (t *harnessT) Log(args ...any)                   { logf("%s", fmt.Sprint(args...)) }
func (t *harnessT) Logf(format string, args ...any)   { logf(format, args...) }

// withT runs f with a harnessT, then its cleanups (last first); a Fatal
// in f becomes the error.
func withT(f func(t *harnessT) error) (err error) {
	t := &harnessT{}
	defer func() {
		for i := len(t.cleanups) - 1; i >= 0; i-- {
			t.cleanups[i]()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			tf, ok := r.(tbFailure)
			if !ok {
				panic(r)
			}
			err = errors.New(tf.msg)
		}
	}()
	return f(t)
}

var (
	pollRead   = regexp.MustCompile(`(?m)^mailbox \S+: (\d+) messages read`)
	storedAgg  = regexp.MustCompile(`(?m)aggregate reports stored\s+(\d+) \((\d+) records\)`)
	storedFail = regexp.MustCompile(`(?m)failure reports stored\s+(\d+)`)
	inputsRead = regexp.MustCompile(`(?m)^(\d+) inputs read`)
)

func atoi(re *regexp.Regexp, b []byte, group int) int64 {
	m := re.FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(string(m[group]), 10, 64)
	return n
}

// imapSection APPENDs generated report mails into a fresh throwaway
// Dovecot, then times `dmarcd poll --once` reading them into a fresh
// SQLite store, at 1x, 2x and 4x the messages.
func imapSection(c *config, res *Results, dmarcd string) error {
	testserver.DovecotInstalled(&harnessT{})
	work := filepath.Join(c.out, "imap")
	os.RemoveAll(work)
	scales := []int{1, 2, 4}
	n := scales[len(scales)-1] * c.imapMessages
	logf("generating %d report mails", n)
	box, err := mailbox(filepath.Join(work, "mails"), n, c.seed+10)
	if err != nil {
		return err
	}
	msgs := make([][]byte, len(box))
	for i, m := range box {
		if msgs[i], err = os.ReadFile(m.path); err != nil {
			return err
		}
	}
	for _, scale := range scales {
		m := scale * c.imapMessages
		var polls, appends []Run
		var last Measure
		for rep := range c.imapReps {
			err := withT(func(t *harnessT) error {
				srv := testserver.Dovecot(t)
				start := time.Now()
				srv.Append("INBOX", msgs[:m]...)
				appends = append(appends, Run{Wall: time.Since(start).Seconds()})

				dir := filepath.Join(work, fmt.Sprintf("x%d-%d", scale, rep))
				os.RemoveAll(dir)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				cfg := filepath.Join(dir, "dmarcd.toml")
				toml := fmt.Sprintf(`store = %q

[web]
listen = ""

[[mailbox]]
name = "bench"
host = %q
port = %d
tls = "plain"
username = %q
password = %q
`, filepath.Join(dir, "dmarcd.db"), srv.Host, srv.Port, srv.User, srv.Password)
				if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
					return err
				}
				p, err := runMem(dmarcd, []string{"--config", cfg, "--log-level", "warn", "poll", "--once"}, nil, false, true)
				if err != nil {
					return err
				}
				polls = append(polls, p.Run)
				last = Measure{Reports: int(atoi(storedAgg, p.stdout, 1) + atoi(storedFail, p.stdout, 1)),
					Records: atoi(storedAgg, p.stdout, 2), Files: int(atoi(pollRead, p.stdout, 1))}
				if last.Files != m {
					return fmt.Errorf("dmarcd poll read %d messages of %d:\n%s", last.Files, m, p.stdout)
				}
				os.RemoveAll(dir)
				return nil
			})
			if err != nil {
				return err
			}
		}
		_, want := box.counts(m)
		res.IMAP = append(res.IMAP,
			Measure{Group: "imap", Tool: "dmarcd poll --once", Scale: scale, Files: m, Reports: last.Reports, Records: last.Records, Expected: want, InputBytes: total(msgs[:m]), Runs: polls},
			Measure{Group: "append", Tool: "Dovecot APPEND", Scale: scale, Files: m, InputBytes: total(msgs[:m]), Runs: appends})
		lo, med := minMedian(walls(polls))
		logf("imap x%d: %d messages, %d reports, %d records, poll min %.2fs median %.2fs (%.0f messages/s), max RSS %d MB",
			scale, m, last.Reports, last.Records, lo, med, float64(m)/med, maxRSS(polls)>>20)
	}
	return os.RemoveAll(work)
}

func total(msgs [][]byte) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(len(m))
	}
	return n
}
