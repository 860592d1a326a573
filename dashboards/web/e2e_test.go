package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/figures"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

// chromiumPath is Debian's Chromium (package chromium, installed by
// .ci/run).
const chromiumPath = "/usr/bin/chromium"

// e2eTimeout bounds the whole browser test.
const e2eTimeout = 3 * time.Minute

// screenshotDir is where the screenshots go: $DMARCD_SCREENSHOTS, else
// screenshots/ at the checkout's root (ignored by git).
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("DMARCD_SCREENSHOTS"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "screenshots")
}

// consoleLog collects what the page reports as an error: console.error
// calls, uncaught exceptions, and the browser's log entries at level error
// (a failed request, a Content-Security-Policy violation).
type consoleLog struct {
	mu     sync.Mutex
	errors []string
}

func (c *consoleLog) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *cdpruntime.EventConsoleAPICalled:
		if ev.Type != cdpruntime.ConsoleAPICalledTypeError && ev.Type != cdpruntime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *cdpruntime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = "log " + string(ev.Entry.Source) + ": " + ev.Entry.Text + " " + ev.Entry.URL
	default:
		return
	}
	c.mu.Lock()
	c.errors = append(c.errors, msg)
	c.mu.Unlock()
}

func (c *consoleLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.errors
	c.errors = nil
	return out
}

