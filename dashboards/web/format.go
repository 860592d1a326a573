package web

import (
	"bytes"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
	"github.com/dmarcd/dmarcd/internal/figures"
)

// percent writes a share 0..1 with one decimal: 97.9%. It never rounds a
// share below 1 up to 100%, nor one above 0 down to 0%.
func percent(x float64) string {
	v := 100 * x
	s := strconv.FormatFloat(v, 'f', 1, 64)
	switch {
	case x < 1 && s == "100.0":
		s = "99.9"
	case x > 0 && s == "0.0":
		s = "0.1"
	}
	s = strings.TrimSuffix(s, ".0")
	return s + "%"
}

// Pass-rate thresholds of the colours: good at or above the advisor's
// default aligned share, poor below 90%.
const (
	rateGood = 0.98
	rateFair = 0.90
)

// rateClass is the CSS class of a pass rate.
func rateClass(x float64) string {
	switch {
	case x >= rateGood:
		return "good"
	case x >= rateFair:
		return "fair"
	}
	return "poor"
}

// resultClass is the CSS class of a result word (pass, fail, ...).
func resultClass(s string) string {
	switch strings.ToLower(s) {
	case "pass":
		return "good"
	case "fail", "permerror", "reject":
		return "poor"
	case "softfail", "temperror", "quarantine", "neutral", "policy":
		return "fair"
	}
	return "muted"
}

func actionLabel(r *advisor.Recommendation) string {
	switch r.Action {
	case advisor.Advance:
		return "Advance to " + advisor.StepText(r.Next, r.NextTesting)
	case advisor.Rollback:
		return "Roll back to " + advisor.StepText(r.Next, r.NextTesting)
	case advisor.Hold:
		return "Hold at " + advisor.StepText(r.Current, r.Testing)
	case advisor.Done:
		return "Done: reject 100%"
	case advisor.Start:
		return "Publish p=none"
	}
	return string(r.Action)
}

func actionClass(a advisor.Action) string {
	switch a {
	case advisor.Advance, advisor.Done:
		return "good"
	case advisor.Rollback:
		return "poor"
	case advisor.Start:
		return "info"
	}
	return "fair"
}

func classClass(c analyze.Class) string {
	switch c {
	case analyze.Authorized:
		return "good"
	case analyze.Forwarder, analyze.Spoofing:
		return "info"
	}
	return "poor"
}

func stateClass(s dmarcd.KeyState) string {
	switch s {
	case dmarcd.KeyCurrent:
		return "good"
	case dmarcd.KeySigning, dmarcd.KeyPublished, dmarcd.KeyCreated:
		return "info"
	case dmarcd.KeyRetired:
		return "fair"
	}
	return "muted"
}

// shortDay writes a YYYY-MM-DD day as "Nov 3, 2026"; other text as is.
func shortDay(s string) string {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	return t.Format("Jan 2, 2006")
}

// daySpan writes two YYYY-MM-DD days as a short range: "Nov 1–7, 2026".
func daySpan(first, last string) string {
	a, err1 := time.Parse(time.DateOnly, first)
	b, err2 := time.Parse(time.DateOnly, last)
	switch {
	case err1 != nil || err2 != nil:
		return first + " – " + last
	case first == last:
		return shortDay(first)
	case a.Year() == b.Year() && a.Month() == b.Month():
		return a.Format("Jan 2") + "–" + b.Format("2, 2006")
	case a.Year() == b.Year():
		return a.Format("Jan 2") + " – " + b.Format("Jan 2, 2006")
	}
	return shortDay(first) + " – " + shortDay(last)
}

func dateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

var funcs = template.FuncMap{
	"num":         func(n int64) string { return figures.Count(n) },
	"pct":         percent,
	"rate":        func(a, b int64) float64 { return ratio(a, b) },
	"rateClass":   rateClass,
	"resultClass": resultClass,
	"actionLabel": actionLabel,
	"actionClass": actionClass,
	"classClass":  classClass,
	"stateClass":  stateClass,
	"day":         shortDay,
	"span":        daySpan,
	"minutes":     func(s string) string { return strings.TrimSuffix(s[:min(len(s), 16)], " ") },
	"address": func(s string) string {
		if a, err := mail.ParseAddress(s); err == nil {
			return a.Address
		}
		return s
	},
	"dateTime":   dateTime,
	"domainPath": func(d string) string { return "/domain/" + url.PathEscape(d) },
	"sourcePath": func(d, ip string) string {
		return "/domain/" + url.PathEscape(d) + "/source/" + url.PathEscape(ip)
	},
	"linkable": validDomain,
	"add":      func(a, b int) int { return a + b },
	"sub":      func(a, b int64) int64 { return a - b },
	"join":     strings.Join,
}

// page is what every page has: its title, the section of the navigation
// it belongs to, and when it was made.
type page struct {
	Title   string
	Section string
	Made    string
	// User and CSRF are the logged-in user and their session's form
	// token, with Options.Accounts.
	User  string
	Admin bool
	CSRF  string
	// Owner: the user is the administrator or an owner of an
	// organisation, who read the audit log and set the Slack channels.
	Owner bool
}

func (h *Handler) page(r *http.Request, title, section string) page {
	p := page{Title: title, Section: section, Made: h.now().Format("2006-01-02 15:04 UTC")}
	if v := viewerOf(r); v != nil {
		p.User, p.Admin, p.CSRF = v.sess.User.Email, v.scope.Admin, v.sess.CSRF
		p.Owner = v.scope.Admin || slices.Contains(slices.Collect(maps.Values(v.sess.User.Roles)), accounts.RoleOwner)
	}
	return p
}

// Templates: base.html is the frame, partials.html the shared pieces, and
// each page one file defining "content".
var pageNames = []string{"index", "domain", "source", "records", "keys", "failures", "failure", "tls", "alerts", "error", "login", "domainform", "audit", "slack"}

func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes page name with data. The page is made in full first, so
// that a failure gives an error page rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var b bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&b, "base", data); err != nil {
		h.log.Error("web page template failed", "page", name, "err", err)
		http.Error(w, "dmarcd: the page could not be made; the daemon's log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b.Bytes())
	}
}

// validDomain says whether s can be a domain name in a path: letters,
// digits, '-', '_' and dots between labels, at most MaxDomainNameBytes.
func validDomain(s string) bool {
	if s == "" || len(s) > MaxDomainNameBytes || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
