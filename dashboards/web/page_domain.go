package web

// A domain's page: its compliance over the window, the advice, senders, alerts.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
)

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
	// With accounts: a message of the last form, whether the viewer may
	// say a step is published, and the steps said so.
	Note       string
	CanPublish bool
	Steps      []accounts.PublishedStep
}

func (h *Handler) domain(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	name, ok := h.visibleDomain(w, r)
	if !ok {
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
	p, err := h.domainModel(ctx, d, win)
	if err != nil {
		h.modelError(w, r, err)
		return
	}
	p.page = h.page(r, name, "domains")
	if p.LatestURL != "" {
		p.LatestURL = r.URL.Path + p.LatestURL
	}
	if v := viewerOf(r); v != nil {
		p.Note = r.URL.Query().Get("note")
		if len(p.Note) > 500 {
			p.Note = p.Note[:500]
		}
		p.CanPublish = v.scope.CanEdit(name) && h.opts.LookupTXT != nil
		if p.Steps, err = h.opts.Accounts.PublishedSteps(ctx, name, 10); err != nil {
			h.internal(w, r, "the rollout steps", err)
			return
		}
	}
	h.render(w, r, http.StatusOK, "domain", p)
}

// domainModel reads what a domain's page shows for the window: the view
// model, built without HTTP (the viewer's parts, which need the request,
// are the handler's). LatestURL is the query of the window ending at the
// last report, for the page's path.
func (h *Handler) domainModel(ctx context.Context, d dmarcd.SenderDomain, win window) (*domainPage, error) {
	name := d.Name
	p := &domainPage{Domain: name, Window: win, WindowQuery: win.query(), HasPlan: h.opts.Plan != nil}
	lastTLS, err := analyze.TLSLastDay(ctx, h.opts.Store, name)
	if err != nil {
		return nil, &readError{"the TLS reports", err}
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
		return nil, &readError{"the domain's compliance", err}
	} else if len(c) == 1 {
		p.Compliance = c[0]
	}
	days, err := analyze.Daily(ctx, h.opts.Store, name, win.Window)
	if err != nil {
		return nil, &readError{"the daily compliance", err}
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
		p.LatestURL = "?" + v.Encode()
	}

	sources, err := h.classifier(d).Sources(ctx, h.opts.Store, name, win.Window)
	if err != nil {
		return nil, &readError{"the sources", err}
	}
	if len(sources) > MaxSourcesShown {
		p.MoreSources = len(sources) - MaxSourcesShown
		sources = sources[:MaxSourcesShown]
	}
	p.Sources = sources
	if p.Reporters, err = analyze.Reporters(ctx, h.opts.Store, name, win.Window); err != nil {
		return nil, &readError{"the reporters", err}
	}
	if len(p.Reporters) > MaxReportersShown {
		p.MoreReporters = len(p.Reporters) - MaxReportersShown
		p.Reporters = p.Reporters[:MaxReportersShown]
	}
	pub, err := analyze.Published(ctx, h.opts.Store, name, win.Window)
	if err != nil {
		return nil, &readError{"the published policy", err}
	}
	if n := len(pub); n > 0 {
		p.Published = &pub[n-1]
		p.PublishedStep = pub[n-1].Step().String()
	}
	if p.Failures, err = analyze.FailureCount(ctx, h.opts.Store, name); err != nil {
		return nil, &readError{"the failure reports", err}
	}
	if p.Firing, p.AlertChanges, err = analyze.Alerts(ctx, h.opts.Store, name, MaxDomainAlertChanges); err != nil {
		return nil, &readError{"the alerts", err}
	}
	configured, adviseAll, err := h.senderDomains(ctx)
	if err != nil {
		return nil, &readError{"the configured domains", err}
	}
	if _, ok := findDomain(configured, name); ok || adviseAll {
		if p.Advice, err = h.recommend(ctx, d); err != nil {
			p.AdviceError = err.Error()
		}
	}
	return p, nil
}

// visibleDomain reads the domain of a page's path ({name}); when it is not
// a domain name, or one the viewer may not see, it answers the request (400
// or 404) and ok is false.
func (h *Handler) visibleDomain(w http.ResponseWriter, r *http.Request) (name string, ok bool) {
	name, err := pathDomain(r)
	if err != nil {
		h.inputError(w, r, err)
		return "", false
	}
	if !canSee(r, name) {
		h.notFound(w, r)
		return "", false
	}
	return name, true
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
