package web

// The alerts: firing and recent history.

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/dmarcd/dmarcd/analyze"
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
	p := &alertsPage{page: h.page(r, "Alerts", "alerts"), Domain: domain}
	var err error
	if p.Firing, p.Changes, err = analyze.Alerts(ctx, h.opts.Store, domain, MaxAlertChangesShown); err != nil {
		h.internal(w, r, "the alerts", err)
		return
	}
	p.Firing, p.Changes = visibleAlerts(r, p.Firing), visibleAlerts(r, p.Changes)
	h.render(w, r, http.StatusOK, "alerts", p)
}

// visibleAlerts keeps the alerts the viewer may see: those of their
// domains; dmarcd's own (no domain) are the administrator's.
func visibleAlerts(r *http.Request, as []analyze.AlertChange) []analyze.AlertChange {
	if isAdmin(r) {
		return as
	}
	return slices.DeleteFunc(as, func(a analyze.AlertChange) bool { return a.Domain == "" || !canSee(r, a.Domain) })
}
