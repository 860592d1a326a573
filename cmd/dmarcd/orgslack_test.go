package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/slack-go/slack/slacktest"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/synth"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// slackHooks is slacktest's server with incoming webhooks: each path
// under /services/ is one channel; /services/revoked answers as Slack does
// for a revoked webhook.
type slackHooks struct {
	*slacktest.Server
	mu    sync.Mutex
	posts map[string][]string // channel: the text of each post
}

func newSlackHooks(t *testing.T) *slackHooks {
	h := &slackHooks{posts: map[string][]string{}}
	h.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/services/", func(w http.ResponseWriter, r *http.Request) {
			channel := strings.TrimPrefix(r.URL.Path, "/services/")
			if channel == "revoked" {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, "no_service")
				return
			}
			var msg struct{ Text string }
			b, _ := io.ReadAll(r.Body)
			json.Unmarshal(b, &msg)
			h.mu.Lock()
			h.posts[channel] = append(h.posts[channel], msg.Text+"\n"+string(b))
			h.mu.Unlock()
			io.WriteString(w, "ok")
		})
	})
	h.Start()
	t.Cleanup(h.Stop)
	return h
}

func (h *slackHooks) url(channel string) string {
	return "http://" + h.ServerAddr + "/services/" + channel
}

func (h *slackHooks) take(channel string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.posts[channel]
	delete(h.posts, channel)
	return p
}

// TestOrgSlack: each organisation's own Slack channel gets the alerts
// about its domains and its part of the weekly recommendation, nothing of
// another's; the instance's channel gets everything; a revoked webhook of
// one organisation is told on its page and in `org list`, and holds back
// no one else's messages; a webhook outside web.slack_webhook_prefixes is
// refused.
// orgSlackSetup makes a store with a new failing source in acme.example
// and globex.example, their records on a loopback DNS server, Slack's
// webhooks, and a config with a state file (and the instance's [slack]
// when instance); it returns the config and a runner of dmarcd with it
// that expects an exit code.
func orgSlackSetup(t *testing.T, instance bool) (string, *slackHooks, func(want int, args ...string) string) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	yesterday := testNow.AddDate(0, 0, -1).Format(time.DateOnly)
	from := testNow.AddDate(0, 0, -20).Format(time.DateOnly)
	records := map[string][]dns.RR{}
	for i, d := range []string{"acme.example", "globex.example"} {
		bad := []string{"203.0.113.66", "203.0.113.77"}[i]
		synth.Dataset{Domain: d, From: from, To: yesterday, Published: synth.Constant("none", 100, ""),
			Sources: []synth.Traffic{{IP: "192.0.2.1", PerDay: 2000, Pass: true}, {IP: bad, PerDay: 400, From: yesterday}}}.Write(t, st)
		rr, _ := dns.NewRR(`_dmarc.` + d + `. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@` + d + `"`)
		spf, _ := dns.NewRR(d + `. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 ~all"`)
		records["_dmarc."+d+"."], records[d+"."] = []dns.RR{rr}, []dns.RR{spf}
	}
	st.Close()
	resolver := testserver.DNS(t, records)
	hooks := newSlackHooks(t)

	slackTable := ""
	if instance {
		slackTable = "[slack]\nwebhook_url = \"" + hooks.url("instance") + "\""
	}
	state := filepath.Join(dir, "state.db")
	config := filepath.Join(dir, "dmarcd.toml")
	os.WriteFile(config, []byte(`store = "`+db+`"
[dns]
resolver = "`+resolver+`"
[sending]
ips = ["192.0.2.0/24"]
`+slackTable+`
[web]
accounts_file = "`+state+`"
slack_webhook_prefixes = ["http://`+hooks.ServerAddr+`/services/"]
`), 0o644)
	cli := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"--config", config}, args...)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, out, errOut)
		}
		if strings.Contains(out+errOut, "/services/acme") || strings.Contains(out+errOut, "/services/revoked") {
			t.Errorf("%v printed a webhook URL:\n%s%s", args, out, errOut)
		}
		return out + errOut
	}
	return config, hooks, cli
}