// TestBrowser loads every page in headless Chromium with the samples and
// the corpus ingested, reads the figures from the DOM, checks that the
// page logs no error, and writes a screenshot of each.
func TestBrowser(t *testing.T) {
	testserver.Need(t, chromiumPath, "chromium")
	st := openStore(t)
	ingestSamples(t, st)
	ingestCorpus(t, st)
	dns := samplesDNS()
	ks, _ := testKeys(t, dns)
	opts := fullOptions(st, dns, ks, samplesNow)
	h := newHandler(t, opts)
	srv := httptest.NewServer(h)
	defer srv.Close()
	// The page answers localhost names only without a secret: use one.
	base := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	shots := screenshotDir(t)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, bctx, console := startBrowser(t)

	// Expected figures, from the records view (the page reads the daily
	// rollups and the analysis).
	exMessages := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'example.com'`)
	exPass := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'example.com' AND day >= '2026-11-01' AND dmarc_pass = 1`)
	exMessagesNov := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'example.com' AND day >= '2026-11-01'`)
	newsMessages := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'news.example.com'`)
	topIP := strs(t, st, `SELECT source_ip FROM records WHERE domain = 'news.example.com' GROUP BY source_ip ORDER BY SUM(count) DESC, source_ip LIMIT 1`)[0]
	topIPMessages := scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'news.example.com' AND source_ip = ? AND day >= '2026-10-10'`, topIP)
	_ = exMessages
	rec, err := opts.Recommender.Recommend(ctx, dmarcd.SenderDomain{Name: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	failureIDs := strs(t, st, `SELECT CAST(id AS TEXT) FROM failures WHERE domain = 'example.com' ORDER BY id LIMIT 1`)

	type check struct {
		sel  string // CSS selector of an element
		want string // text it must contain
	}
	pages := []struct {
		name   string
		path   string
		mobile bool
		checks []check
	}{
		{"01-domains", "/", false, []check{
			{`tr[data-domain="example.com"] td.messages`, figures.Count(exMessagesNov)},
			{`tr[data-domain="news.example.com"] td.messages`, figures.Count(newsMessages)},
			{`#advice-record-example-com .badge`, actionLabel(rec)},
			{`#record-example-com`, rec.Record},
			{`#record-news-example-com`, "v=DMARC1; p=none"},
		}},
		{"02-domain-example.com", "/domain/example.com", false, []check{
			{`#messages`, figures.Count(exMessagesNov)},
			{`#dmarc-pass`, percent(ratio(exPass, exMessagesNov))},
			{`#reporters`, "google.com"},
		}},
		{"03-domain-news-90d", "/domain/news.example.com?days=90", false, []check{
			{`#messages`, figures.Count(newsMessages)},
			{`#sources tbody tr:first-child`, topIP},
		}},
		{"04-source", "/domain/news.example.com/source/" + topIP, false, []check{
			{`#source-messages`, figures.Count(topIPMessages)},
			{`#records`, "news.example.com"},
		}},
		{"05-records", "/domain/example.com/records", false, []check{
			{`pre.bind`, "_dmarc"},
			{`table.plan`, "v=spf1"},
		}},
		{"06-keys", "/keys", false, []check{
			{`table.keys`, "s2026a"},
			{`table.keys`, "current"},
			{`table.keys`, "e2026b"},
		}},
		{"07-failures", "/failures", false, []check{
			{`#failures`, "Invoice 1072 overdue"},
		}},
		{"08-failure", "/failures/" + failureIDs[0], false, []check{
			{`#original-headers`, "Subject: Invoice"},
		}},
		{"09-corpus-domain", "/domain/example.com?days=90&to=2024-06-13", false, []check{
			{`#messages`, figures.Count(scalar(t, st, `SELECT SUM(count) FROM records WHERE domain = 'example.com' AND day >= '2024-03-16' AND day <= '2024-06-13'`))},
			{`#reporters`, "fred.com"},
		}},
		{"13-tls", "/tls?days=90&to=2025-06-14", false, []check{
			{`#tls-policies tr[data-domain="random.net"][data-policy="tlsa"]`, "tlsa"},
			{`#tls-failures`, "sts-policy-fetch-error"},
		}},
		{"10-domains-mobile", "/", true, []check{
			{`tr[data-domain="example.com"] td.messages`, figures.Count(exMessagesNov)},
		}},
		{"11-domain-mobile", "/domain/example.com", true, []check{
			{`#messages`, figures.Count(exMessagesNov)},
		}},
		{"12-not-found", "/domain/nowhere.example", false, []check{
			{`#error-message`, "No reports about nowhere.example"},
		}},
	}
	// The listener hears errors: a self-check on a page of the server.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/keys")); err != nil {
		t.Fatal(err)
	}
	console.take() // the start of the browser
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[any](`console.error("e2e self-check"); setTimeout(() => { throw new Error("e2e thrown") }, 0)`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if heard := strings.Join(console.take(), "\n"); !strings.Contains(heard, "e2e self-check") || !strings.Contains(heard, "e2e thrown") {
		t.Fatalf("the console listener does not hear errors: %q", heard)
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			width, height := int64(1366), int64(900)
			if p.mobile {
				width, height = 390, 844
			}
			if err := chromedp.Do(bctx,
				chromedp.EmulateViewport(width, height),
				chromedp.Navigate(base+p.path),
				chromedp.WaitReady(chromedp.CSS("footer")),
			); err != nil {
				t.Fatalf("loading %s: %v", p.path, err)
			}
			for _, c := range p.checks {
				text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(c.sel)))
				if err != nil {
					t.Errorf("%s: reading %s: %v", p.path, c.sel, err)
					continue
				}
				if !strings.Contains(text, c.want) {
					t.Errorf("%s: %s reads %q, want it to contain %q", p.path, c.sel, text, c.want)
				}
			}
			png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot of %s: %v", p.path, err)
			}
			file := filepath.Join(shots, p.name+".png")
			if err := os.WriteFile(file, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", file)
			// Errors arrive as events: give the last ones a moment.
			time.Sleep(100 * time.Millisecond)
			for _, e := range console.take() {
				if p.name == "12-not-found" && strings.Contains(e, "404") {
					continue // the page itself answers 404, on purpose
				}
				t.Errorf("%s logged an error: %s", p.path, e)
			}
		})
	}

	// The copy button copies the record and says so.
	t.Run("copy", func(t *testing.T) {
		if err := chromedp.Do(bctx,
			chromedp.EmulateViewport(1366, 900),
			chromedp.Navigate(base+"/"),
			chromedp.Click(chromedp.CSS(`button[data-copy="record-news-example-com"]`)),
		); err != nil {
			t.Fatal(err)
		}
		selected, err := chromedp.Run(bctx, chromedp.Evaluate[string](`window.getSelection().toString()`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(selected, "v=DMARC1; p=none") {
			t.Errorf("after Copy the selection is %q, want the record", selected)
		}
		label, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`button[data-copy="record-news-example-com"]`)))
		if err != nil {
			t.Fatal(err)
		}
		if label != "Copied" && label != "Press Ctrl+C" {
			t.Errorf("the button reads %q after a click", label)
		}
		for _, e := range console.take() {
			t.Errorf("copying logged an error: %s", e)
		}
	})
	fmt.Fprintf(os.Stderr, "screenshots in %s\n", shots)
}

// startBrowser starts headless Chromium for the test, stopped when it
// ends, with a listener of the errors pages log. ctx bounds the test.
func startBrowser(t *testing.T) (ctx, bctx context.Context, console *consoleLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	console = &consoleLog{}
	if err := chromedp.Listen(bctx, console.listen); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx, bctx, console
}
