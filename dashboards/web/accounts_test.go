package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
	"github.com/dmarcd/dmarcd/internal/synth"
	"github.com/dmarcd/dmarcd/signer/keystore"
	"github.com/slack-go/slack/slacktest"
)

const testPassword = "a long enough password"

// tenants is a page with logins over a store holding the mail of three
// domains: acme.example (organisation Acme), globex.example (Globex) and
// orphan.example (no organisation).
type tenants struct {
	srv      *httptest.Server
	acc      *accounts.Store
	now      time.Time
	failures map[string]uint64 // a failure report's id by domain
	dns      *fakeDNS
	keys     *keystore.Store
}

func newTenants(t *testing.T) *tenants { return newTenantsWith(t, nil) }

// newTenantsWith is newTenants with options of the handler changed by opt.
func newTenantsWith(t *testing.T, opt func(*Options)) *tenants {
	t.Helper()
	st := openStore(t)
	for _, d := range []string{"acme.example", "globex.example", "orphan.example"} {
		synth.Dataset{Domain: d, From: "2026-11-20", To: "2026-11-28", Published: synth.Constant("none", 100, ""),
			Sources: []synth.Traffic{{IP: "192.0.2.10", PerDay: 10, Pass: true}}}.Write(t, st)
		f := &dmarcd.FailureReport{ReportFrom: "r@receiver.example", FeedbackType: "auth-failure", ReportedDomain: d,
			SourceIP: "198.51.100.9", ArrivalDate: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), ArrivalDateText: "x",
			OriginalHeaders: "From: a@" + d + "\r\nSubject: secret of " + d + "\r\n"}
		if err := st.AddFailure(context.Background(), f, dmarcd.Origin{ReceivedAt: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acc.Close() })
	tn := &tenants{acc: acc, now: time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC), failures: map[string]uint64{}}
	acc.SetClock(func() time.Time { return tn.now })
	acme, _ := acc.AddOrg(ctx, "Acme")
	globex, _ := acc.AddOrg(ctx, "Globex")
	acc.AddDomain(ctx, acme.ID, "acme.example")
	acc.AddDomain(ctx, globex.ID, "globex.example")
	for _, u := range []struct {
		email string
		org   int64
		role  accounts.Role
		admin bool
	}{{"root@ops.example", 0, "", true}, {"ann@acme.example", acme.ID, accounts.RoleEditor, false}, {"gus@globex.example", globex.ID, accounts.RoleViewer, false},
		{"olga@acme.example", acme.ID, accounts.RoleOwner, false}} {
		user, err := acc.AddUser(ctx, u.email, testPassword, u.admin)
		if err != nil {
			t.Fatal(err)
		}
		if u.org != 0 {
			acc.SetRole(ctx, user.ID, u.org, u.role)
		}
	}
	rows, err := st.Query(ctx, "SELECT id, domain FROM failures")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id uint64
		var d string
		rows.Scan(&id, &d)
		tn.failures[d] = id
	}
	rows.Close()
	tn.dns = &fakeDNS{txt: map[string][]string{
		"acme.example":        {"v=spf1 ip4:192.0.2.10 -all"},
		"_dmarc.acme.example": {"v=DMARC1; p=none; rua=mailto:dmarc@acme.example"},
	}, ptr: map[string]string{}}
	o := fullOptions(st, tn.dns, nil, tn.now)
	o.Accounts, o.Now = acc, func() time.Time { return tn.now }
	o.LookupTXT = tn.dns.TXT
	o.DefaultRUA = []string{"dmarc@acme.example"}
	ks, err := keystore.Open(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	tn.keys = ks
	o.KeyStore, o.RSABits = ks, 1024
	o.KeyAdvice = func(ctx context.Context) ([]advisor.KeyAdvice, error) {
		keys, err := ks.List()
		if err != nil {
			return nil, err
		}
		lookup := func(ctx context.Context, name string) ([]string, error) {
			txts, err := tn.dns.TXT(ctx, name)
			if errors.Is(err, advisor.ErrNXDomain) {
				return nil, nil // as the daemon's lookup: no records
			}
			return txts, err
		}
		a := &advisor.KeyAdvisor{Policy: dmarcd.DefaultRotationPolicy, Lookup: lookup, Now: func() time.Time { return tn.now }}
		return a.Advise(ctx, keys)
	}
	if opt != nil {
		opt(&o)
	}
	h := newHandler(t, o)
	tn.srv = httptest.NewServer(h)
	t.Cleanup(tn.srv.Close)
	return tn
}

