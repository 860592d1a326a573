package web

// The front page: every sender domain with its figures, rollout step and the advisor's word, and the alerts firing.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
)

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
	p, err := h.indexModel(ctx, win, func(d string) bool { return canSee(r, d) }, isAdmin(r))
	if err != nil {
		h.modelError(w, r, err)
		return
	}
	p.page = h.page(r, "Domains", "domains")
	h.render(w, r, http.StatusOK, "index", p)
}

// indexModel reads what the front page shows for the window: the view
// model, built without HTTP. see says which domains the viewer may see;
// admin, whether they see everything (dmarcd's own alerts, the failure
// reports of every domain).
func (h *Handler) indexModel(ctx context.Context, win window, see func(domain string) bool, admin bool) (*indexPage, error) {
	all, err := analyze.Domains(ctx, h.opts.Store)
	if err != nil {
		return nil, &readError{"the domains", err}
	}
	inWindow, err := analyze.DomainTotals(ctx, h.opts.Store, win.Window)
	if err != nil {
		return nil, &readError{"the domains", err}
	}
	configured, adviseAll, err := h.senderDomains(ctx)
	if err != nil {
		return nil, &readError{"the configured domains", err}
	}
	p := &indexPage{Window: win, WindowQuery: win.query()}
	if p.Firing, _, err = analyze.Alerts(ctx, h.opts.Store, "", 0); err != nil {
		return nil, &readError{"the alerts", err}
	}
	byName := map[string]*domainRow{}
	all = slices.DeleteFunc(all, func(c analyze.DomainCompliance) bool { return !see(c.Domain) })
	configured = slices.DeleteFunc(configured, func(d dmarcd.SenderDomain) bool { return !see(d.Name) })
	p.Firing = slices.DeleteFunc(p.Firing, func(a analyze.AlertChange) bool { return a.Domain == "" && !admin || a.Domain != "" && !see(a.Domain) })
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
				return nil, &readError{"the published policies", err}
			}
		}
		if pub, ok := lastPublished[row.Name]; ok {
			l := newLadder(pub.Step())
			row.Ladder, row.StepSource = &l, "reports"
		}
	}
	if admin {
		if p.FailureCount, err = analyze.FailureCount(ctx, h.opts.Store, ""); err != nil {
			return nil, &readError{"the failure reports", err}
		}
	} else {
		for _, row := range p.Domains {
			n, err := analyze.FailureCount(ctx, h.opts.Store, row.Name)
			if err != nil {
				return nil, &readError{"the failure reports", err}
			}
			p.FailureCount += n
		}
	}
	return p, nil
}
