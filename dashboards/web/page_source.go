package web

// A source's page: one sending IP of a domain, with its records.

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/dmarcd/dmarcd"
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
	name, ok := h.visibleDomain(w, r)
	if !ok {
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
	var p *sourcePage
	if known {
		if p, err = h.sourceModel(ctx, d, ip, win); err != nil {
			h.modelError(w, r, err)
			return
		}
	}
	if p == nil {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No report shows mail from %s as %s.", ip, name))
		return
	}
	p.page = h.page(r, ip+" · "+name, "domains")
	h.render(w, r, http.StatusOK, "source", p)
}

// sourceModel reads what a source's page shows for the window: its
// figures as the domain's sources list them and its records, the view
// model, built without HTTP; nil when no report shows mail from ip as d.
func (h *Handler) sourceModel(ctx context.Context, d dmarcd.SenderDomain, ip string, win window) (*sourcePage, error) {
	name := d.Name
	seen, err := analyze.SourceSeen(ctx, h.opts.Store, name, ip)
	if err != nil {
		return nil, &readError{"the source", err}
	}
	if !seen {
		return nil, nil
	}
	p := &sourcePage{Domain: name, IP: ip, Window: win, WindowQuery: win.query()}
	if p.Records, err = analyze.SourceRecords(ctx, h.opts.Store, name, ip, win.Window, MaxSourceRecords+1); err != nil {
		return nil, &readError{"the records", err}
	}
	if len(p.Records) > MaxSourceRecords {
		p.Records, p.Limited = p.Records[:MaxSourceRecords], true
	}
	for _, rec := range p.Records {
		p.Messages += rec.Count
	}
	sources, err := h.classifier(d).Sources(ctx, h.opts.Store, name, win.Window)
	if err != nil {
		return nil, &readError{"the sources", err}
	}
	for i := range sources {
		if sources[i].IP == ip {
			p.Source = &sources[i]
		}
	}
	return p, nil
}
