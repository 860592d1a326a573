package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
)

// window is the span of days a page shows: ?days= (one of WindowChoices)
// up to ?to= (a day, today by default).
type window struct {
	analyze.Window
	Days int
	// End is ?to= as given, "" for today.
	End     string
	Choices []windowLink
}

type windowLink struct {
	Days    int
	URL     string
	Current bool
}

// badRequest is an input error: its text is shown with status 400.
type badRequest string

func (e badRequest) Error() string { return string(e) }

func (h *Handler) window(r *http.Request) (window, error) {
	q := r.URL.Query()
	w := window{Days: DefaultWindowDays}
	if s := q.Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || !slices.Contains(WindowChoices, n) {
			return w, badRequest(fmt.Sprintf("days=%.20q: choose one of %v", s, WindowChoices))
		}
		w.Days = n
	}
	today := h.now().Truncate(24 * time.Hour)
	end := today
	if s := q.Get("to"); s != "" {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil || t.Year() < 1970 || t.After(today.AddDate(0, 0, 1)) {
			return w, badRequest(fmt.Sprintf("to=%.20q: want a day (YYYY-MM-DD) between 1970-01-01 and today", s))
		}
		end, w.End = t, s
	}
	w.Window = analyze.Window{From: end.AddDate(0, 0, 1-w.Days).Format(time.DateOnly), To: end.Format(time.DateOnly)}
	for _, n := range WindowChoices {
		v := url.Values{}
		v.Set("days", strconv.Itoa(n))
		if w.End != "" {
			v.Set("to", w.End)
		}
		w.Choices = append(w.Choices, windowLink{Days: n, URL: r.URL.Path + "?" + v.Encode(), Current: n == w.Days})
	}
	return w, nil
}

// query returns the query string of w for links to other pages.
func (w window) query() string {
	v := url.Values{}
	if w.Days != DefaultWindowDays {
		v.Set("days", strconv.Itoa(w.Days))
	}
	if w.End != "" {
		v.Set("to", w.End)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// pathDomain reads and checks the {name} of the path.
func pathDomain(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !validDomain(name) {
		return "", badRequest(fmt.Sprintf("%.80q is not a domain name", name))
	}
	return name, nil
}

// inputError writes the answer to a bad input.
func (h *Handler) inputError(w http.ResponseWriter, r *http.Request, err error) {
	h.fail(w, r, http.StatusBadRequest, err.Error())
}

func (h *Handler) context(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), RequestTimeout)
}

// senderDomains returns the domains the advisor covers; all says that
// every domain with reports gets advice too (there is no configuration).
func (h *Handler) senderDomains(ctx context.Context) (domains []dmarcd.SenderDomain, all bool, err error) {
	all = h.opts.Domains == nil
	if !all {
		if domains, err = h.opts.Domains(ctx); err != nil {
			return nil, false, err
		}
	}
	if h.opts.Accounts != nil {
		// The domains set up through the page, after the configured
		// ones, which win.
		page, err := h.opts.Accounts.SenderDomains(ctx)
		if err != nil {
			return nil, false, err
		}
		for _, d := range page {
			if _, ok := findDomain(domains, d.Name); !ok {
				domains = append(domains, d)
			}
		}
	}
	return domains, all, nil
}

func findDomain(ds []dmarcd.SenderDomain, name string) (dmarcd.SenderDomain, bool) {
	for _, d := range ds {
		if strings.EqualFold(strings.TrimSuffix(d.Name, "."), name) {
			return d, true
		}
	}
	return dmarcd.SenderDomain{Name: name}, false
}

// advice is a recommendation as a page shows it.
type advice struct {
	*advisor.Recommendation
	ID string // of the element holding the record, for its copy button
}

// recommend returns the recommendation of d through the cache; "" and nil
// when there is no recommender.
func (h *Handler) recommend(ctx context.Context, d dmarcd.SenderDomain) (*advice, error) {
	if h.opts.Recommender == nil {
		return nil, nil
	}
	v, err := h.cache.get("recommendation|"+strings.ToLower(d.Name), h.now(), func() (any, error) {
		// The answer is kept for other requests: it must not end with
		// the request that asked first.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AdviceTimeout)
		defer cancel()
		return h.opts.Recommender.Recommend(actx, d)
	})
	if err != nil {
		return nil, err
	}
	rec, _ := v.(*advisor.Recommendation)
	if rec == nil {
		return nil, nil
	}
	return &advice{Recommendation: rec, ID: "record-" + elementID(d.Name)}, nil
}

// elementID makes an HTML id from a name: letters and digits kept, the
// rest '-'.
func elementID(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}

func (h *Handler) classifier(d dmarcd.SenderDomain) *analyze.Classifier {
	if h.opts.Classifier != nil {
		if c := h.opts.Classifier(d); c != nil {
			return c
		}
	}
	return &analyze.Classifier{}
}

type errorPage struct {
	page
	Status  int
	Message string
}

// notFound answers a page that does not exist, or that the viewer may
// not see: the same answer, so that guessing names and ids tells nothing.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, http.StatusNotFound, "There is no such page.")
}

// readError is a read of the store that a page's model could not do: the
// handler answers 500 and names what failed.
type readError struct {
	what string
	err  error
}

func (e *readError) Error() string { return "reading " + e.what + ": " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// modelError answers the error of a page's model.
func (h *Handler) modelError(w http.ResponseWriter, r *http.Request, err error) {
	var re *readError
	if errors.As(err, &re) {
		h.internal(w, r, re.what, re.err)
		return
	}
	h.internal(w, r, "the page", err)
}
