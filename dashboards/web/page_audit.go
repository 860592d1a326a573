package web

// The audit log: every change made through the page or the command line,
// for the owners of an organisation (theirs) and the administrator (all).

import (
	"net/http"
	"slices"

	"github.com/dmarcd/dmarcd/dashboards/accounts"
)

// MaxAuditEntriesShown bounds the audit log page.
const MaxAuditEntriesShown = 500

type auditPage struct {
	page
	Entries []accounts.AuditEntry
}

func (h *Handler) auditLog(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if v == nil {
		h.notFound(w, r)
		return
	}
	ctx := r.Context()
	p := &auditPage{page: h.page(r, "Audit log", "audit")}
	if v.scope.Admin {
		entries, err := h.opts.Accounts.AuditLog(ctx, "", MaxAuditEntriesShown)
		if err != nil {
			h.internal(w, r, "the audit log", err)
			return
		}
		p.Entries = entries
	} else {
		orgs, err := h.opts.Accounts.Orgs(ctx)
		if err != nil {
			h.internal(w, r, "the audit log", err)
			return
		}
		owned := 0
		for _, o := range orgs {
			if v.sess.User.Roles[o.ID] != accounts.RoleOwner {
				continue
			}
			owned++
			entries, err := h.opts.Accounts.AuditLog(ctx, o.Name, MaxAuditEntriesShown)
			if err != nil {
				h.internal(w, r, "the audit log", err)
				return
			}
			p.Entries = append(p.Entries, entries...)
		}
		if owned == 0 {
			h.fail(w, r, http.StatusForbidden, "The audit log is for the owners of an organisation.")
			return
		}
		slices.SortStableFunc(p.Entries, func(a, b accounts.AuditEntry) int { return b.At.Compare(a.At) })
		if len(p.Entries) > MaxAuditEntriesShown {
			p.Entries = p.Entries[:MaxAuditEntriesShown]
		}
	}
	h.render(w, r, http.StatusOK, "audit", p)
}
