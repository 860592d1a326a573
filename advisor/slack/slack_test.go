package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/advisor/alert"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// fakeSlack is slacktest's server with chat.postMessage captured and
// failures injected: each entry of fail answers one call with that status
// (429 with Retry-After).
type fakeSlack struct {
	*slacktest.Server
	mu     sync.Mutex
	fail   []int
	posted []map[string]string
	calls  int
}

func newFakeSlack(t *testing.T, fail ...int) *fakeSlack {
	f := &fakeSlack{fail: fail}
	capture := func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls++
		if len(f.fail) > 0 {
			code := f.fail[0]
			f.fail = f.fail[1:]
			if code == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "7")
			}
			w.WriteHeader(code)
			return
		}
		f.posted = append(f.posted, map[string]string{"channel": r.Form.Get("channel"), "text": r.Form.Get("text"), "blocks": r.Form.Get("blocks")})
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"channel":"C1","ts":"1.0"}`)
	}
	// Handlers registered before slacktest's own replace them.
	f.Server = slacktest.NewTestServer(func(c slacktest.Customize) { c.Handle("/chat.postMessage", capture) })
	f.Start()
	t.Cleanup(f.Stop)
	return f
}

func (f *fakeSlack) messages() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.posted...)
}

// TestAlertsPostedOnce: an alert and its resolution reach Slack once each,
// through the outbox, as Block Kit messages.
func TestAlertsPostedOnce(t *testing.T) {
	f := newFakeSlack(t)
	s := testserver.SQLite(t)
	n, err := New(Options{Token: "xoxb-test", Channel: "C1", APIURL: f.GetAPIURL()})
	if err != nil {
		t.Fatal(err)
	}
	firing := true
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	e := &alert.Engine{State: s, Now: func() time.Time { return now }, Detectors: []alert.Detector{{
		Kinds: []dmarcd.AlertKind{dmarcd.AlertFailingSource},
		Detect: func(context.Context, time.Time) ([]dmarcd.Alert, error) {
			if !firing {
				return nil, nil
			}
			return []dmarcd.Alert{{Domain: "example.com", Kind: dmarcd.AlertFailingSource, Subject: "203.0.113.66", Onset: true,
				Title: "New source 203.0.113.66 fails DMARC for example.com", Text: "400 of 400 messages failed DMARC.",
				Facts: []dmarcd.Fact{{Label: "Failing", Value: "400"}}, Action: "Authorize it or let the policy stop it."}}, nil
		}}}}
	out := &alert.Outbox{State: s, Poster: n}
	run := func() {
		if _, err := e.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := out.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	run()
	run() // nothing new
	firing = false
	now = now.Add(time.Hour)
	run()
	run()
	msgs := f.messages()
	if len(msgs) != 2 {
		t.Fatalf("posted %d messages, want 2: %v", len(msgs), msgs)
	}
	if !strings.Contains(msgs[0]["text"], "New source 203.0.113.66") || !strings.Contains(msgs[0]["blocks"], `"type":"header"`) ||
		!strings.Contains(msgs[0]["blocks"], "What to do") || msgs[0]["channel"] != "C1" {
		t.Errorf("alert message: %v", msgs[0])
	}
	if !strings.Contains(msgs[1]["text"], "Resolved") {
		t.Errorf("follow-up: %v", msgs[1])
	}
}

// TestOutageLosesNothing: Slack fails (500, then 429 with Retry-After);
// the outbox waits as asked and delivers every message in order.
func TestOutageLosesNothing(t *testing.T) {
	f := newFakeSlack(t, 500, 500, 429)
	s := testserver.SQLite(t)
	n, err := New(Options{Token: "xoxb-test", Channel: "C1", APIURL: f.GetAPIURL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	w := alert.Weekly{At: at, Recommendations: []*advisor.Recommendation{{Domain: "example.com", Action: advisor.Advance,
		Current: dmarcd.RolloutStep{Policy: "quarantine", Percent: 5}, Next: dmarcd.RolloutStep{Policy: "quarantine", Percent: 10},
		Reasons: []string{"quarantine 5% has held 14 days"}, RecordName: "_dmarc.example.com", Record: "v=DMARC1; p=quarantine; pct=10; t=y"}},
		TLS: []analyze.TLSPolicy{{Domain: "example.com", Type: "sts", Reports: 14, Reporters: 2, Successful: 7832, Failed: 100}}}
	if err := alert.QueueWeekly(ctx, s, w); err != nil {
		t.Fatal(err)
	}
	if err := alert.QueueWeekly(ctx, s, w); err != nil { // the same week again: kept once
		t.Fatal(err)
	}
	var waits []time.Duration
	out := &alert.Outbox{State: s, Poster: n, Sleep: func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}}
	delivered, err := out.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if delivered != 1 || f.calls != 4 {
		t.Fatalf("delivered %d in %d calls, want 1 in 4", delivered, f.calls)
	}
	if len(waits) != 3 || waits[0] != alert.InitialBackoff || waits[1] != 2*alert.InitialBackoff || waits[2] != 7*time.Second {
		t.Errorf("waits %v: want backoff, backoff doubled, then Retry-After", waits)
	}
	msgs := f.messages()
	if !strings.Contains(msgs[0]["blocks"], "p=quarantine; pct=10; t=y") {
		t.Errorf("weekly message lacks the record: %v", msgs[0])
	}
	if !strings.Contains(msgs[0]["blocks"], "example.com* sts: 7,932 sessions, 1.26% failed") {
		t.Errorf("weekly message lacks the TLS sessions: %v", msgs[0]["blocks"])
	}
	if delivered, _ := out.Flush(ctx); delivered != 0 {
		t.Errorf("flushed again: %d", delivered)
	}
}

// TestWeeklyScheduleWithInjectedClock: the Monday 08:00 schedule in a time
// zone fires at the right instants, and the message it queues reaches
// Slack through a webhook.
func TestWeeklyScheduleWithInjectedClock(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	n, err := New(Options{WebhookURL: hook.URL})
	if err != nil {
		t.Fatal(err)
	}
	s := testserver.SQLite(t)
	sched, err := alert.ParseSchedule(alert.DefaultWeeklySpec, "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} // a Wednesday
	ctx, cancel := context.WithCancel(context.Background())
	var fired []string
	run := func(ctx context.Context, at time.Time, late bool) {
		fired = append(fired, fmt.Sprint(at.UTC().Format(time.RFC3339), " late=", late))
		if err := alert.QueueWeekly(ctx, s, alert.Weekly{At: at, Late: late}); err != nil {
			t.Error(err)
		}
		if _, err := (&alert.Outbox{State: s, Poster: n}).Flush(ctx); err != nil {
			t.Error(err)
		}
		if len(fired) == 3 {
			cancel()
		}
	}
	sched.Run(ctx, clock, run)
	// The daemon starts on Wednesday: Monday 23 Nov 2026 08:00 CET (07:00
	// UTC) was missed and goes out at once, late; then 30 Nov and 7 Dec on
	// time.
	want := "[2026-11-23T07:00:00Z late=true 2026-11-30T07:00:00Z late=false 2026-12-07T07:00:00Z late=false]"
	if fmt.Sprint(fired) != want {
		t.Fatalf("fired %v, want %v", fired, want)
	}
	if len(bodies) != 3 {
		t.Fatalf("webhook got %d posts, want 3", len(bodies))
	}
	var msg map[string]any
	if err := json.Unmarshal([]byte(bodies[0]), &msg); err != nil || !strings.Contains(msg["text"].(string), "week of 23 Nov 2026") ||
		!strings.Contains(bodies[0], "Late: due Mon 23 Nov 07:00 UTC") {
		t.Errorf("weekly webhook body: %s", bodies[0])
	}
	// A restart on Tuesday catches up the Monday of 7 Dec, which went out:
	// nothing is posted again.
	clock.now = time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	ctx, cancel = context.WithCancel(context.Background())
	fired = fired[:2]
	sched.Run(ctx, clock, run)
	cancel()
	if len(bodies) != 3 || fired[2] != "2026-12-07T07:00:00Z late=true" {
		t.Errorf("after a restart: %v, %d posts, want the catch-up of 7 Dec and no new post", fired, len(bodies))
	}
}

// fakeClock jumps to the time waited for.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// webhook is an incoming webhook that answers each post with the next
// scripted status and body (200 "ok" when the script is done), and keeps
// what was posted.
type webhook struct {
	mu     sync.Mutex
	script []answer
	posted []string
	delay  time.Duration
}

type answer struct {
	status int
	body   string
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	time.Sleep(h.delay)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.script) > 0 && h.script[0].status != http.StatusOK {
		a := h.script[0]
		h.script = h.script[1:]
		if a.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "3")
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
		return
	}
	if len(h.script) > 0 {
		h.script = h.script[1:]
	}
	h.posted = append(h.posted, string(b))
	io.WriteString(w, "ok")
}

func (h *webhook) texts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, p := range h.posted {
		var m struct{ Text string }
		json.Unmarshal([]byte(p), &m)
		out = append(out, m.Text)
	}
	return out
}

func queue(t *testing.T, s dmarcd.AlertStore, titles ...string) {
	t.Helper()
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i, title := range titles {
		payload, _ := json.Marshal(dmarcd.Alert{Domain: "example.com", Kind: dmarcd.AlertFailingSource, Subject: title, Title: title, At: at})
		if err := s.AddNotification(context.Background(), dmarcd.Notification{ID: title, Created: at.Add(time.Duration(i) * time.Second), Kind: alert.KindAlert, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPermanentErrors: a 500 and a 429 are tried again (after Retry-After);
// a 404 no_service and a 400 invalid_blocks take their message out of the
// outbox with Slack's answer and block nothing after them; the broken
// channel is told to the alert history once, and resolved by the next post
// that goes through. The webhook URL, a credential, is in no log line.
func TestPermanentErrors(t *testing.T) {
	h := &webhook{script: []answer{{500, "internal error"}, {429, "rate_limited"}, {200, "ok"}, {404, "no_service"}, {400, "invalid_blocks"}}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	hook := srv.URL + "/services/T000/B000/s3cr3tw3bh00ksecret"
	n, err := New(Options{WebhookURL: hook})
	if err != nil {
		t.Fatal(err)
	}
	s := testserver.SQLite(t)
	queue(t, s, "first", "second", "third", "fourth")
	var logs strings.Builder
	var waits []time.Duration
	out := &alert.Outbox{State: s, Poster: n, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	delivered, err := out.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// first: 500, 429, then posted; second: 404; third: 400; fourth posted.
	if got := strings.Join(h.texts(), ","); delivered != 2 || got != ":rotating_light: first,:rotating_light: fourth" {
		t.Errorf("delivered %d: %q", delivered, got)
	}
	if fmt.Sprint(waits) != "[2s 3s]" {
		t.Errorf("waits %v, want the backoff then Retry-After", waits)
	}
	if pending, _ := s.PendingNotifications(context.Background()); len(pending) != 0 {
		t.Errorf("%d still pending", len(pending))
	}
	for _, want := range []string{"no_service", "invalid_blocks", "404 Not Found"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks Slack's answer %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "s3cr3t") {
		t.Errorf("the webhook URL is in the log:\n%s", logs.String())
	}
	rows, err := s.Query(context.Background(), `SELECT state, title FROM alerts WHERE kind = 'dmarcd-health' ORDER BY at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var events []string
	for rows.Next() {
		var state, title string
		rows.Scan(&state, &title)
		events = append(events, state)
	}
	if strings.Join(events, ",") != "firing,resolved" {
		t.Errorf("broken-channel alert history %v, want firing once, then resolved", events)
	}
	rows2, _ := s.Query(context.Background(), `SELECT reason FROM undeliverable ORDER BY at`)
	defer rows2.Close()
	var reasons []string
	for rows2.Next() {
		var r string
		rows2.Scan(&r)
		reasons = append(reasons, r)
	}
	if len(reasons) != 2 || !strings.Contains(reasons[0], "no_service") || !strings.Contains(reasons[1], "invalid_blocks") {
		t.Errorf("undeliverable reasons %q", reasons)
	}
}

