package web

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
)

// window is the span of days a page shows: ?days= (one of WindowChoices)
// up to ?to= (a day, today by default).
type window struct {
	analyze.Window
	Days int
	// End is ?to= as given, "" for today.
	End     string
	Choices []windowLink
}

type windowLink struct {
	Days    int
	URL     string
	Current bool
}

// badRequest is an input error: its text is shown with status 400.
type badRequest string

func (e badRequest) Error() string { return string(e) }

func (h *Handler) window(r *http.Request) (window, error) {
	q := r.URL.Query()
	w := window{Days: DefaultWindowDays}
	if s := q.Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || !slices.Contains(WindowChoices, n) {
			return w, badRequest(fmt.Sprintf("days=%.20q: choose one of %v", s, WindowChoices))
		}
		w.Days = n
	}
	today := h.now().Truncate(24 * time.Hour)
	end := today
	if s := q.Get("to"); s != "" {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil || t.Year() < 1970 || t.After(today.AddDate(0, 0, 1)) {
			return w, badRequest(fmt.Sprintf("to=%.20q: want a day (YYYY-MM-DD) between 1970-01-01 and today", s))
		}
		end, w.End = t, s
	}
	w.Window = analyze.Window{From: end.AddDate(0, 0, 1-w.Days).Format(time.DateOnly), To: end.Format(time.DateOnly)}
	for _, n := range WindowChoices {
		v := url.Values{}
		v.Set("days", strconv.Itoa(n))
		if w.End != "" {
			v.Set("to", w.End)
		}
		w.Choices = append(w.Choices, windowLink{Days: n, URL: r.URL.Path + "?" + v.Encode(), Current: n == w.Days})
	}
	return w, nil
}

// query returns the query string of w for links to other pages.
func (w window) query() string {
	v := url.Values{}
	if w.Days != DefaultWindowDays {
		v.Set("days", strconv.Itoa(w.Days))
	}
	if w.End != "" {
		v.Set("to", w.End)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// pathDomain reads and checks the {name} of the path.
func pathDomain(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !validDomain(name) {
		return "", badRequest(fmt.Sprintf("%.80q is not a domain name", name))
	}
	return name, nil
}

// inputError writes the answer to a bad input.
func (h *Handler) inputError(w http.ResponseWriter, r *http.Request, err error) {
	h.fail(w, r, http.StatusBadRequest, err.Error())
}

func (h *Handler) context(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), RequestTimeout)
}

// senderDomains returns the domains the advisor covers; all says that
// every domain with reports gets advice too (there is no configuration).
func (h *Handler) senderDomains(ctx context.Context) (domains []dmarcd.SenderDomain, all bool, err error) {
	if h.opts.Domains == nil {
		return nil, true, nil
	}
	ds, err := h.opts.Domains(ctx)
	if err != nil {
		return nil, false, err
	}
	return ds, false, nil
}

func findDomain(ds []dmarcd.SenderDomain, name string) (dmarcd.SenderDomain, bool) {
	for _, d := range ds {
		if strings.EqualFold(strings.TrimSuffix(d.Name, "."), name) {
			return d, true
		}
	}
	return dmarcd.SenderDomain{Name: name}, false
}

// advice is a recommendation as a page shows it.
type advice struct {
	*advisor.Recommendation
	ID string // of the element holding the record, for its copy button
}

// recommend returns the recommendation of d through the cache; "" and nil
// when there is no recommender.
func (h *Handler) recommend(ctx context.Context, d dmarcd.SenderDomain) (*advice, error) {
	if h.opts.Recommender == nil {
		return nil, nil
	}
	v, err := h.cache.get("recommendation|"+strings.ToLower(d.Name), h.now(), func() (any, error) {
		// The answer is kept for other requests: it must not end with
		// the request that asked first.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AdviceTimeout)
		defer cancel()
		return h.opts.Recommender.Recommend(actx, d)
	})
	if err != nil {
		return nil, err
	}
	rec, _ := v.(*advisor.Recommendation)
	if rec == nil {
		return nil, nil
	}
	return &advice{Recommendation: rec, ID: "record-" + elementID(d.Name)}, nil
}

// elementID makes an HTML id from a name: letters and digits kept, the
// rest '-'.
func elementID(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}

