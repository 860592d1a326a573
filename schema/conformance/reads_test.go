package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
)

// Limits of what the reads are asked, so that a pass over ClickHouse runs
// in about half a minute (a read of its views takes 50 to 150 ms): the
// domains asked about one source or signing selector at a time, the
// sources and signing selectors asked about, and the page of failure
// reports. Each takes the most mail, and the least.
const (
	domainsSampled   = 6
	sourcesSampled   = 2
	selectorsSampled = 6
	failurePage      = 5
)

// unknownIP and unknownDomain are in no report of the corpus: reads of
// them answer "none" alike.
const (
	unknownIP     = "192.0.2.255"
	unknownDomain = "no-reports.example"
)

// corpusArgs are the arguments the reads are asked with, found in a store
// by the reads themselves, so that a difference in them shows as a
// difference in the answers.
type corpusArgs struct {
	domains []string
	// sampled are domainsSampled of the domains.
	sampled []string
	// sources are, per sampled domain, sourcesSampled of its sources
	// (all time).
	sources map[string][]string
	// selectors are, per domain, the selectors of its mail's DKIM
	// signatures.
	selectors map[string][]string
	// tlsDomains are the policy domains of the TLS reports.
	tlsDomains []string
	// signing are selectorsSampled of the DKIM signing domains and
	// selectors of the signatures, as "domain selector".
	signing []string
}

// readAnswers collects the answers of one read: key is what it was asked.
type readAnswers map[string]any

