package web

// The alerts: firing and recent history.

import (
	"fmt"
	"net/http"

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
	p := &alertsPage{page: h.page(r, "Alerts", "alerts"), Domain: domain}
	var err error
	if p.Firing, p.Changes, err = analyze.Alerts(ctx, h.opts.Store, domain, MaxAlertChangesShown); err != nil {
		h.internal(w, r, "the alerts", err)
		return
	}
	h.render(w, r, http.StatusOK, "alerts", p)
}