func (h *Handler) classifier(d dmarcd.SenderDomain) *analyze.Classifier {
	if h.opts.Classifier != nil {
		if c := h.opts.Classifier(d); c != nil {
			return c
		}
	}
	return &analyze.Classifier{}
}

// ---- /

type indexPage struct {
	page
	Window        window
	Totals        analyze.Day // the mail of the window
	Domains       []*domainRow
	Advice        []*domainRow // the rows whose recommendation is shown in full
	MoreAdvice    int
	DomainsNote   string
	FailureCount  int64
	WindowQuery   string
	ConfigMissing []string // configured domains without reports
	Firing        []analyze.AlertChange
}

type domainRow struct {
	Name        string
	Figures     analyze.Day // the mail of the window
	FirstDay    string
	LastDay     string
	Reports     int64
	Reporters   int64
	Ladder      *ladder
	StepSource  string // where the step comes from: "DNS" or "reports"
	Advice      *advice
	AdviceError string
	// Card says the recommendation is shown in full on the front page:
	// for the configured domains and the domains with mail in the window.
	Card       bool
	configured bool
}

// MaxDomainsShown bounds the domains on the front page; MaxAdviceCards the
// recommendations it shows in full (the others on the domains' pages).
const (
	MaxDomainsShown = 500
	MaxAdviceCards  = 20
)

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	win, err := h.window(r)
	if err != nil {
		h.inputError(w, r, err)
		return
	}
	all, err := analyze.Domains(ctx, h.opts.Store)
	if err != nil {
		h.internal(w, r, "the domains", err)
		return
	}
	inWindow, err := analyze.DomainTotals(ctx, h.opts.Store, win.Window)
	if err != nil {
		h.internal(w, r, "the domains", err)
		return
	}
	configured, adviseAll, err := h.senderDomains(ctx)
	if err != nil {
		h.internal(w, r, "the configured domains", err)
		return
	}
	p := &indexPage{page: h.page(r, "Domains", "domains"), Window: win, WindowQuery: win.query()}
	if p.Firing, _, err = analyze.Alerts(ctx, h.opts.Store, "", 0); err != nil {
		h.internal(w, r, "the alerts", err)
		return
	}
	byName := map[string]*domainRow{}
	for _, c := range all {
		row := &domainRow{Name: c.Domain, Figures: inWindow[c.Domain], FirstDay: c.FirstDay, LastDay: c.LastDay, Reports: c.Reports, Reporters: c.Reporters}
		p.Domains = append(p.Domains, row)
		byName[strings.ToLower(c.Domain)] = row
		f := row.Figures
		p.Totals.Messages += f.Messages
		p.Totals.DMARCPass += f.DMARCPass
		p.Totals.DKIMAligned += f.DKIMAligned
		p.Totals.SPFAligned += f.SPFAligned
		p.Totals.Quarantined += f.Quarantined
		p.Totals.Rejected += f.Rejected
	}
	for _, d := range configured {
		if _, ok := byName[strings.ToLower(d.Name)]; !ok {
			row := &domainRow{Name: d.Name}
			p.Domains = append(p.Domains, row)
			byName[strings.ToLower(d.Name)] = row
			p.ConfigMissing = append(p.ConfigMissing, d.Name)
		}
	}
	// The most mail in the window first, then the most mail ever (the
	// order of analyze.Domains), then the configured domains without any.
	slices.SortStableFunc(p.Domains, func(a, b *domainRow) int { return int(min(max(b.Figures.Messages-a.Figures.Messages, -1), 1)) })
	if len(p.Domains) > MaxDomainsShown {
		p.DomainsNote = fmt.Sprintf("Showing the %d domains with the most mail of %d.", MaxDomainsShown, len(p.Domains))
		p.Domains = p.Domains[:MaxDomainsShown]
	}

	// Recommendations, a few at a time: each asks DNS. Without
	// configuration, for the domains with mail in the window; the others
	// have theirs on their pages.
	var advised []*domainRow
	targets := map[*domainRow]dmarcd.SenderDomain{}
	for _, row := range p.Domains {
		d, ok := findDomain(configured, row.Name)
		row.configured = ok
		if ok || adviseAll && row.Figures.Messages > 0 {
			d.Name = row.Name
			targets[row] = d
			advised = append(advised, row)
		}
	}
	if h.opts.Recommender != nil {
		sem := make(chan struct{}, adviceConcurrency)
		var wg sync.WaitGroup
		for _, row := range advised {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				a, err := h.recommend(ctx, targets[row])
				if err != nil {
					row.AdviceError = err.Error()
					return
				}
				row.Advice = a
			}()
		}
		wg.Wait()
	}
	// The policy of each domain's last reports, read once for all rows
	// that need it.
	var lastPublished map[string]analyze.PublishedDay
	for _, row := range p.Domains {
		if row.Advice != nil {
			l := newLadder(row.Advice.Current)
			if row.Advice.LiveRecord == "" {
				l = noRecordLadder()
			}
			row.Ladder, row.StepSource = &l, "DNS"
			if (row.configured || row.Figures.Messages > 0) && len(p.Advice) < MaxAdviceCards {
				row.Card = true
				p.Advice = append(p.Advice, row)
			} else {
				p.MoreAdvice++
			}
			continue
		}
		if row.LastDay == "" {
			continue
		}
		// Without a recommendation, the policy the last reports saw.
		if lastPublished == nil {
			if lastPublished, err = analyze.LastPublished(ctx, h.opts.Store); err != nil {
				h.internal(w, r, "the published policies", err)
				return
			}
		}
		if pub, ok := lastPublished[row.Name]; ok {
			l := newLadder(pub.Step())
			row.Ladder, row.StepSource = &l, "reports"
		}
	}
	if p.FailureCount, err = analyze.FailureCount(ctx, h.opts.Store, ""); err != nil {
		h.internal(w, r, "the failure reports", err)
		return
	}
	h.render(w, r, http.StatusOK, "index", p)
}

