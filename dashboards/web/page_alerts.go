package web

// The alerts: firing and recent history.

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/dmarcd/dmarcd/analyze"
)

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
	if domain != "" && !canSee(r, domain) {
		h.notFound(w, r)
		return
	}
	p, err := h.alertsModel(ctx, domain, func(d string) bool { return canSee(r, d) }, isAdmin(r))
	if err != nil {
		h.modelError(w, r, err)
		return
	}
	p.page = h.page(r, "Alerts", "alerts")
	h.render(w, r, http.StatusOK, "alerts", p)
}

// alertsModel reads the alerts firing and the recent changes, of every
// domain or of domain, that the viewer may see: those of the domains see
// says yes to; dmarcd's own (no domain) are the administrator's (admin).
// The view model, built without HTTP.
func (h *Handler) alertsModel(ctx context.Context, domain string, see func(domain string) bool, admin bool) (*alertsPage, error) {
	firing, changes, err := analyze.Alerts(ctx, h.opts.Store, domain, MaxAlertChangesShown)
	if err != nil {
		return nil, &readError{"the alerts", err}
	}
	visible := func(as []analyze.AlertChange) []analyze.AlertChange {
		if admin {
			return as
		}
		return slices.DeleteFunc(as, func(a analyze.AlertChange) bool { return a.Domain == "" || !see(a.Domain) })
	}
	return &alertsPage{Domain: domain, Firing: visible(firing), Changes: visible(changes)}, nil
}
