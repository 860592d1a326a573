package web

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

// TestBrowserAccounts walks the dashboard of many organisations in
// headless Chromium as an editor would: log in, add a sender domain
// through the wizard, read its records with their live state, generate and
// upload keys, rotate, say a rollout step is published, read the audit log;
// a screenshot of each form, and no page logs an error.
func TestBrowserAccounts(t *testing.T) {
	testserver.Need(t, chromiumPath, "chromium")
	tn := newTenants(t)
	base := tn.srv.URL
	shots := screenshotDir(t)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	_, bctx, console := startBrowser(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	ready := chromedp.WaitReady(chromedp.CSS("footer"))
	// loaded runs act (a click or a submit) and waits for the page it leads
	// to: the old page is marked first, so its footer is not taken for the
	// new one's.
	loaded := func(act chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			if _, err := chromedp.Evaluate[bool](`window.dmarcdOld = true`)(ctx, tg); err != nil {
				return chromedp.Void{}, err
			}
			if _, err := act(ctx, tg); err != nil {
				return chromedp.Void{}, err
			}
			// While the navigation runs, the old page's context goes away:
			// an error then means "not yet".
			for {
				done, err := chromedp.Evaluate[bool](`!window.dmarcdOld && document.readyState === "complete"`)(ctx, tg)
				if err == nil && done {
					return chromedp.Void{}, nil
				}
				select {
				case <-ctx.Done():
					return chromedp.Void{}, ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	}

	// The login.
	do("opening the page", chromedp.Navigate(base+"/"), ready)
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Fatalf("not sent to the login: %s", loc)
	}
	do("filling the login", chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "ann@acme.example"), chromedp.SendKeys(chromedp.CSS(`input[name=password]`), testPassword))
	shot("20-login")
	do("logging in", loaded(chromedp.Submit(chromedp.CSS(`input[name=password]`))), chromedp.WaitVisible(chromedp.CSS("form.who")))
	if who := text("form.who span"); who != "ann@acme.example" {
		t.Fatalf("logged in as %q", who)
	}
	if n, _ := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href="/audit"]').length`)); n != 0 {
		t.Error("an editor is offered the audit log, which is for owners")
	}

	// A sender domain through the wizard.
	do("opening the wizard", chromedp.Navigate(base+"/domains/new"), ready,
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "news.acme.example"),
		chromedp.Click(chromedp.CSS(`input[name=mode][value=subdomain]`)),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=ips]`), "198.51.100.0/24"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=spf_includes]`), "_spf.crm.example"))
	shot("21-add-domain")
	do("saving the domain", loaded(chromedp.Submit(chromedp.CSS(`input[name=name]`))))
	if plan := text("table.plan"); !strings.Contains(plan, "ip4:198.51.100.0/24") || !strings.Contains(plan, "missing") {
		t.Errorf("the records: %s", plan)
	}
	shot("22-records")

	// Keys: generate, upload, rotate.
	do("generating a key", chromedp.Navigate(base+"/keys"), ready,
		chromedp.SetValue(chromedp.CSS(`form[action="/keys/generate"] select[name=algorithm]`), "ed25519"),
		loaded(chromedp.Submit(chromedp.CSS(`form[action="/keys/generate"] select[name=algorithm]`))))
	if note := text("p.note"); !strings.Contains(note, "Generated e202611._domainkey") {
		t.Errorf("after Generate: %s", note)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pemFile := filepath.Join(t.TempDir(), "up1.private")
	os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	do("uploading a key",
		chromedp.SendKeys(chromedp.CSS(`form[action="/keys/import"] input[name=selector]`), "up1"),
		chromedp.SetUploadFiles(chromedp.CSS(`input[name=pem_file]`), []string{pemFile}))
	shot("23-keys")
	do("sending the key", loaded(chromedp.Submit(chromedp.CSS(`form[action="/keys/import"] input[name=selector]`))))
	if note := text("p.note"); !strings.Contains(note, "Imported up1._domainkey.acme.example") {
		t.Errorf("after Upload: %s", note)
	}
	do("rotating", loaded(chromedp.Click(chromedp.CSS(`form[action="/keys/rotate"] button`))))
	if note := text("p.note"); !strings.Contains(note, "Rotation started") {
		t.Errorf("after Rotate: %s", note)
	}
	if page := text("main"); strings.Contains(page, "PRIVATE KEY") {
		t.Error("the keys page shows a private key")
	}
	shot("24-keys-after")

	// "I published it".
	tn.dns.txt["_dmarc.news.acme.example"] = []string{"v=DMARC1; p=none; rua=mailto:dmarc@acme.example"}
	do("saying the step is published", chromedp.Navigate(base+"/domain/news.acme.example"), ready,
		loaded(chromedp.Click(chromedp.CSS(`form[action$="/published"] button`))))
	if note := text("p.note"); !strings.Contains(note, "Recorded: none is live") {
		t.Errorf("after I published it: %s", note)
	}
	shot("25-published")
	// The audit log is for owners and the administrator: Ann logs out, the
	// administrator logs in.
	do("logging out", loaded(chromedp.Submit(chromedp.CSS(`form.who button`))))
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Fatalf("after logging out: %s", loc)
	}
	do("logging in as the administrator", chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "root@ops.example"), chromedp.SendKeys(chromedp.CSS(`input[name=password]`), testPassword),
		loaded(chromedp.Submit(chromedp.CSS(`input[name=password]`))))
	do("the audit log", chromedp.Navigate(base+"/audit"), ready)
	if log := text("#audit"); !strings.Contains(log, "rollout.published") || !strings.Contains(log, "key.import") {
		t.Errorf("the audit log: %s", log)
	}
	shot("26-audit")

	// A Slack channel for Acme, as the administrator; the webhook is not
	// shown again.
	do("the Slack page", chromedp.Navigate(base+"/slack"), ready,
		chromedp.SendKeys(chromedp.CSS(`#slack-1 input[name=webhook_url]`), "https://hooks.slack.com/services/T0/B0/secretpart"))
	shot("27-slack")
	do("saving the Slack channel", loaded(chromedp.Click(chromedp.CSS(`#slack-1 button[value=save]`))))
	if page := text("main"); !strings.Contains(page, "Acme's Slack channel is saved") || strings.Contains(page, "secretpart") {
		t.Errorf("after saving the Slack channel: %s", page)
	}
	time.Sleep(100 * time.Millisecond)
	for _, e := range console.take() {
		t.Errorf("a page logged an error: %s", e)
	}
}