func TestOrgSlack(t *testing.T) {
	config, hooks, cli := orgSlackSetup(t, true)
	hookFile := func(url string) string {
		f := filepath.Join(t.TempDir(), "hook")
		os.WriteFile(f, []byte(url+"\n"), 0o600)
		return f
	}
	cli(0, "org", "add", "Acme", "--domain", "acme.example")
	cli(0, "org", "add", "Globex", "--domain", "globex.example")
	cli(2, "org", "slack", "Acme", "--webhook-file", hookFile("http://127.0.0.1:1/internal-admin"))
	cli(0, "org", "slack", "Acme", "--webhook-file", hookFile(hooks.url("acme")))
	cli(0, "org", "slack", "Globex", "--webhook-file", hookFile(hooks.url("revoked")), "--no-weekly")

	// The alerts: one new failing source in each domain. The domains come
	// from the organisations: the config file has no [[domain]].
	out := cli(0, "alerts", "--check")
	for _, want := range []string{"FIRING acme.example failing-source 203.0.113.66", "FIRING globex.example failing-source 203.0.113.77"} {
		if !strings.Contains(out, want) {
			t.Errorf("alerts --check lacks %q:\n%s", want, out)
		}
	}
	if got := hooks.take("instance"); len(got) != 2 {
		t.Errorf("the instance's channel got %d posts, want both alerts", len(got))
	}
	acme := hooks.take("acme")
	if len(acme) != 1 || !strings.Contains(acme[0], "203.0.113.66") || strings.Contains(acme[0], "globex") {
		t.Errorf("Acme's channel got %d posts: %q", len(acme), acme)
	}
	list := cli(0, "org", "list")
	if !strings.Contains(list, "alerts+weekly to "+hooks.ServerAddr) || !strings.Contains(list, "refused") || !strings.Contains(list, "no_service") {
		t.Errorf("org list does not say where each organisation's messages go and what Slack answered:\n%s", list)
	}
	cli(0, "alerts", "--check") // nothing new, nothing posted again
	if got := append(hooks.take("instance"), hooks.take("acme")...); len(got) != 0 {
		t.Errorf("a second check posted %d messages again: %q", len(got), got)
	}

	// The weekly recommendation: Acme's part to Acme, nothing to Globex
	// (it asked for none), all of it to the instance; queued once a week.
	e := testEnv(t, config)
	st2, err := e.openStore()
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	as := st2.(dmarcd.AlertStore)
	monday := time.Date(2026, 11, 9, 8, 0, 0, 0, time.UTC)
	for range 2 {
		if err := sendWeekly(e, st2, as, monday, false); err != nil {
			t.Fatal(err)
		}
	}
	instance, acme := hooks.take("instance"), hooks.take("acme")
	if len(instance) != 1 || !strings.Contains(instance[0], "acme.example") || !strings.Contains(instance[0], "globex.example") {
		t.Errorf("the instance's weekly: %d posts %q", len(instance), instance)
	}
	if len(acme) != 1 || !strings.Contains(acme[0], "acme.example") || strings.Contains(acme[0], "globex") {
		t.Errorf("Acme's weekly: %d posts %q", len(acme), acme)
	}
	pending, err := as.PendingNotifications(e.ctx)
	if err != nil || len(pending) != 0 {
		t.Errorf("still pending: %v %v", pending, err)
	}
}

// TestOrgSlackAlone: without the instance's [slack], the organisations'
// channels get their alerts all the same, and the check exits 0 though
// the instance's messages wait.
func TestOrgSlackAlone(t *testing.T) {
	_, hooks, cli := orgSlackSetup(t, false)
	f := filepath.Join(t.TempDir(), "hook")
	os.WriteFile(f, []byte(hooks.url("acme")), 0o600)
	cli(0, "org", "add", "Acme", "--domain", "acme.example")
	cli(0, "org", "slack", "Acme", "--webhook-file", f)
	cli(0, "alerts", "--check")
	if got := hooks.take("acme"); len(got) != 1 || !strings.Contains(got[0], "203.0.113.66") {
		t.Errorf("Acme's channel got %q", got)
	}
}

// testEnv is the env of `dmarcd --config config` at testNow.
func testEnv(t *testing.T, config string) *env {
	t.Helper()
	cfg, err := loadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	red := newRedactor(secrets(cfg))
	e := &env{ctx: context.Background(), cfg: cfg, log: newLogger(cfg.Log, io.Discard, red), stdout: io.Discard, stderr: io.Discard,
		now: testClock, redact: red, dashboard: &sharedAccounts{}}
	t.Cleanup(e.dashboard.close)
	return e
}