// ---- /domain/{name}

type domainPage struct {
	page
	Domain        string
	Window        window
	WindowQuery   string
	Compliance    analyze.DomainCompliance
	Total         analyze.Day
	None          int64
	Volume, Rates *chart
	Dispositions  shareBar
	Sources       []analyze.Source
	MoreSources   int
	Reporters     []analyze.Reporter
	MoreReporters int
	Advice        *advice
	AdviceError   string
	Published     *analyze.PublishedDay
	PublishedStep string
	Failures      int64
	HasPlan       bool
	TLSURL        string // the domain's SMTP TLS reports, when it has some
	LatestURL     string // the window ending at the last report, when this one has none
	Firing        []analyze.AlertChange
	AlertChanges  []analyze.AlertChange
}

func (h *Handler) domain(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	name, err := pathDomain(r)
	if err != nil {
		h.inputError(w, r, err)
		return
	}
	win, err := h.window(r)
	if err != nil {
		h.inputError(w, r, err)
		return
	}
	d, ok := h.requireDomain(ctx, w, r, name)
	if !ok {
		return
	}
	p := &domainPage{page: h.page(r, name, "domains"), Domain: name, Window: win, WindowQuery: win.query(), HasPlan: h.opts.Plan != nil}
	lastTLS, err := analyze.TLSLastDay(ctx, h.opts.Store, name)
	if err != nil {
		h.internal(w, r, "the TLS reports", err)
		return
	}
	if lastTLS != "" {
		v := url.Values{}
		v.Set("domain", name)
		if win.Days != DefaultWindowDays {
			v.Set("days", strconv.Itoa(win.Days))
		}
		if win.End != "" {
			v.Set("to", win.End)
		}
		p.TLSURL = "/tls?" + v.Encode()
	}
	if c, err := analyze.Domains(ctx, h.opts.Store, name); err != nil {
		h.internal(w, r, "the domain's compliance", err)
		return
	} else if len(c) == 1 {
		p.Compliance = c[0]
	}
	days, err := analyze.Daily(ctx, h.opts.Store, name, win.Window)
	if err != nil {
		h.internal(w, r, "the daily compliance", err)
		return
	}
	p.Total = analyze.Total(days)
	p.None = p.Total.Messages - p.Total.Quarantined - p.Total.Rejected
	all := windowDays(win.Window)
	p.Volume, p.Rates = volumeChart(all, days), rateChart(all, days)
	p.Dispositions = newShareBar(
		sharePart{Label: "delivered (none)", Class: "seg-none", Count: p.None},
		sharePart{Label: "quarantine (junk folder)", Class: "seg-quarantine", Count: p.Total.Quarantined},
		sharePart{Label: "reject (refused)", Class: "seg-reject", Count: p.Total.Rejected},
	)
	if p.Total.Messages == 0 && p.Compliance.LastDay != "" && p.Compliance.LastDay < win.From {
		v := url.Values{}
		v.Set("days", strconv.Itoa(win.Days))
		v.Set("to", p.Compliance.LastDay)
		p.LatestURL = r.URL.Path + "?" + v.Encode()
	}

	sources, err := h.classifier(d).Sources(ctx, h.opts.Store, name, win.Window)
	if err != nil {
		h.internal(w, r, "the sources", err)
		return
	}
	if len(sources) > MaxSourcesShown {
		p.MoreSources = len(sources) - MaxSourcesShown
		sources = sources[:MaxSourcesShown]
	}
	p.Sources = sources
	if p.Reporters, err = analyze.Reporters(ctx, h.opts.Store, name, win.Window); err != nil {
		h.internal(w, r, "the reporters", err)
		return
	}
	if len(p.Reporters) > MaxReportersShown {
		p.MoreReporters = len(p.Reporters) - MaxReportersShown
		p.Reporters = p.Reporters[:MaxReportersShown]
	}
	pub, err := analyze.Published(ctx, h.opts.Store, name, win.Window)
	if err != nil {
		h.internal(w, r, "the published policy", err)
		return
	}
	if n := len(pub); n > 0 {
		p.Published = &pub[n-1]
		p.PublishedStep = pub[n-1].Step().String()
	}
	if p.Failures, err = analyze.FailureCount(ctx, h.opts.Store, name); err != nil {
		h.internal(w, r, "the failure reports", err)
		return
	}
	if p.Firing, p.AlertChanges, err = analyze.Alerts(ctx, h.opts.Store, name, MaxDomainAlertChanges); err != nil {
		h.internal(w, r, "the alerts", err)
		return
	}
	configured, adviseAll, err := h.senderDomains(ctx)
	if err != nil {
		h.internal(w, r, "the configured domains", err)
		return
	}
	if _, ok := findDomain(configured, name); ok || adviseAll {
		if p.Advice, err = h.recommend(ctx, d); err != nil {
			p.AdviceError = err.Error()
		}
	}
	h.render(w, r, http.StatusOK, "domain", p)
}