// TestTwoFlushers: the daemon and a cron `alerts --check` flush one store
// at once: each message reaches Slack once, in order.
func TestTwoFlushers(t *testing.T) {
	h := &webhook{delay: 20 * time.Millisecond}
	srv := httptest.NewServer(h)
	defer srv.Close()
	n, err := New(Options{WebhookURL: srv.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var stores []*sqlite.Store
	for range 2 { // two processes: two connections to one file
		s, err := sqlite.Open(context.Background(), filepath.Join(dir, "d.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	var titles []string
	for i := range 12 {
		titles = append(titles, fmt.Sprintf("m%02d", i))
	}
	queue(t, stores[0], titles...)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			if _, err := (&alert.Outbox{State: s, Poster: n, Owner: fmt.Sprint("flusher-", i)}).Flush(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// A flusher that found the other at work left it the rest: flush
	// again until the outbox is empty, as the daemon's next round does.
	for {
		pending, _ := stores[0].PendingNotifications(context.Background())
		if len(pending) == 0 {
			break
		}
		if _, err := (&alert.Outbox{State: stores[0], Poster: n}).Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, title := range titles {
		want = append(want, ":rotating_light: "+title)
	}
	if got := h.texts(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("posted %q, want each once in order", got)
	}
}

// TestHostileText: a spoofer whose PTR is Slack markup pings nobody and
// links nowhere, in the blocks and in the fallback text.
func TestHostileText(t *testing.T) {
	ptr := "<!channel><https://evil.example/fix|Fix-DMARC-now>.attacker.example"
	a := dmarcd.Alert{Domain: "example.com", Kind: dmarcd.AlertFailingSource, Subject: "203.0.113.9",
		Title: "New source 203.0.113.9 (" + ptr + ") fails DMARC for example.com", Text: "from " + ptr,
		Facts: []dmarcd.Fact{{Label: "PTR", Value: ptr}}, Action: "see " + ptr}
	text, blocks := AlertBlocks(a)
	b, _ := json.Marshal(blocks)
	w := alert.Weekly{At: time.Now(), Recommendations: []*advisor.Recommendation{{Domain: "example.com", Action: advisor.Hold,
		Reasons:  []string{ptr + " fails DMARC"},
		Evidence: advisor.Evidence{Blocking: []advisor.Blocker{{Name: ptr, Class: "unconfigured", Fixes: []advisor.Fix{{Text: "find out what sends from " + ptr}}}}}}}}
	wtext, wblocks := WeeklyBlocks(w)
	wb, _ := json.Marshal(wblocks)
	for _, out := range []string{text, string(b), wtext, string(wb)} {
		if strings.Contains(out, "<!channel>") || strings.Contains(out, "<https://evil") {
			t.Errorf("live markup in %s", out)
		}
	}
	if !strings.Contains(string(b), "\\u0026lt;!channel\\u0026gt;") && !strings.Contains(string(b), "&lt;!channel&gt;") {
		t.Errorf("the PTR is not shown escaped: %s", b)
	}
}