// client is a browser: it keeps cookies and does not follow redirects.
type client struct {
	t   *testing.T
	srv *httptest.Server
	hc  *http.Client
}

func (tn *tenants) client(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, srv: tn.srv, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values, headers ...string) (int, string, http.Header) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.srv.URL)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs in and returns the session's CSRF token.
func (c *client) login(email, password string) (int, string) {
	c.t.Helper()
	_, page, _ := c.do("GET", "/login", nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no CSRF token in the login form:\n%s", page)
	}
	status, _, hd := c.do("POST", "/login", url.Values{"csrf": {m[1]}, "email": {email}, "password": {password}, "next": {"/keys"}})
	if status != http.StatusSeeOther {
		return status, ""
	}
	if loc := hd.Get("Location"); loc != "/keys" {
		c.t.Errorf("after login: to %q, want /keys", loc)
	}
	_, page, _ = c.do("GET", "/", nil)
	m = csrfField.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no logout form:\n%s", page)
	}
	return status, m[1]
}

// TestLoginIsolation: without a session every page sends to the login;
// a user sees their organisation's domains and nothing of another's, by
// page or by guessing names and ids; the administrator sees everything.
func TestLoginIsolation(t *testing.T) {
	tn := newTenants(t)
	anon := tn.client(t)
	if status, _, hd := anon.do("GET", "/domain/acme.example", nil); status != http.StatusSeeOther || hd.Get("Location") != "/login?next=%2Fdomain%2Facme.example" {
		t.Fatalf("anonymous: %d to %q", status, hd.Get("Location"))
	}
	if status, _, _ := anon.do("GET", "/static/style.css", nil); status != http.StatusOK {
		t.Errorf("the stylesheet needs a login: %d", status)
	}

	ann := tn.client(t)
	if status, _ := ann.login("ann@acme.example", testPassword); status != http.StatusSeeOther {
		t.Fatalf("ann's login: %d", status)
	}
	_, index, _ := ann.do("GET", "/", nil)
	if !strings.Contains(index, "acme.example") || strings.Contains(index, "globex.example") || strings.Contains(index, "orphan.example") {
		t.Errorf("ann's front page shows other organisations' domains")
	}
	for path, want := range map[string]int{
		"/domain/acme.example":                                     200,
		"/domain/acme.example/source/192.0.2.10":                   200,
		"/domain/globex.example":                                   404,
		"/domain/orphan.example":                                   404,
		"/domain/globex.example/source/192.0.2.10":                 404,
		"/domain/globex.example/records":                           404,
		"/failures?domain=globex.example":                          404,
		"/tls?domain=globex.example":                               404,
		"/alerts?domain=globex.example":                            404,
		fmt.Sprintf("/failures/%d", tn.failures["acme.example"]):   200,
		fmt.Sprintf("/failures/%d", tn.failures["globex.example"]): 404,
		fmt.Sprintf("/failures/%d", tn.failures["orphan.example"]): 404,
	} {
		if status, body, _ := ann.do("GET", path, nil); status != want {
			t.Errorf("ann, GET %s: %d, want %d", path, status, want)
		} else if strings.Contains(body, "secret of globex") || strings.Contains(body, "secret of orphan") {
			t.Errorf("ann, GET %s shows another organisation's failure report", path)
		}
	}
	if _, page, _ := ann.do("GET", "/failures", nil); !strings.Contains(page, `href="/failures?domain=acme.example"`) || strings.Contains(page, "globex") {
		t.Errorf("ann's failure reports page:\n%s", page)
	}

	root := tn.client(t)
	root.login("root@ops.example", testPassword)
	_, index, _ = root.do("GET", "/", nil)
	for _, d := range []string{"acme.example", "globex.example", "orphan.example"} {
		if !strings.Contains(index, d) {
			t.Errorf("the administrator does not see %s", d)
		}
	}
	if status, _, _ := root.do("GET", fmt.Sprintf("/failures/%d", tn.failures["orphan.example"]), nil); status != 200 {
		t.Errorf("the administrator, orphan's failure report: %d", status)
	}
}