// requireDomain is lookupDomain for a page about one domain: when the
// domain is unknown, or the lookup fails, it answers the request (404 or
// 500) and ok is false.
func (h *Handler) requireDomain(ctx context.Context, w http.ResponseWriter, r *http.Request, name string) (d dmarcd.SenderDomain, ok bool) {
	d, known, err := h.lookupDomain(ctx, name)
	if err != nil {
		h.internal(w, r, "the domain", err)
		return d, false
	}
	if !known {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No reports about %s, and it is not a configured [[domain]].", name))
		return d, false
	}
	return d, true
}

// lookupDomain finds name among the configured domains and the domains
// with reports.
func (h *Handler) lookupDomain(ctx context.Context, name string) (dmarcd.SenderDomain, bool, error) {
	configured, _, err := h.senderDomains(ctx)
	if err != nil {
		return dmarcd.SenderDomain{}, false, err
	}
	d, ok := findDomain(configured, name)
	d.Name = name
	if ok {
		return d, true, nil
	}
	found, err := analyze.HasReports(ctx, h.opts.Store, name)
	return d, found, err
}

// ---- /domain/{name}/source/{ip}

type sourcePage struct {
	page
	Domain      string
	IP          string
	Window      window
	WindowQuery string
	Source      *analyze.Source
	Records     []analyze.SourceRecord
	Limited     bool
	Messages    int64
}