// reads are the read functions of package analyze, each run over a store
// that holds the corpus for every argument the corpus gives it, by the
// name of the function (Type.Method for a method). Every answer must be
// the same on every store. TestEveryReadCompared fails when an exported
// function of analyze that takes a Querier is missing here, so that no
// query of the read layer escapes the comparison.
var reads = map[string]func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers){
	"Domains": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		out["all"] = must(analyze.Domains(ctx(), s))(t)
		out["two"] = must(analyze.Domains(ctx(), s, a.domains[0], a.domains[len(a.domains)-1]))(t)
	},
	"DomainTotals": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, w := range analysisWindows {
			out[window(w)] = must(analyze.DomainTotals(ctx(), s, w))(t)
		}
	},
	"HasReports": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, d := range append(slices.Clone(a.domains), unknownDomain) {
			out[d] = must(analyze.HasReports(ctx(), s, d))(t)
		}
	},
	"Daily":     perDomainWindow(analyze.Daily),
	"Published": perDomainWindow(analyze.Published),
	"LastPublished": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		out["all"] = must(analyze.LastPublished(ctx(), s))(t)
	},
	"Reporters": perDomainWindow(analyze.Reporters),
	"FailingSources": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		askDomainWindows(t, s, a.sampled, analyze.FailingSources, out)
	},
	// A plain classifier's sources, and the inventory of one that knows
	// the selectors the domain signs with, as the configuration lists
	// them (its Sources are compared too).
	"Classifier.Sources": perDomainWindow((&analyze.Classifier{}).Sources),
	"Classifier.Inventory": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, d := range a.domains {
			c := &analyze.Classifier{Selectors: a.selectors[d]}
			askDomainWindows(t, s, []string{d}, c.Inventory, out)
		}
	},
	"SourceSeen": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, d := range a.sampled {
			for _, ip := range append(slices.Clone(a.sources[d]), unknownIP) {
				out[d+" "+ip] = must(analyze.SourceSeen(ctx(), s, d, ip))(t)
			}
		}
	},
	"SourceRecords": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, d := range a.sampled {
			for _, ip := range a.sources[d] {
				for _, w := range analysisWindows {
					out[d+" "+ip+" "+window(w)] = must(analyze.SourceRecords(ctx(), s, d, ip, w, 1000))(t)
				}
				out[d+" "+ip+" first 2"] = must(analyze.SourceRecords(ctx(), s, d, ip, analysisWindows[0], 2))(t)
			}
		}
	},
	"FailureCount": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, d := range append(failureDomains(t, s), "", unknownDomain) {
			out[d] = must(analyze.FailureCount(ctx(), s, d))(t)
		}
	},
	"Failures": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, d := range append(failureDomains(t, s), "") {
			for offset := 0; offset < 3*failurePage; offset += failurePage {
				// The ids differ between the stores (a sequence in
				// SQLite, a hash in ClickHouse): FailureByID shows
				// that each finds its own.
				out[fmt.Sprintf("%s from %d", d, offset)] = withoutIDs(must(analyze.Failures(ctx(), s, d, offset, failurePage))(t))
			}
		}
	},
	"FailureByID": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		all := must(analyze.Failures(ctx(), s, "", 0, math.MaxInt32))(t)
		for i, f := range all {
			id, err := strconv.ParseUint(f.ID, 10, 64)
			if err != nil {
				t.Fatalf("failure report id %q: %v", f.ID, err)
			}
			d := must(analyze.FailureByID(ctx(), s, id))(t)
			if d == nil || d.ID != f.ID {
				t.Fatalf("FailureByID(%s) gave %+v", f.ID, d)
			}
			d.ID = ""
			out[fmt.Sprintf("the report listed %d", i)] = d
		}
		for _, id := range []uint64{0, math.MaxInt64 + 1, math.MaxUint64} {
			out[fmt.Sprint(id)] = must(analyze.FailureByID(ctx(), s, id))(t)
		}
	},
	"TLS": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, d := range append(slices.Clone(a.tlsDomains), "") {
			for _, w := range append(slices.Clone(analysisWindows), analyze.Window{From: "2024-01-01", To: "2024-12-31"}) {
				policies, failures, err := analyze.TLS(ctx(), s, d, w)
				if err != nil {
					t.Fatalf("TLS %s %s: %v", d, window(w), err)
				}
				out[d+" "+window(w)] = []any{policies, failures}
			}
		}
	},
	"TLSLastDay": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, d := range append(slices.Clone(a.tlsDomains), "", unknownDomain) {
			out[d] = must(analyze.TLSLastDay(ctx(), s, d))(t)
		}
	},
	"SelectorReports": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, ds := range a.signing {
			d, _, _ := strings.Cut(ds, " ")
			for _, from := range []string{"1970-01-01", "2022-01-01"} {
				out[d+" "+from] = must(analyze.SelectorReports(ctx(), s, d, from))(t)
			}
			// In upper case: signing domains compare in any case.
			out[strings.ToUpper(d)] = must(analyze.SelectorReports(ctx(), s, strings.ToUpper(d), "1970-01-01"))(t)
		}
	},
	"SelectorTraffic": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, ds := range a.signing {
			d, sel, _ := strings.Cut(ds, " ")
			for _, after := range []string{"1970-01-01", "2022-01-01"} {
				n, last, err := analyze.SelectorTraffic(ctx(), s, d, sel, after)
				if err != nil {
					t.Fatalf("SelectorTraffic %s %s: %v", ds, after, err)
				}
				out[ds+" after "+after] = fmt.Sprintf("%d messages, the last on %q", n, last)
			}
		}
	},
	"QuarantinedSince": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, since := range []time.Time{receivedAt.Add(-time.Hour), receivedAt, receivedAt.Add(time.Second)} {
			out[since.Format(time.RFC3339)] = must(analyze.QuarantinedSince(ctx(), s, since))(t)
		}
	},
	"Alerts": func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		for _, d := range append(slices.Clone(alertDomains), "") {
			for _, limit := range []int{0, 2, 100} {
				firing, recent, err := analyze.Alerts(ctx(), s, d, limit)
				if err != nil {
					t.Fatalf("Alerts %s %d: %v", d, limit, err)
				}
				out[fmt.Sprintf("%s limit %d", d, limit)] = []any{firing, recent}
			}
		}
	},
}

func ctx() context.Context { return context.Background() }

// must returns v, or fails the test with err.
func must[T any](v T, err error) func(t testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func window(w analyze.Window) string { return w.From + ".." + w.To }

// perDomainWindow makes a read of a function of a domain and a window that
// asks about every domain over every analysis window.
func perDomainWindow[T any](read func(ctx context.Context, q analyze.Querier, domain string, w analyze.Window) (T, error)) func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
	return func(t testing.TB, s dmarcd.Store, a corpusArgs, out readAnswers) {
		t.Helper()
		askDomainWindows(t, s, a.domains, read, out)
	}
}

