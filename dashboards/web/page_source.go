package web

// A source's page: one sending IP of a domain, with its records.

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/dmarcd/dmarcd/analyze"
)

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
	if !canSee(r, name) {
		h.notFound(w, r)
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