func (h *Handler) source(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	name, err := pathDomain(r)
	if err != nil {
		h.inputError(w, r, err)
		return
	}
	raw := r.PathValue("ip")
	addr, err := netip.ParseAddr(raw)
	if err != nil || addr.Zone() != "" {
		h.inputError(w, r, badRequest(fmt.Sprintf("%.60q is not an IP address", raw)))
		return
	}
	ip := addr.String()
	win, err := h.window(r)
	if err != nil {
		h.inputError(w, r, err)
		return
	}
	d, known, err := h.lookupDomain(ctx, name)
	if err != nil {
		h.internal(w, r, "the domain", err)
		return
	}
	if known {
		known, err = analyze.SourceSeen(ctx, h.opts.Store, name, ip)
		if err != nil {
			h.internal(w, r, "the source", err)
			return
		}
	}
	if !known {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No report shows mail from %s as %s.", ip, name))
		return
	}
	p := &sourcePage{page: h.page(r, ip+" · "+name, "domains"), Domain: name, IP: ip, Window: win, WindowQuery: win.query()}
	if p.Records, err = analyze.SourceRecords(ctx, h.opts.Store, name, ip, win.Window, MaxSourceRecords+1); err != nil {
		h.internal(w, r, "the records", err)
		return
	}
	if len(p.Records) > MaxSourceRecords {
		p.Records, p.Limited = p.Records[:MaxSourceRecords], true
	}
	for _, rec := range p.Records {
		p.Messages += rec.Count
	}
	sources, err := h.classifier(d).Sources(ctx, h.opts.Store, name, win.Window)
	if err != nil {
		h.internal(w, r, "the sources", err)
		return
	}
	for i := range sources {
		if sources[i].IP == ip {
			p.Source = &sources[i]
		}
	}
	h.render(w, r, http.StatusOK, "source", p)
}

// ---- /domain/{name}/records

type recordsPage struct {
	page
	Domain string
	Plan   *advisor.Plan
	Error  string
	Zones  []zoneRecords
}

type zoneRecords struct {
	Zone    string
	BIND    string
	BINDID  string
	Records []plannedRecord
}

type plannedRecord struct {
	advisor.PlannedRecord
	ID string
}

func (h *Handler) records(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	name, err := pathDomain(r)
	if err != nil {
		h.inputError(w, r, err)
		return
	}
	if h.opts.Plan == nil {
		h.fail(w, r, http.StatusNotFound, "The records wizard is not configured.")
		return
	}
	d, ok := h.requireDomain(ctx, w, r, name)
	if !ok {
		return
	}
	p := &recordsPage{page: h.page(r, "DNS records · "+name, "domains"), Domain: name}
	type planned struct {
		plan *advisor.Plan
		err  error
	}
	v, _ := h.cache.get("plan|"+strings.ToLower(name), h.now(), func() (any, error) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AdviceTimeout)
		defer cancel()
		plan, err := h.opts.Plan(actx, d)
		// A plan comes with its error when a limit breaks: keep both.
		return planned{plan, err}, nil
	})
	res := v.(planned)
	p.Plan = res.plan
	if res.err != nil {
		p.Error = res.err.Error()
	}
	if p.Plan != nil {
		for i, z := range p.Plan.Zones() {
			var b strings.Builder
			if err := p.Plan.WriteBIND(&b, z); err != nil {
				h.internal(w, r, "the records", err)
				return
			}
			zr := zoneRecords{Zone: z, BIND: b.String(), BINDID: fmt.Sprintf("bind-%d", i)}
			for j, rec := range p.Plan.Records {
				if rec.Zone == z {
					zr.Records = append(zr.Records, plannedRecord{PlannedRecord: rec, ID: fmt.Sprintf("value-%d-%d", i, j)})
				}
			}
			p.Zones = append(p.Zones, zr)
		}
	}
	h.render(w, r, http.StatusOK, "records", p)
}

// ---- /keys

type keysPage struct {
	page
	Configured bool
	Error      string
	Domains    []keyDomain
	Count      int
}

type keyDomain struct {
	Name string
	Keys []keyView
}

// keyView is what the page shows of a key: its public record and state.
// The key store exposes no private key, and none is asked for here.
type keyView struct {
	Domain, Selector, Algorithm string
	Bits                        int
	State                       dmarcd.KeyState
	StateSince, Created         time.Time
	RecordName, Record          string
	RecordID                    string
	Next                        dmarcd.KeyState
	Ready, RotationDue          bool
	NotBefore                   time.Time
	Reason                      string
	Reporters                   []advisor.ReporterSelector
}

