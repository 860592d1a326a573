package web

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

// The fixtures of the tests: stores filled with the repository's samples,
// the shared corpus or synthetic data, a key store with real keys, and
// fakes of DNS for the advisor and the wizard.

// samplesNow is the day after the samples' last report (2026-11-07).
var samplesNow = time.Date(2026, 11, 8, 9, 30, 0, 0, time.UTC)

func openStore(t testing.TB) *sqlite.Store { return testserver.SQLite(t) }

// ingestSamples stores the repository's samples.
func ingestSamples(t testing.TB, s dmarcd.Store) {
	t.Helper()
	inputs, err := ingest.Expand([]string{"../../samples"})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := ingest.New(s, ingest.Options{}).Files(context.Background(), inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Quarantined != 0 || sum.Aggregate == 0 || sum.Failure == 0 {
		t.Fatalf("samples: %+v", sum)
	}
}

// ingestCorpus stores the shared corpus (its reports; not its tables and
// schemas), keeping the bodies of failure reports so that the tests can
// show the page never shows them.
func ingestCorpus(t testing.TB, s dmarcd.Store) {
	t.Helper()
	reports, err := ingest.Expand(corpus.Reports(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.New(s, ingest.Options{KeepFailureBody: true}).Files(context.Background(), reports, nil); err != nil {
		t.Fatal(err)
	}
}

// fakeDNS answers from maps; a name it does not know does not exist.
type fakeDNS struct {
	txt map[string][]string
	ptr map[string]string
}

func (f *fakeDNS) TXT(_ context.Context, name string) ([]string, error) {
	if v, ok := f.txt[strings.ToLower(strings.TrimSuffix(name, "."))]; ok {
		return v, nil
	}
	return nil, advisor.ErrNXDomain
}

func (f *fakeDNS) A(context.Context, string) ([]netip.Addr, error) { return nil, advisor.ErrNXDomain }
func (f *fakeDNS) AAAA(context.Context, string) ([]netip.Addr, error) {
	return nil, advisor.ErrNXDomain
}
func (f *fakeDNS) MX(context.Context, string) ([]advisor.MX, error) { return nil, advisor.ErrNXDomain }
func (f *fakeDNS) PTR(_ context.Context, a netip.Addr) ([]string, error) {
	if name, ok := f.ptr[a.String()]; ok {
		return []string{name}, nil
	}
	return nil, advisor.ErrNXDomain
}

// Addrs confirms every PTR name of the fake: the name's address is the one
// it names.
func (f *fakeDNS) Addrs(_ context.Context, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for ip, name := range f.ptr {
		if strings.TrimSuffix(name, ".") == strings.TrimSuffix(host, ".") {
			out = append(out, netip.MustParseAddr(ip))
		}
	}
	return out, nil
}

func (f *fakeDNS) lookupDMARC(_ context.Context, domain string) (string, error) {
	for _, v := range f.txt["_dmarc."+strings.ToLower(domain)] {
		if strings.HasPrefix(v, "v=DMARC1") {
			return v, nil
		}
	}
	return "", nil
}

func (f *fakeDNS) lookupTXT(ctx context.Context, name string) ([]string, error) {
	v, err := f.TXT(ctx, name)
	if errors.Is(err, advisor.ErrNXDomain) {
		return nil, nil
	}
	return v, err
}

// testKeys makes a key store with an RSA key that is current and an
// Ed25519 key that was just created, for example.com, and returns it with
// the paths of the private key files.
func testKeys(t testing.TB, dns *fakeDNS) (*keystore.Store, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	ks, err := keystore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := samplesNow.AddDate(0, -2, 0)
	ks.SetClock(func() time.Time { return clock })
	cur, err := ks.Generate(keystore.GenerateOptions{Domain: "example.com", Selector: "s2026a", Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []dmarcd.KeyState{dmarcd.KeyPublished, dmarcd.KeySigning, dmarcd.KeyCurrent} {
		clock = clock.Add(72 * time.Hour)
		if _, err := ks.Transition("example.com", "s2026a", to); err != nil {
			t.Fatal(err)
		}
	}
	clock = samplesNow.AddDate(0, 0, -1)
	next, err := ks.Generate(keystore.GenerateOptions{Domain: "example.com", Selector: "e2026b", Algorithm: dmarcd.AlgorithmEd25519})
	if err != nil {
		t.Fatal(err)
	}
	dns.txt[cur.RecordName()] = []string{cur.TXT()}
	_ = next // not published yet: the advice says to publish it
	pems, err := filepath.Glob(filepath.Join(dir, "*", "*.pem"))
	if err != nil || len(pems) != 2 {
		t.Fatalf("private key files: %v %v", pems, err)
	}
	return ks, pems
}

// samplesDNS is the live DNS the samples' domains have in the tests:
// example.com at p=none with reports, news.example.com without a DMARC
// record.
func samplesDNS() *fakeDNS {
	return &fakeDNS{
		txt: map[string][]string{
			"example.com":        {"v=spf1 ip4:192.0.2.0/24 -all"},
			"_dmarc.example.com": {"v=DMARC1; p=none; rua=mailto:dmarc@example.com"},
		},
		ptr: map[string]string{},
	}
}

// fullOptions are the options the daemon gives, with the advisor, the key
// advisor and the wizard over fake DNS.
func fullOptions(st analyze.Querier, dns *fakeDNS, ks *keystore.Store, now time.Time) Options {
	classifier := func(d dmarcd.SenderDomain) *analyze.Classifier {
		nets, _ := analyze.ParseNetworks(d.IPs)
		return &analyze.Classifier{Networks: nets, Selectors: d.Selectors, Resolver: dns, NotOurs: d.NotOurs}
	}
	clock := func() time.Time { return now }
	o := Options{
		Store: st,
		Recommender: &advisor.Advisor{Store: st, Lookup: dns.lookupDMARC, Gates: advisor.DefaultGates, Classifier: classifier, Now: clock,
			DefaultRUA: []string{"dmarc@example.com"}},
		Classifier: classifier,
		Plan: func(ctx context.Context, d dmarcd.SenderDomain) (*advisor.Plan, error) {
			if d.Mode == "" {
				d.Mode = dmarcd.ModeOwn
			}
			if len(d.RUA) == 0 {
				d.RUA = []string{"dmarc@example.com"}
			}
			var dkim []advisor.DKIMPublicKey
			if ks != nil {
				keys, err := ks.List()
				if err != nil {
					return nil, err
				}
				for _, k := range keys {
					if strings.EqualFold(k.Domain, d.Name) {
						dkim = append(dkim, advisor.DKIMPublicKey{Selector: k.Selector, Value: k.TXT()})
					}
				}
			}
			return advisor.PlanDomain(ctx, dns, advisor.DomainSetup{Domain: d,
				Ours: advisor.SPFAdditions{IPs: []string{"192.0.2.25"}}, DKIM: dkim})
		},
		Now:      clock,
		CacheTTL: -1,
	}
	if ks != nil {
		o.KeyAdvice = func(ctx context.Context) ([]advisor.KeyAdvice, error) {
			keys, err := ks.List()
			if err != nil {
				return nil, err
			}
			a := &advisor.KeyAdvisor{Policy: dmarcd.DefaultRotationPolicy, Lookup: dns.lookupTXT, Store: st, Now: clock}
			return a.Advise(ctx, keys)
		}
	}
	return o
}

func newHandler(t testing.TB, o Options) *Handler {
	t.Helper()
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// response is what a request gave.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// get asks h for path from localhost, with the headers given as "Name:
// value".
func get(t testing.TB, h http.Handler, path string, headers ...string) response {
	t.Helper()
	return do(t, h, http.MethodGet, path, headers...)
}

func do(t testing.TB, h http.Handler, method, path string, headers ...string) response {
	t.Helper()
	r := httptest.NewRequest(method, "http://localhost:8478"+path, nil)
	for _, hd := range headers {
		name, value, _ := strings.Cut(hd, ":")
		if strings.EqualFold(name, "Host") {
			r.Host = strings.TrimSpace(value)
			continue
		}
		r.Header.Set(name, strings.TrimSpace(value))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return response{Status: w.Code, Header: w.Result().Header, Body: string(b)}
}

// mustGet asks for path and fails the test unless it answers 200.
func mustGet(t testing.TB, h http.Handler, path string) string {
	t.Helper()
	res := get(t, h, path)
	if res.Status != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, res.Status, res.Body)
	}
	return res.Body
}

// text is page with its character references decoded, to look for values
// in it: html/template escapes more than html.EscapeString (a "+" too).
func text(page string) string { return html.UnescapeString(page) }

var tagRE = regexp.MustCompile(`<[^>]*>`)

// byID returns the text of the element with id in page, tags removed.
func byID(t testing.TB, page, id string) string {
	t.Helper()
	i := strings.Index(page, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no element with id %q", id)
	}
	rest := page[i:]
	rest = rest[strings.IndexByte(rest, '>')+1:]
	// The element's text up to its first closing tag of a block.
	end := len(rest)
	for _, closer := range []string{"</div>", "</td>", "</span>", "</dd>", "</p>", "</h1>"} {
		if j := strings.Index(rest, closer); j >= 0 && j < end {
			end = j
		}
	}
	return strings.TrimSpace(text(tagRE.ReplaceAllString(rest[:end], "")))
}

// scalar runs a query of one number.
func scalar(t testing.TB, q analyze.Querier, query string, args ...any) int64 {
	t.Helper()
	rows, err := q.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n analyze.Count
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	return int64(n)
}

// strs runs a query of one text column.
func strs(t testing.TB, q analyze.Querier, query string, args ...any) []string {
	t.Helper()
	rows, err := q.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		out = append(out, s)
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// readFile reads a file of the test.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