// TestLoginSecurity: the login form's CSRF token, wrong passwords,
// the limit on failed logins, logout (with its CSRF token, from this
// site only), and sessions that expire.
func TestLoginSecurity(t *testing.T) {
	tn := newTenants(t)
	c := tn.client(t)
	// A login form posted without its token, or from another site.
	if status, _, _ := c.do("POST", "/login", url.Values{"email": {"ann@acme.example"}, "password": {testPassword}}); status != http.StatusUnauthorized {
		t.Errorf("login without the form's token: %d", status)
	}
	if status, _ := c.login("ann@acme.example", "wrong password here"); status != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", status)
	}
	// The limit per user: MaxLoginFailuresPerUser failures, then even
	// the right password waits.
	for range accounts.MaxPasswordBytes {
		if status, _ := c.login("gus@globex.example", "wrong password here"); status == http.StatusTooManyRequests {
			break
		}
	}
	if status, _ := c.login("gus@globex.example", testPassword); status != http.StatusTooManyRequests {
		t.Errorf("after %d failures, the right password: %d, want 429", MaxLoginFailuresPerUser, status)
	}
	// Logout needs the session's token, from this site.
	status, csrf := c.login("ann@acme.example", testPassword)
	if status != http.StatusSeeOther {
		t.Fatalf("login: %d", status)
	}
	if status, _, _ := c.do("POST", "/logout", url.Values{"csrf": {"forged"}}); status != http.StatusForbidden {
		t.Errorf("logout with a forged token: %d", status)
	}
	if status, _, _ := c.do("POST", "/logout", url.Values{"csrf": {csrf}}, "Origin: http://evil.example"); status != http.StatusForbidden {
		t.Errorf("logout from another site: %d", status)
	}
	if status, _, _ := c.do("GET", "/", nil); status != http.StatusOK {
		t.Fatalf("still logged in: %d", status)
	}
	if status, _, hd := c.do("POST", "/logout", url.Values{"csrf": {csrf}}); status != http.StatusSeeOther || hd.Get("Location") != "/login" {
		t.Errorf("logout: %d %s", status, hd.Get("Location"))
	}
	if status, _, _ := c.do("GET", "/", nil); status != http.StatusSeeOther {
		t.Errorf("after logout: %d", status)
	}
	// A session idle too long ends.
	c.login("ann@acme.example", testPassword)
	tn.now = tn.now.Add(accounts.SessionIdle + time.Minute)
	if status, _, _ := c.do("GET", "/", nil); status != http.StatusSeeOther {
		t.Errorf("an expired session: %d", status)
	}
	// The audit log has the logins and the logout.
	log, _ := tn.acc.AuditLog(context.Background(), "", 50)
	var got []string
	for _, e := range log {
		got = append(got, e.Action+" "+e.Actor)
	}
	if s := strings.Join(got, ","); !strings.Contains(s, "login ann@acme.example") || !strings.Contains(s, "logout ann@acme.example") {
		t.Errorf("audit log: %s", s)
	}
}