func (h *Handler) keys(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	p := &keysPage{page: h.page(r, "DKIM keys", "keys"), Configured: h.opts.KeyAdvice != nil}
	if p.Configured {
		v, err := h.cache.get("keys", h.now(), func() (any, error) {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AdviceTimeout)
			defer cancel()
			return h.opts.KeyAdvice(actx)
		})
		if err != nil {
			p.Error = err.Error()
		}
		advice, _ := v.([]advisor.KeyAdvice)
		// By domain, then the keys that sign first.
		advice = slices.Clone(advice)
		slices.SortStableFunc(advice, func(a, b advisor.KeyAdvice) int {
			if c := strings.Compare(a.Key.Domain, b.Key.Domain); c != 0 {
				return c
			}
			return keyRank(a.Key.State) - keyRank(b.Key.State)
		})
		for i, a := range advice {
			k := a.Key
			kv := keyView{Domain: k.Domain, Selector: k.Selector, Algorithm: k.Algorithm, Bits: k.Bits, State: k.State,
				StateSince: k.StateSince, Created: k.Created, RecordName: k.RecordName(), Record: k.TXT(),
				RecordID: fmt.Sprintf("key-%d", i), Next: a.Next, Ready: a.Ready, RotationDue: a.RotationDue,
				NotBefore: a.NotBefore, Reason: a.Reason, Reporters: a.Reporters}
			if n := len(p.Domains); n > 0 && p.Domains[n-1].Name == k.Domain {
				p.Domains[n-1].Keys = append(p.Domains[n-1].Keys, kv)
			} else {
				p.Domains = append(p.Domains, keyDomain{Name: k.Domain, Keys: []keyView{kv}})
			}
			p.Count++
		}
	}
	h.render(w, r, http.StatusOK, "keys", p)
}

// keyRank orders key states for the page: the keys that sign first, then
// the ones on their way up, then the ones on their way out.
func keyRank(s dmarcd.KeyState) int {
	for i, k := range []dmarcd.KeyState{dmarcd.KeyCurrent, dmarcd.KeySigning, dmarcd.KeyPublished, dmarcd.KeyCreated,
		dmarcd.KeyRetired, dmarcd.KeyRevoked, dmarcd.KeyDeleted} {
		if s == k {
			return i
		}
	}
	return len(dmarcd.KeyStates)
}

// ---- /failures and /failures/{id}

type failuresPage struct {
	page
	Domain   string
	Rows     []analyze.Failure
	Total    int64
	Page     int // from 1
	Pages    int
	PrevURL  string
	NextURL  string
	FirstRow int
	LastRow  int
}

func (h *Handler) failures(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	q := r.URL.Query()
	domain := q.Get("domain")
	if domain != "" && !validDomain(domain) {
		h.inputError(w, r, badRequest(fmt.Sprintf("domain=%.80q is not a domain name", domain)))
		return
	}
	pageNo := 1
	if s := q.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxFailurePage {
			h.inputError(w, r, badRequest(fmt.Sprintf("page=%.20q: want 1 to %d", s, MaxFailurePage)))
			return
		}
		pageNo = n
	}
	total, err := analyze.FailureCount(ctx, h.opts.Store, domain)
	if err != nil {
		h.internal(w, r, "the failure reports", err)
		return
	}
	rows, err := analyze.Failures(ctx, h.opts.Store, domain, (pageNo-1)*FailuresPerPage, FailuresPerPage)
	if err != nil {
		h.internal(w, r, "the failure reports", err)
		return
	}
	title := "Failure reports"
	if domain != "" {
		title += " · " + domain
	}
	p := &failuresPage{page: h.page(r, title, "failures"), Domain: domain, Rows: rows, Total: total, Page: pageNo,
		Pages: int((total + FailuresPerPage - 1) / FailuresPerPage)}
	if len(rows) > 0 {
		p.FirstRow = (pageNo-1)*FailuresPerPage + 1
		p.LastRow = p.FirstRow + len(rows) - 1
	}
	link := func(n int) string {
		v := url.Values{}
		if domain != "" {
			v.Set("domain", domain)
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		if len(v) == 0 {
			return "/failures"
		}
		return "/failures?" + v.Encode()
	}
	if pageNo > 1 {
		p.PrevURL = link(min(pageNo-1, max(p.Pages, 1)))
	}
	if pageNo < p.Pages {
		p.NextURL = link(pageNo + 1)
	}
	h.render(w, r, http.StatusOK, "failures", p)
}