// askDomainWindows asks read about each of domains over every analysis
// window.
func askDomainWindows[T any](t testing.TB, s dmarcd.Store, domains []string, read func(ctx context.Context, q analyze.Querier, domain string, w analyze.Window) (T, error), out readAnswers) {
	t.Helper()
	for _, d := range domains {
		for _, w := range analysisWindows {
			v, err := read(ctx(), s, d, w)
			if err != nil {
				t.Fatalf("%s %s: %v", d, window(w), err)
			}
			out[d+" "+window(w)] = v
		}
	}
}

// failureDomains are the domains of the failure reports.
func failureDomains(t testing.TB, s dmarcd.Store) []string {
	t.Helper()
	rows, err := queryRows(s, `SELECT DISTINCT domain FROM failures ORDER BY domain`)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// withoutIDs blanks the ids of failure reports, which differ between the
// stores.
func withoutIDs(fs []analyze.Failure) []analyze.Failure {
	for i := range fs {
		fs[i].ID = ""
	}
	return fs
}

// findArgs finds the arguments of the reads in s.
func findArgs(t testing.TB, s dmarcd.Store) corpusArgs {
	t.Helper()
	a := corpusArgs{sources: map[string][]string{}, selectors: map[string][]string{}}
	for _, d := range domains(t, s) {
		a.domains = append(a.domains, d.Domain)
	}
	if len(a.domains) == 0 {
		t.Fatalf("%T: no domain has reports", s)
	}
	// Domains gives the most mail first.
	a.sampled = sample(a.domains, domainsSampled)
	for _, d := range a.sampled {
		rows, err := queryRows(s, fmt.Sprintf(`SELECT source_ip FROM daily_sources WHERE domain = '%s'
GROUP BY source_ip ORDER BY SUM(messages) DESC, source_ip`, strings.ReplaceAll(d, "'", "''")))
		if err != nil {
			t.Fatal(err)
		}
		a.sources[d] = sample(rows, sourcesSampled)
	}
	selectors, err := queryRows(s, `SELECT domain, selector FROM dkim_signatures GROUP BY domain, selector ORDER BY domain, selector`)
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range selectors {
		d, sel, _ := strings.Cut(ds, " | ")
		a.selectors[d] = append(a.selectors[d], sel)
	}
	if a.tlsDomains, err = queryRows(s, `SELECT DISTINCT policy_domain FROM tls_policies ORDER BY policy_domain`); err != nil {
		t.Fatal(err)
	}
	signing, err := queryRows(s, `SELECT dkim_domain, selector FROM dkim_signatures GROUP BY dkim_domain, selector
ORDER BY SUM(count) DESC, dkim_domain, selector`)
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range sample(signing, selectorsSampled) {
		a.signing = append(a.signing, strings.Replace(ds, " | ", " ", 1))
	}
	return a
}

// sample returns the first n-1 of list and its last.
func sample(list []string, n int) []string {
	if len(list) <= n {
		return list
	}
	return append(slices.Clone(list[:n-1]), list[len(list)-1])
}

// alertDomains have an alert history in the stores of
// TestCorpusSameAnswers (addAlertHistory).
var alertDomains = []string{"example.com", "example.net"}

// addAlertHistory adds the same alert history to s: alerts that fire,
// resolve and fire again, of several domains, some in the same second.
func addAlertHistory(t testing.TB, s dmarcd.Store) {
	t.Helper()
	as, ok := s.(dmarcd.AlertStore)
	if !ok {
		t.Fatalf("%T is no dmarcd.AlertStore", s)
	}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, e := range []struct {
		domain  string
		kind    dmarcd.AlertKind
		subject string
		state   string
		at      time.Duration
	}{
		{"example.com", dmarcd.AlertPassRate, "dmarc", dmarcd.AlertFiring, 0},
		{"example.com", dmarcd.AlertFailingSource, "192.0.2.7", dmarcd.AlertFiring, 0},
		{"example.net", dmarcd.AlertFailingSource, "192.0.2.7", dmarcd.AlertFiring, 0},
		{"example.net", dmarcd.AlertReporterSilent, "google.com", dmarcd.AlertFiring, time.Minute},
		{"example.com", dmarcd.AlertPassRate, "dmarc", dmarcd.AlertResolved, time.Hour},
		{"example.com", dmarcd.AlertPassRate, "dmarc", dmarcd.AlertFiring, 2 * time.Hour},
		{"example.net", dmarcd.AlertReporterSilent, "google.com", dmarcd.AlertResolved, 3 * time.Hour},
	} {
		if err := as.AddAlertEvent(ctx(), dmarcd.AlertEvent{At: t0.Add(e.at), Key: dmarcd.Alert{Domain: e.domain, Kind: e.kind, Subject: e.subject}.Key(),
			Domain: e.domain, Kind: e.kind, Subject: e.subject, State: e.state,
			Title: fmt.Sprintf("%s %s %s", e.kind, e.subject, e.state), Text: "what happened to " + e.subject}); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll asks every read of reads over s, by read and then what it was
// asked.
func readAll(t testing.TB, s dmarcd.Store) map[string]readAnswers {
	t.Helper()
	a := findArgs(t, s)
	out := map[string]readAnswers{}
	for name, read := range reads {
		out[name] = readAnswers{}
		read(t, s, a, out[name])
	}
	return out
}

// compareReads reports every answer of got that differs from want's.
func compareReads(t *testing.T, label string, want, got map[string]readAnswers) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(reads)) {
		w, g := want[name], got[name]
		keys := slices.Sorted(maps.Keys(w))
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		shown := 0
		for _, k := range keys {
			wv, wok := w[k]
			gv, gok := g[k]
			if wok == gok && reflect.DeepEqual(wv, gv) {
				continue
			}
			if shown++; shown > 5 {
				t.Errorf("%s: analyze.%s: more answers differ", label, name)
				break
			}
			t.Errorf("%s: analyze.%s %s\n got: %s\nwant: %s", label, name, k, rendered(gv, gok), rendered(wv, wok))
		}
	}
}

// rendered shows an answer: JSON shows the fields' names and follows
// pointers, which %+v does not.
func rendered(v any, ok bool) string {
	if !ok {
		return "(not asked)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// emptyReads returns the reads whose every answer is empty (nothing, zero,
// false): the corpus does not exercise them.
func emptyReads(got map[string]readAnswers) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(reads)) {
		empty := true
		for _, v := range got[name] {
			if !isEmpty(reflect.ValueOf(v)) {
				empty = false
				break
			}
		}
		if empty {
			out = append(out, name)
		}
	}
	return out
}

func isEmpty(v reflect.Value) bool {
	if !v.IsValid() || v.IsZero() {
		return true
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return true
		}
		if v.Kind() == reflect.Slice {
			for i := range v.Len() {
				if !isEmpty(v.Index(i)) {
					return false
				}
			}
			return true
		}
	case reflect.Interface, reflect.Pointer:
		return isEmpty(v.Elem())
	}
	return false
}