// TestDomainForms: an editor sets up a sender domain through the wizard's
// form and sees the records with their live state; a viewer may not; the
// form is checked; "I published it" reads DNS and records the step; each
// change is in the audit log with who made it.
func TestDomainForms(t *testing.T) {
	tn := newTenants(t)
	ann := tn.client(t)
	_, csrf := ann.login("ann@acme.example", testPassword)
	form := url.Values{"csrf": {csrf}, "name": {"news.acme.example"}, "mode": {"subdomain"}, "ips": {"198.51.100.0/24"},
		"spf_includes": {"_spf.crm.example"}, "rua": {"dmarc@acme.example"}}
	// Checked: a bad address, no report address.
	bad := url.Values{"csrf": {csrf}, "name": {"news.acme.example"}, "mode": {"subdomain"}, "ips": {"not-an-ip"}, "rua": {""}}
	if status, page, _ := ann.do("POST", "/domains/new", bad); status != http.StatusUnprocessableEntity || !strings.Contains(page, "neither an address") || !strings.Contains(page, "at least one address") {
		t.Errorf("a bad form: %d\n%s", status, page)
	}
	// Another organisation's domain.
	taken := url.Values{"csrf": {csrf}, "name": {"globex.example"}, "mode": {"own"}, "rua": {"dmarc@acme.example"}}
	if status, page, _ := ann.do("POST", "/domains/new", taken); status != http.StatusUnprocessableEntity || !strings.Contains(page, "another organisation") {
		t.Errorf("Globex's domain: %d\n%s", status, errorsOf(page))
	}
	status, page0, hd := ann.do("POST", "/domains/new", form)
	if status != http.StatusSeeOther {
		t.Logf("%s", errorsOf(page0))
	}
	if status != http.StatusSeeOther || hd.Get("Location") != "/domain/news.acme.example/records" {
		t.Fatalf("adding news.acme.example: %d %s", status, hd.Get("Location"))
	}
	_, page, _ := ann.do("GET", "/domain/news.acme.example/records", nil)
	for _, want := range []string{"v=spf1", "ip4:198.51.100.0/24", "include:_spf.crm.example", "v=DMARC1; p=none", "live-missing", "Check again", "/domain/news.acme.example/settings"} {
		if !strings.Contains(page, want) {
			t.Errorf("the records page lacks %q", want)
		}
	}
	// Published: the live state follows DNS.
	tn.dns.txt["_dmarc.news.acme.example"] = []string{"v=DMARC1; p=none; rua=mailto:dmarc@acme.example"}
	_, page, _ = ann.do("GET", "/domain/news.acme.example/records?fresh=1", nil)
	if !strings.Contains(page, "live-matches") {
		t.Errorf("the DMARC record published does not match:\n%s", page)
	}
	// The settings form shows the answers again.
	_, page, _ = ann.do("GET", "/domain/news.acme.example/settings", nil)
	if !strings.Contains(page, "198.51.100.0/24") || !strings.Contains(page, `value="subdomain" checked`) {
		t.Errorf("settings form:\n%s", page)
	}
	// "I published it".
	status, _, hd = ann.do("POST", "/domain/news.acme.example/published", url.Values{"csrf": {csrf}})
	if status != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "Recorded") {
		t.Errorf("published: %d %s", status, hd.Get("Location"))
	}
	_, page, _ = ann.do("GET", "/domain/news.acme.example", nil)
	if !strings.Contains(page, "Rollout steps published") || !strings.Contains(page, "ann@acme.example") {
		t.Errorf("the domain page does not show the step")
	}
	// A viewer of another organisation may do none of it.
	gus := tn.client(t)
	_, gcsrf := gus.login("gus@globex.example", testPassword)
	for _, c := range []struct{ method, path string }{
		{"GET", "/domain/news.acme.example/settings"},
		{"POST", "/domain/news.acme.example/settings"},
		{"POST", "/domain/news.acme.example/published"},
		{"POST", "/domain/globex.example/published"}, // a viewer of Globex
	} {
		var f url.Values
		if c.method == "POST" {
			f = url.Values{"csrf": {gcsrf}, "mode": {"own"}, "rua": {"x@globex.example"}}
		}
		if status, _, _ := gus.do(c.method, c.path, f); status != http.StatusNotFound {
			t.Errorf("gus, %s %s: %d, want 404", c.method, c.path, status)
		}
	}
	if status, _, _ := gus.do("POST", "/domains/new", url.Values{"csrf": {gcsrf}, "name": {"x.globex.example"}}); status != http.StatusForbidden {
		t.Errorf("a viewer adding a domain: %d", status)
	}
	// The audit log: the administrator's page has it; a viewer's not.
	root := tn.client(t)
	root.login("root@ops.example", testPassword)
	if _, page, _ := root.do("GET", "/audit", nil); !strings.Contains(page, "rollout.published") || !strings.Contains(page, "news.acme.example") {
		t.Errorf("the audit page lacks the changes")
	}
	if status, _, _ := gus.do("GET", "/audit", nil); status != http.StatusForbidden {
		t.Errorf("a viewer's audit page: %d", status)
	}
	log, _ := tn.acc.AuditLog(context.Background(), "Acme", 50)
	var got []string
	for _, e := range log {
		got = append(got, e.Action+" "+e.Object+" "+e.Actor)
	}
	if s := strings.Join(got, "\n"); !strings.Contains(s, "domain.setup news.acme.example ann@acme.example") || !strings.Contains(s, "rollout.published news.acme.example ann@acme.example") {
		t.Errorf("audit log:\n%s", s)
	}
}

// errorsOf is the error list of a form page.
func errorsOf(page string) string {
	i := strings.Index(page, `role="alert"`)
	if i < 0 {
		return ""
	}
	return page[i:min(len(page), i+600)]
}