type failurePage struct {
	page
	F *analyze.FailureDetail
}

func (h *Handler) failure(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	raw := r.PathValue("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || len(raw) > 20 {
		h.inputError(w, r, badRequest(fmt.Sprintf("%.30q is not a failure report id", raw)))
		return
	}
	f, err := analyze.FailureByID(ctx, h.opts.Store, id)
	if err != nil {
		h.internal(w, r, "the failure report", err)
		return
	}
	if f == nil {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("There is no failure report %d.", id))
		return
	}
	h.render(w, r, http.StatusOK, "failure", &failurePage{page: h.page(r, "Failure report · "+f.Domain, "failures"), F: f})
}

// ---- errors

type errorPage struct {
	page
	Status  int
	Message string
}

// ---- /tls

// MaxTLSFailureRows bounds the failure rows of the TLS page.
const MaxTLSFailureRows = 50

type tlsPage struct {
	page
	Domain      string
	Window      window
	WindowQuery string // ?days=&to= of the window, for links
	WindowAmp   string // the same to append to a query: &days=&to=
	Policies    []tlsPolicyRow
	Failures    []analyze.TLSFailure
	Limited     bool
	LatestURL   string // the window ending at the last report, when this one has none
}

type tlsPolicyRow struct {
	analyze.TLSPolicy
	Sessions int64
}

func (h *Handler) tls(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	domain := r.URL.Query().Get("domain")
	if domain != "" && !validDomain(domain) {
		h.inputError(w, r, badRequest(fmt.Sprintf("domain=%.80q is not a domain name", domain)))
		return
	}
	win, err := h.window(r)
	if err != nil {
		h.inputError(w, r, err)
		return
	}
	policies, failures, err := analyze.TLS(ctx, h.opts.Store, domain, win.Window)
	if err != nil {
		h.internal(w, r, "the TLS reports", err)
		return
	}
	title := "TLS reports"
	if domain != "" {
		title += " · " + domain
	}
	p := &tlsPage{page: h.page(r, title, "tls"), Domain: domain, Window: win, WindowQuery: win.query()}
	if q := win.query(); q != "" {
		p.WindowAmp = "&" + q[1:]
	}
	for _, pol := range policies {
		p.Policies = append(p.Policies, tlsPolicyRow{pol, pol.Successful + pol.Failed})
	}
	if len(failures) > MaxTLSFailureRows {
		failures, p.Limited = failures[:MaxTLSFailureRows], true
	}
	p.Failures = failures
	if len(policies) == 0 {
		last, err := analyze.TLSLastDay(ctx, h.opts.Store, domain)
		if err != nil {
			h.internal(w, r, "the TLS reports", err)
			return
		}
		if last != "" && last < win.From {
			v := url.Values{}
			if domain != "" {
				v.Set("domain", domain)
			}
			v.Set("days", strconv.Itoa(win.Days))
			v.Set("to", last)
			p.LatestURL = r.URL.Path + "?" + v.Encode()
		}
	}
	h.render(w, r, http.StatusOK, "tls", p)
}

// ---- /alerts

// MaxDomainAlertChanges bounds the alert history of a domain page;
// MaxAlertChangesShown the one of the alerts page.
const (
	MaxDomainAlertChanges = 10
	MaxAlertChangesShown  = 200
)

type alertsPage struct {
	page
	Domain  string
	Firing  []analyze.AlertChange
	Changes []analyze.AlertChange
}

// alerts shows the alerts firing now and the recent changes, of every
// domain or of ?domain=.
func (h *Handler) alerts(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	domain := r.URL.Query().Get("domain")
	if domain != "" && !validDomain(domain) {
		h.inputError(w, r, badRequest(fmt.Sprintf("domain=%.40q is not a domain name", domain)))
		return
	}
	p := &alertsPage{page: h.page(r, "Alerts", "alerts"), Domain: domain}
	var err error
	if p.Firing, p.Changes, err = analyze.Alerts(ctx, h.opts.Store, domain, MaxAlertChangesShown); err != nil {
		h.internal(w, r, "the alerts", err)
		return
	}
	h.render(w, r, http.StatusOK, "alerts", p)
}
