package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd/dashboards/accounts"
)

// Cookies and limits of logins (with Options.Accounts).
const (
	// loginCookie holds the session token; loginCSRFCookie the token the
	// login form carries back (a login has no session yet to hold one).
	loginCookie     = "dmarcd_login"
	loginCSRFCookie = "dmarcd_login_csrf"
	// LoginWindow is the span over which failed logins are counted;
	// MaxLoginFailuresPerAddress and MaxLoginFailuresPerUser bound them,
	// from one client address and for one e-mail address.
	LoginWindow                = 15 * time.Minute
	MaxLoginFailuresPerAddress = 20
	MaxLoginFailuresPerUser    = 5
	// loginLimiterMaxKeys bounds the limiter's memory; past it, the
	// oldest counts are forgotten.
	loginLimiterMaxKeys = 10000
	// maxFormBytes bounds a form.
	maxFormBytes = 64 << 10
)

// viewer is who makes a request, with Options.Accounts: their session and
// what they may see.
type viewer struct {
	token string
	sess  accounts.Session
	scope accounts.Scope
	// org is the organisation of an API token; nil for a person.
	org *accounts.Org
	// manage: the API token may also set its organisation's Slack
	// channel (accounts.ScopeManage).
	manage bool
}

type viewerKey struct{}

// viewerOf returns the viewer of r; nil without Options.Accounts.
func viewerOf(r *http.Request) *viewer {
	v, _ := r.Context().Value(viewerKey{}).(*viewer)
	return v
}

// canSee says whether the request may see domain: always without
// accounts; with them, when the viewer's organisations own it (or they are
// the administrator).
func canSee(r *http.Request, domain string) bool {
	v := viewerOf(r)
	return v == nil || v.scope.CanSee(domain)
}

// isAdmin says whether the request sees everything: without accounts, or
// as the administrator.
func isAdmin(r *http.Request) bool {
	v := viewerOf(r)
	return v == nil || v.scope.Admin
}

// loginLimiter counts failed logins by key in a sliding LoginWindow.
type loginLimiter struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

// blocked says whether key has max failures in the window, and when the
// oldest of them leaves it.
func (l *loginLimiter) blocked(key string, max int, now time.Time) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := l.recent(key, now)
	if len(fs) >= max {
		return true, fs[0].Add(LoginWindow)
	}
	return false, time.Time{}
}

func (l *loginLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failures == nil || len(l.failures) >= loginLimiterMaxKeys {
		l.failures = map[string][]time.Time{}
	}
	l.failures[key] = append(l.recent(key, now), now)
}

func (l *loginLimiter) recent(key string, now time.Time) []time.Time {
	fs := l.failures[key]
	for len(fs) > 0 && now.Sub(fs[0]) >= LoginWindow {
		fs = fs[1:]
	}
	return fs
}

