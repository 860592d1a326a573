package web

// The DNS records the sender-domain wizard writes for each domain.

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
)

type recordsPage struct {
	page
	Domain string
	Plan   *advisor.Plan
	Error  string
	Zones  []zoneRecords
	// CanEdit shows the settings link; Checks the live state.
	CanEdit bool
	Checks  bool
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
	// Live is what DNS shows at the record's name; nil without a
	// resolver (Options.LookupTXT).
	Live *advisor.LiveRecord
}

func (h *Handler) records(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	name, ok := h.visibleDomain(w, r)
	if !ok {
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
	p := &recordsPage{page: h.page(r, "DNS records · "+name, "domains"), Domain: name,
		CanEdit: viewerOf(r) != nil && viewerOf(r).scope.CanEdit(name), Checks: h.opts.LookupTXT != nil}

	var planErr error
	p.Plan, planErr = h.plan(ctx, d, r.URL.Query().Get("fresh") != "")
	if planErr != nil {
		p.Error = planErr.Error()
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
					pr := plannedRecord{PlannedRecord: rec, ID: fmt.Sprintf("value-%d-%d", i, j)}
					if h.opts.LookupTXT != nil {
						live, err := advisor.CheckPlanned(ctx, h.opts.LookupTXT, rec)
						if err != nil {
							live = advisor.LiveRecord{Status: "unknown", Diff: "DNS did not answer: " + err.Error()}
						}
						pr.Live = &live
					}
					zr.Records = append(zr.Records, pr)
				}
			}
			p.Zones = append(p.Zones, zr)
		}
	}
	h.render(w, r, http.StatusOK, "records", p)
}

// plan is the wizard's plan for d, from the cache unless fresh; a plan
// comes with its error when a limit breaks.
func (h *Handler) plan(ctx context.Context, d dmarcd.SenderDomain, fresh bool) (*advisor.Plan, error) {
	key := "plan|" + strings.ToLower(d.Name)
	if fresh {
		h.cache.forget(key)
	}
	type planned struct {
		plan *advisor.Plan
		err  error
	}
	v, _ := h.cache.get(key, h.now(), func() (any, error) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AdviceTimeout)
		defer cancel()
		plan, err := h.opts.Plan(actx, d)
		return planned{plan, err}, nil
	})
	res := v.(planned)
	return res.plan, res.err
}