// TestKeyForms: an editor generates, rotates, advances and retires their
// domain's keys through the page; the page shows public records only;
// another organisation's user can touch none of them.
func TestKeyForms(t *testing.T) {
	tn := newTenants(t)
	ann := tn.client(t)
	_, csrf := ann.login("ann@acme.example", testPassword)
	post := func(c *client, path string, f url.Values) (int, string) {
		t.Helper()
		status, _, hd := c.do("POST", path, f)
		loc, _ := url.QueryUnescape(hd.Get("Location"))
		return status, loc
	}
	if status, loc := post(ann, "/keys/generate", url.Values{"csrf": {csrf}, "domain": {"acme.example"}, "algorithm": {"ed25519"}}); status != http.StatusSeeOther || !strings.Contains(loc, "Generated e202611._domainkey.acme.example") {
		t.Fatalf("generate: %d %s", status, loc)
	}
	_, page, _ := ann.do("GET", "/keys", nil)
	if !strings.Contains(page, "e202611") || !strings.Contains(page, `action="/keys/rotate"`) || strings.Contains(page, "PRIVATE KEY") {
		i := strings.Index(page, "<main")
		t.Errorf("keys page:\n%s", page[i:])
	}
	// Published in DNS: the key advice lets it advance.
	k, _ := tn.keys.Get("acme.example", "e202611")
	tn.dns.txt["e202611._domainkey.acme.example"] = []string{k.TXT()}
	if status, loc := post(ann, "/keys/advance", url.Values{"csrf": {csrf}, "domain": {"acme.example"}, "selector": {"e202611"}}); status != http.StatusSeeOther || !strings.Contains(loc, "created -> published") {
		t.Errorf("advance: %d %s", status, loc)
	}
	// Not ready: it stays, and says why.
	if _, loc := post(ann, "/keys/advance", url.Values{"csrf": {csrf}, "domain": {"acme.example"}, "selector": {"e202611"}}); !strings.Contains(loc, "stays published") {
		t.Errorf("advance again: %s", loc)
	}
	if _, loc := post(ann, "/keys/rotate", url.Values{"csrf": {csrf}, "domain": {"acme.example"}}); !strings.Contains(loc, "Rotation started") {
		t.Errorf("rotate: %s", loc)
	}
	if _, loc := post(ann, "/keys/retire", url.Values{"csrf": {csrf}, "domain": {"acme.example"}, "selector": {"e202611"}}); !strings.Contains(loc, "published -> retired") {
		t.Errorf("retire: %s", loc)
	}
	// Another organisation's user: no such page; a viewer of their own
	// domain neither.
	gus := tn.client(t)
	_, gcsrf := gus.login("gus@globex.example", testPassword)
	for _, path := range []string{"/keys/generate", "/keys/rotate", "/keys/retire"} {
		for _, d := range []string{"acme.example", "globex.example"} {
			if status, _, _ := gus.do("POST", path, url.Values{"csrf": {gcsrf}, "domain": {d}, "selector": {"e202611"}, "algorithm": {"rsa"}}); status != http.StatusNotFound {
				t.Errorf("gus, %s %s: %d", path, d, status)
			}
		}
	}
	if _, page, _ := gus.do("GET", "/keys", nil); strings.Contains(page, "acme.example") {
		i := strings.Index(page, "acme.example")
		t.Errorf("gus sees Acme's keys: %s", page[max(0, i-300):i+100])
	}
	log, _ := tn.acc.AuditLog(context.Background(), "Acme", 50)
	var got []string
	for _, e := range log {
		got = append(got, e.Action)
	}
	if s := strings.Join(got, ","); !strings.Contains(s, "key.generate") || !strings.Contains(s, "key.advance") || !strings.Contains(s, "key.rotate") || !strings.Contains(s, "key.retire") {
		t.Errorf("audit: %s", s)
	}
}

