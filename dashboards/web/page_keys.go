package web

// The DKIM keys and their rotation state.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
)

type keysPage struct {
	page
	// With accounts and a key store: the forms, the domains the viewer
	// may manage keys of, and a message of the last form.
	Forms      bool
	Editable   []string
	Note       string
	Configured bool
	Error      string
	Domains    []keyDomain
	Count      int
}

type keyDomain struct {
	Name string
	Keys []keyView
	// Editable: the viewer may manage its keys (with accounts).
	Editable bool
}

// keyView is what the page shows of a key: its public record and state.
// The key store exposes no private key, and none is asked for here.
type keyView struct {
	Domain, Selector, Algorithm string
	Bits                        int
	State                       dmarcd.KeyState
	StateSince, Created         time.Time
	RecordName, Record          string
	RecordID                    string
	Next                        dmarcd.KeyState
	Ready, RotationDue          bool
	NotBefore                   time.Time
	Reason                      string
	Reporters                   []advisor.ReporterSelector
}

func (h *Handler) keys(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	p := &keysPage{page: h.page(r, "DKIM keys", "keys"), Configured: h.opts.KeyAdvice != nil}
	if v := viewerOf(r); v != nil && h.opts.KeyStore != nil {
		p.Note = r.URL.Query().Get("note")
		if len(p.Note) > 500 {
			p.Note = p.Note[:500]
		}
		ds, _, err := h.senderDomains(ctx)
		if err != nil {
			h.internal(w, r, "the domains", err)
			return
		}
		// The sender domains and the domains the viewer's organisations
		// own, those they may change.
		names := v.scope.Domains()
		for _, d := range ds {
			names = append(names, strings.ToLower(d.Name))
		}
		slices.Sort(names)
		for _, d := range slices.Compact(names) {
			if v.scope.CanEdit(d) {
				p.Editable = append(p.Editable, d)
			}
		}
		p.Forms = true
	}
	if p.Configured {
		v, err := h.cache.get("keys", h.now(), func() (any, error) {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AdviceTimeout)
			defer cancel()
			return h.opts.KeyAdvice(actx)
		})
		if err != nil {
			p.Error = err.Error()
			if !isAdmin(r) {
				// It may name another organisation's keys.
				h.log.Error("web: the key advice failed", "err", err)
				p.Error = "the daemon's log has the details"
			}
		}
		advice, _ := v.([]advisor.KeyAdvice)
		p.Domains, p.Count = keyDomains(advice, func(d string) bool { return canSee(r, d) }, func(d string) bool {
			return p.Forms && slices.Contains(p.Editable, d)
		})
	}
	h.render(w, r, http.StatusOK, "keys", p)
}

// keyDomains groups the keys the viewer may see (see) by domain, the keys
// that sign first, each with what the page shows of it; editable says
// which domains' keys the viewer may change. It returns the groups and
// the number of keys: the keys page's view model, without HTTP.
func keyDomains(advice []advisor.KeyAdvice, see, editable func(domain string) bool) ([]keyDomain, int) {
	advice = slices.DeleteFunc(slices.Clone(advice), func(a advisor.KeyAdvice) bool { return !see(a.Key.Domain) })
	slices.SortStableFunc(advice, func(a, b advisor.KeyAdvice) int {
		if c := strings.Compare(a.Key.Domain, b.Key.Domain); c != 0 {
			return c
		}
		return keyRank(a.Key.State) - keyRank(b.Key.State)
	})
	var out []keyDomain
	for i, a := range advice {
		k := a.Key
		kv := keyView{Domain: k.Domain, Selector: k.Selector, Algorithm: k.Algorithm, Bits: k.Bits, State: k.State,
			StateSince: k.StateSince, Created: k.Created, RecordName: k.RecordName(), Record: k.TXT(),
			RecordID: fmt.Sprintf("key-%d", i), Next: a.Next, Ready: a.Ready, RotationDue: a.RotationDue,
			NotBefore: a.NotBefore, Reason: a.Reason, Reporters: a.Reporters}
		if n := len(out); n > 0 && out[n-1].Name == k.Domain {
			out[n-1].Keys = append(out[n-1].Keys, kv)
		} else {
			out = append(out, keyDomain{Name: k.Domain, Keys: []keyView{kv}, Editable: editable(k.Domain)})
		}
	}
	return out, len(advice)
}

// keyRank orders key states for the page: the keys that sign first, then
// the ones on their way up, then the ones on their way out.
func keyRank(s dmarcd.KeyState) int {
	for i, k := range []dmarcd.KeyState{dmarcd.KeyCurrent, dmarcd.KeySigning, dmarcd.KeyPublished, dmarcd.KeyCreated,
		dmarcd.KeyRetired, dmarcd.KeyRevoked, dmarcd.KeyDeleted} {
		if s == k {
			return i
		}
	}
	return len(dmarcd.KeyStates)
}
