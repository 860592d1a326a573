package web

// The SMTP TLS reports (RFC 8460) by policy domain.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/dmarcd/dmarcd/analyze"
)

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
	if domain != "" && !canSee(r, domain) {
		h.notFound(w, r)
		return
	}
	win, err := h.window(r)
	if err != nil {
		h.inputError(w, r, err)
		return
	}
	p, err := h.tlsModel(ctx, domain, win, func(d string) bool { return canSee(r, d) })
	if err != nil {
		h.modelError(w, r, err)
		return
	}
	title := "TLS reports"
	if domain != "" {
		title += " · " + domain
	}
	p.page = h.page(r, title, "tls")
	if p.LatestURL != "" {
		p.LatestURL = r.URL.Path + p.LatestURL
	}
	h.render(w, r, http.StatusOK, "tls", p)
}

// tlsModel reads what the TLS reports page shows for the window, of every
// policy domain see says yes to, or of domain: the view model, built
// without HTTP. LatestURL is the query of the window ending at the last
// report, when this one has none.
func (h *Handler) tlsModel(ctx context.Context, domain string, win window, see func(domain string) bool) (*tlsPage, error) {
	policies, failures, err := analyze.TLS(ctx, h.opts.Store, domain, win.Window)
	if err != nil {
		return nil, &readError{"the TLS reports", err}
	}
	policies = slices.DeleteFunc(policies, func(p analyze.TLSPolicy) bool { return !see(p.Domain) })
	failures = slices.DeleteFunc(failures, func(f analyze.TLSFailure) bool { return !see(f.Domain) })
	p := &tlsPage{Domain: domain, Window: win, WindowQuery: win.query()}
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
			return nil, &readError{"the TLS reports", err}
		}
		if last != "" && last < win.From {
			v := url.Values{}
			if domain != "" {
				v.Set("domain", domain)
			}
			v.Set("days", strconv.Itoa(win.Days))
			v.Set("to", last)
			p.LatestURL = "?" + v.Encode()
		}
	}
	return p, nil
}