// TestSlackSettings: an owner sets the organisation's Slack channel; the
// webhook, a credential, is never shown again nor kept in the audit log;
// an address outside the allowed prefixes is refused; editors and viewers
// have no such page; another organisation's channel cannot be changed by
// guessing its id; the administrator manages all.
func TestSlackSettings(t *testing.T) {
	tn := newTenants(t)
	const hook = "https://hooks.slack.com/services/T0ACME/B0ACME/secretpart"
	olga := tn.client(t)
	_, csrf := olga.login("olga@acme.example", testPassword)
	status, page, _ := olga.do("GET", "/slack", nil)
	if status != http.StatusOK || !strings.Contains(page, "<h2>Acme</h2>") || strings.Contains(page, "Globex") {
		t.Fatalf("olga's Slack page: %d\n%s", status, page)
	}
	acme, _ := tn.acc.OrgByName(context.Background(), "Acme")
	globex, _ := tn.acc.OrgByName(context.Background(), "Globex")
	form := func(org int64, action, webhook string, extra ...string) url.Values {
		v := url.Values{"csrf": {csrf}, "org": {fmt.Sprint(org)}, "action": {action}, "webhook_url": {webhook}}
		for _, e := range extra {
			v.Set(e, "1")
		}
		return v
	}
	if status, page, _ := olga.do("POST", "/slack", form(acme.ID, "save", "https://169.254.169.254/latest/", "alerts")); status != http.StatusUnprocessableEntity || !strings.Contains(page, "must start with https://hooks.slack.com/") {
		t.Errorf("an address outside the prefixes: %d", status)
	}
	if status, _, _ := olga.do("POST", "/slack", url.Values{"org": {fmt.Sprint(acme.ID)}, "action": {"save"}, "webhook_url": {hook}}); status != http.StatusForbidden {
		t.Errorf("without the CSRF token: %d", status)
	}
	if status, _, _ := olga.do("POST", "/slack", form(globex.ID, "save", "https://hooks.slack.com/services/evil", "alerts")); status != http.StatusNotFound {
		t.Errorf("Globex's channel by its id: %d", status)
	}
	if status, _, hd := olga.do("POST", "/slack", form(acme.ID, "save", hook, "alerts")); status != http.StatusSeeOther {
		t.Fatalf("saving: %d %v", status, hd)
	}
	d, err := tn.acc.Slack(context.Background(), acme.ID)
	if err != nil || d.WebhookURL != hook || !d.Alerts || d.Weekly || d.UpdatedBy != "olga@acme.example" {
		t.Errorf("saved: %+v %v", d, err)
	}
	// Only the options: the webhook stays.
	olga.do("POST", "/slack", form(acme.ID, "save", "", "alerts", "weekly"))
	if d, _ := tn.acc.Slack(context.Background(), acme.ID); d.WebhookURL != hook || !d.Weekly {
		t.Errorf("after changing the options: %+v", d)
	}
	_, page, _ = olga.do("GET", "/slack", nil)
	if strings.Contains(page, "secretpart") || strings.Contains(page, "T0ACME") || !strings.Contains(page, "hooks.slack.com") {
		t.Errorf("the page shows the webhook:\n%s", page)
	}
	if _, glob := tn.acc.Slack(context.Background(), globex.ID); glob == nil {
		t.Error("Globex got a channel")
	}
	log, _ := tn.acc.AuditLog(context.Background(), "Acme", 50)
	var actions []string
	for _, e := range log {
		if strings.Contains(e.Detail+e.Object, "secretpart") {
			t.Errorf("the audit log keeps the webhook: %+v", e)
		}
		actions = append(actions, e.Action)
	}
	if !slices.Contains(actions, "slack.set") {
		t.Errorf("the audit log: %v", actions)
	}
	// Editors and viewers: no page; the administrator: every organisation.
	ann := tn.client(t)
	_, annCSRF := ann.login("ann@acme.example", testPassword)
	if status, _, _ := ann.do("GET", "/slack", nil); status != http.StatusForbidden {
		t.Errorf("an editor's Slack page: %d", status)
	}
	if status, _, _ := ann.do("POST", "/slack", url.Values{"csrf": {annCSRF}, "org": {fmt.Sprint(acme.ID)}, "action": {"remove"}}); status != http.StatusForbidden {
		t.Errorf("an editor removing the channel: %d", status)
	}
	root := tn.client(t)
	root.login("root@ops.example", testPassword)
	if _, page, _ := root.do("GET", "/slack", nil); !strings.Contains(page, "<h2>Acme</h2>") || !strings.Contains(page, "<h2>Globex</h2>") {
		t.Errorf("the administrator's Slack page:\n%s", page)
	}
	if status, _, _ := olga.do("POST", "/slack", form(acme.ID, "remove", "")); status != http.StatusSeeOther {
		t.Errorf("removing: %d", status)
	}
	if _, err := tn.acc.Slack(context.Background(), acme.ID); err == nil {
		t.Error("the channel is still there")
	}
}

