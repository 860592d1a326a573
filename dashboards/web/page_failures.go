package web

// The failure reports: the list, and one report (headers only).

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dmarcd/dmarcd/analyze"
)

type failuresPage struct {
	page
	Domain   string
	Rows     []analyze.Failure
	Total    int64
	Page     int // from 1
	Pages    int
	PrevURL  string
	NextURL  string
	FirstRow int
	LastRow  int
	// Choices are the viewer's domains to pick from, with accounts.
	Choices []string
}

func (h *Handler) failures(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	q := r.URL.Query()
	domain := q.Get("domain")
	if domain != "" && !validDomain(domain) {
		h.inputError(w, r, badRequest(fmt.Sprintf("domain=%.80q is not a domain name", domain)))
		return
	}
	if domain != "" && !canSee(r, domain) {
		h.notFound(w, r)
		return
	}
	if domain == "" && !isAdmin(r) {
		// A user sees the failure reports of their domains, one domain
		// at a time.
		p := &failuresPage{page: h.page(r, "Failure reports", "failures"), Choices: viewerOf(r).scope.Domains()}
		h.render(w, r, http.StatusOK, "failures", p)
		return
	}
	pageNo := 1
	if s := q.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxFailurePage {
			h.inputError(w, r, badRequest(fmt.Sprintf("page=%.20q: want 1 to %d", s, MaxFailurePage)))
			return
		}
		pageNo = n
	}
	p, err := h.failuresModel(ctx, domain, pageNo)
	if err != nil {
		h.modelError(w, r, err)
		return
	}
	title := "Failure reports"
	if domain != "" {
		title += " · " + domain
	}
	p.page = h.page(r, title, "failures")
	h.render(w, r, http.StatusOK, "failures", p)
}

// failuresModel reads one page (from 1) of the failure reports of domain,
// or of every domain: the view model, built without HTTP.
func (h *Handler) failuresModel(ctx context.Context, domain string, pageNo int) (*failuresPage, error) {
	total, err := analyze.FailureCount(ctx, h.opts.Store, domain)
	if err != nil {
		return nil, &readError{"the failure reports", err}
	}
	rows, err := analyze.Failures(ctx, h.opts.Store, domain, (pageNo-1)*FailuresPerPage, FailuresPerPage)
	if err != nil {
		return nil, &readError{"the failure reports", err}
	}
	p := &failuresPage{Domain: domain, Rows: rows, Total: total, Page: pageNo,
		Pages: int((total + FailuresPerPage - 1) / FailuresPerPage)}
	if len(rows) > 0 {
		p.FirstRow = (pageNo-1)*FailuresPerPage + 1
		p.LastRow = p.FirstRow + len(rows) - 1
	}
	link := func(n int) string {
		v := url.Values{}
		if domain != "" {
			v.Set("domain", domain)
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		if len(v) == 0 {
			return "/failures"
		}
		return "/failures?" + v.Encode()
	}
	if pageNo > 1 {
		p.PrevURL = link(min(pageNo-1, max(p.Pages, 1)))
	}
	if pageNo < p.Pages {
		p.NextURL = link(pageNo + 1)
	}
	return p, nil
}

type failurePage struct {
	page
	F *analyze.FailureDetail
}

func (h *Handler) failure(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	raw := r.PathValue("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || len(raw) > 20 {
		h.inputError(w, r, badRequest(fmt.Sprintf("%.30q is not a failure report id", raw)))
		return
	}
	f, err := analyze.FailureByID(ctx, h.opts.Store, id)
	if err != nil {
		h.internal(w, r, "the failure report", err)
		return
	}
	if f == nil || !canSee(r, f.Domain) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("There is no failure report %d.", id))
		return
	}
	h.render(w, r, http.StatusOK, "failure", &failurePage{page: h.page(r, "Failure report · "+f.Domain, "failures"), F: f})
}