// clientAddress is the request's remote address without the port.
func clientAddress(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// withAccounts is the gate of the pages with Options.Accounts: the login
// page and the assets are open; every other request needs a session, and
// one that changes something (not GET or HEAD) also its CSRF token and a
// same-origin Origin. The viewer goes into the request's context.
func (h *Handler) withAccounts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/login":
			h.login(w, r)
			return
		case strings.HasPrefix(r.URL.Path, "/api/"):
			h.apiAuth(next).ServeHTTP(w, r)
			return
		case strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/favicon.ico":
			next.ServeHTTP(w, r)
			return
		}
		c, err := r.Cookie(loginCookie)
		var sess accounts.Session
		if err == nil {
			sess, err = h.opts.Accounts.Session(r.Context(), c.Value)
		}
		if err != nil {
			if !errors.Is(err, accounts.ErrNoSession) && !errors.Is(err, http.ErrNoCookie) {
				h.internal(w, r, "the session", err)
				return
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h.fail(w, r, http.StatusUnauthorized, "Log in first.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) {
				h.fail(w, r, http.StatusForbidden, "The form came from another site.")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			token := r.Header.Get("X-CSRF-Token")
			if token == "" {
				token = r.PostFormValue("csrf")
			}
			if !sess.CheckCSRF(token) {
				h.fail(w, r, http.StatusForbidden, "The form is out of date: open the page again and repeat.")
				return
			}
		}
		scope, err := h.opts.Accounts.Scope(r.Context(), sess.User)
		if err != nil {
			h.internal(w, r, "the session", err)
			return
		}
		ctx := context.WithValue(r.Context(), viewerKey{}, &viewer{token: c.Value, sess: sess, scope: scope})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// sameOrigin says whether a request that changes something comes from
// this site: its Origin (or, without one, its Referer) names this host.
// Browsers send Origin with every POST; a request with neither is a
// script's, which the CSRF token alone must then vouch for.
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Referer")
	}
	if from == "" {
		return true
	}
	u, err := url.Parse(from)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// loginPage is the login form.
type loginPage struct {
	page
	Next    string
	Email   string
	Error   string
	CSRF    string
	NoUsers bool
}

// login shows the login form (GET) and logs in (POST): on success a
// session cookie and a redirect to the page asked for; failures are
// counted per client address and per e-mail address, and past the limits
// refused for a while (429) whatever the password.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	p := &loginPage{page: h.page(r, "Log in", ""), Next: localPath(r.FormValue("next"))}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		p.Email = strings.TrimSpace(r.PostFormValue("email"))
		c, err := r.Cookie(loginCSRFCookie)
		if err != nil || !sameOrigin(r) || r.PostFormValue("csrf") == "" || !equal(c.Value, r.PostFormValue("csrf")) {
			p.Error = "The form is out of date: try again."
			break
		}
		now := h.now()
		addr := clientAddress(r)
		user := strings.ToLower(p.Email)
		if blocked, until := h.limiter.blocked("addr:"+addr, MaxLoginFailuresPerAddress, now); blocked {
			h.tooManyLogins(w, r, p, until)
			return
		}
		if blocked, until := h.limiter.blocked("user:"+user, MaxLoginFailuresPerUser, now); blocked {
			h.tooManyLogins(w, r, p, until)
			return
		}
		u, err := h.opts.Accounts.Authenticate(r.Context(), p.Email, r.PostFormValue("password"))
		if errors.Is(err, accounts.ErrBadLogin) {
			h.limiter.fail("addr:"+addr, now)
			h.limiter.fail("user:"+user, now)
			h.log.Warn("web: failed login", "remote", addr, "email", user)
			p.Error = "Wrong e-mail address or password."
			break
		}
		if err != nil {
			h.internal(w, r, "the login", err)
			return
		}
		token, _, err := h.opts.Accounts.NewSession(r.Context(), u.ID, addr)
		if err != nil {
			h.internal(w, r, "the login", err)
			return
		}
		h.audit(r, accounts.AuditEntry{Actor: u.Email, Action: "login", Remote: addr})
		http.SetCookie(w, h.cookie(r, loginCookie, token, 0))
		http.SetCookie(w, h.cookie(r, loginCSRFCookie, "", -1))
		next := p.Next
		if next == "" {
			next = "/"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.fail(w, r, http.StatusMethodNotAllowed, "Only GET and POST.")
		return
	}
	has, err := h.opts.Accounts.HasUsers(r.Context())
	if err != nil {
		h.internal(w, r, "the accounts", err)
		return
	}
	p.NoUsers = !has
	p.CSRF = randomToken()
	http.SetCookie(w, h.cookie(r, loginCSRFCookie, p.CSRF, 0))
	status := http.StatusOK
	if p.Error != "" {
		status = http.StatusUnauthorized
	}
	h.render(w, r, status, "login", p)
}

func (h *Handler) tooManyLogins(w http.ResponseWriter, r *http.Request, p *loginPage, until time.Time) {
	wait := until.Sub(h.now()).Round(time.Minute)
	if wait < time.Minute {
		wait = time.Minute
	}
	w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())))
	p.Error = fmt.Sprintf("Too many failed logins: try again in %s.", strings.TrimSuffix(wait.String(), "0s"))
	p.CSRF = randomToken()
	http.SetCookie(w, h.cookie(r, loginCSRFCookie, p.CSRF, 0))
	h.render(w, r, http.StatusTooManyRequests, "login", p)
}

// logout ends the session.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if v == nil {
		h.fail(w, r, http.StatusNotFound, "There is no such page.")
		return
	}
	if err := h.opts.Accounts.EndSession(r.Context(), v.token); err != nil {
		h.internal(w, r, "the logout", err)
		return
	}
	h.audit(r, accounts.AuditEntry{Actor: v.sess.User.Email, Action: "logout"})
	http.SetCookie(w, h.cookie(r, loginCookie, "", -1))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// cookie makes a cookie of the page: HttpOnly, SameSite=Lax (a link from
// a mail opens the page logged in; forms carry a CSRF token), Secure over
// TLS or with Options.SecureCookies (behind a TLS proxy). maxAge < 0
// deletes it; 0 makes it last as long as the browser.
func (h *Handler) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil || h.opts.SecureCookies, SameSite: http.SameSiteLaxMode}
}

// audit records a change made through the page.
func (h *Handler) audit(r *http.Request, e accounts.AuditEntry) {
	if e.Remote == "" {
		e.Remote = clientAddress(r)
	}
	if err := h.opts.Accounts.Audit(r.Context(), e); err != nil {
		h.log.Error("web: recording a change in the audit log failed", "action", e.Action, "err", err)
	}
}

// localPath returns p when it is a path of this site ("/x", not "//host"
// or "/\host"), else "".
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return ""
	}
	if u, err := url.Parse(p); err != nil || u.Host != "" || u.Scheme != "" {
		return ""
	}
	return p
}

// randomToken is a random value for a form.
func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