// TestSlackTestMessage: an owner sends a test message to the channel set
// and sees it go, or sees Slack's refusal of a revoked webhook; over the
// API it takes a token of scope manage. Slack is slacktest's server with
// incoming webhooks under /services/.
func TestSlackTestMessage(t *testing.T) {
	var mu sync.Mutex
	var posts []string
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/services/", func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/revoked") {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, "no_service")
				return
			}
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			posts = append(posts, string(b))
			mu.Unlock()
			io.WriteString(w, "ok")
		})
	})
	srv.Start()
	t.Cleanup(srv.Stop)
	prefix := "http://" + srv.ServerAddr + "/services/"
	tn := newTenantsWith(t, func(o *Options) { o.SlackWebhookPrefixes = []string{prefix} })
	acme, _ := tn.acc.OrgByName(context.Background(), "Acme")
	olga := tn.client(t)
	_, csrf := olga.login("olga@acme.example", testPassword)
	form := func(action, webhook string) url.Values {
		return url.Values{"csrf": {csrf}, "org": {fmt.Sprint(acme.ID)}, "action": {action}, "webhook_url": {webhook}, "alerts": {"1"}}
	}
	if status, page, _ := olga.do("POST", "/slack", form("test", "")); status != http.StatusUnprocessableEntity || !strings.Contains(page, "no Slack channel to test") {
		t.Errorf("a test without a channel: %d", status)
	}
	olga.do("POST", "/slack", form("save", prefix+"T0/B0/acme"))
	_, page, _ := olga.do("GET", "/slack", nil)
	if !strings.Contains(page, `value="test"`) {
		t.Error("no test button on the page")
	}
	status, _, hd := olga.do("POST", "/slack", form("test", ""))
	if status != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "A+test+message+went+to+Acme") {
		t.Errorf("the test message: %d %v", status, hd)
	}
	mu.Lock()
	if len(posts) != 1 || !strings.Contains(posts[0], "A test message from dmarcd, sent by olga@acme.example: this channel gets the alerts about its domains for Acme.") {
		t.Errorf("Slack got %q", posts)
	}
	mu.Unlock()
	olga.do("POST", "/slack", form("save", prefix+"revoked"))
	if status, page, _ := olga.do("POST", "/slack", form("test", "")); status != http.StatusUnprocessableEntity || !strings.Contains(page, "Slack did not take the test message") || !strings.Contains(page, "no_service") {
		t.Errorf("a test to a revoked webhook: %d", status)
	}
	log, _ := tn.acc.AuditLog(context.Background(), "Acme", 50)
	tests := 0
	for _, e := range log {
		if e.Action == "slack.test" {
			tests++
		}
	}
	if tests != 2 {
		t.Errorf("%d tests in the audit log, want 2", tests)
	}

	// The API: a write token may not, a manage token may.
	router := openAPI(t, tn)
	write, _ := tn.acc.NewAPIToken(context.Background(), acme.ID, "portal", []string{accounts.ScopeWrite})
	manage, _ := tn.acc.NewAPIToken(context.Background(), acme.ID, "settings", []string{accounts.ScopeManage})
	if status, _ := (&apiClient{t: t, tn: tn, token: write, router: router}).call("POST", "/api/v1/slack/test", nil); status != http.StatusForbidden {
		t.Errorf("a write token's test: %d", status)
	}
	mg := &apiClient{t: t, tn: tn, token: manage, router: router}
	if status, body := mg.call("POST", "/api/v1/slack/test", nil); status != http.StatusUnprocessableEntity || !strings.Contains(mustJSON(body), "no_service") {
		t.Errorf("a manage token's test to the revoked webhook: %d %s", status, mustJSON(body))
	}
	if status, _ := mg.call("PUT", "/api/v1/slack", map[string]any{"webhook_url": prefix + "T0/B0/acme", "alerts": true}); status != http.StatusOK {
		t.Errorf("setting the webhook again: %d", status)
	}
	if status, body := mg.call("POST", "/api/v1/slack/test", nil); status != http.StatusOK || !strings.Contains(mustJSON(body), "A test message went") {
		t.Errorf("a manage token's test: %d %s", status, mustJSON(body))
	}
}