// TestEveryReadCompared fails when an exported function of package
// analyze that reads a store (takes a Querier) is missing from reads, or
// reads names a function analyze does not have: every query of the read
// layer runs on both stores in TestCorpusSameAnswers.
func TestEveryReadCompared(t *testing.T) {
	const dir = "../../analyze"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var found []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || !fn.Name.IsExported() || !takesQuerier(fn.Type) {
				continue
			}
			name := fn.Name.Name
			if fn.Recv != nil {
				recv := receiverType(fn.Recv.List[0].Type)
				if !ast.IsExported(recv) {
					continue
				}
				name = recv + "." + name
			}
			found = append(found, name)
		}
	}
	if len(found) < 10 {
		t.Fatalf("found only %d reads in analyze: %v", len(found), found)
	}
	for _, name := range found {
		if _, ok := reads[name]; !ok {
			t.Errorf("analyze.%s reads a store but is not in reads: add it, so that its answers are compared on both stores", name)
		}
	}
	for name := range reads {
		if !slices.Contains(found, name) {
			t.Errorf("reads names analyze.%s, which analyze does not export or which takes no Querier", name)
		}
	}
}

// takesQuerier says whether a function has a parameter of type Querier.
func takesQuerier(ft *ast.FuncType) bool {
	for _, p := range ft.Params.List {
		if id, ok := p.Type.(*ast.Ident); ok && id.Name == "Querier" {
			return true
		}
	}
	return false
}

// receiverType is the name of a receiver's type, T of T or *T.
func receiverType(e ast.Expr) string {
	if star, ok := e.(*ast.StarExpr); ok {
		e = star.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
