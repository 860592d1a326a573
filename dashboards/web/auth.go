package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Auth is what the page requires of a request: a bearer token, HTTP basic
// authentication, or either when both are set. Empty: nothing (only for a
// loopback address, see CheckListen).
type Auth struct {
	// Token is given as "Authorization: Bearer TOKEN", or once as
	// ?token=TOKEN, which sets a cookie and redirects to the page without
	// it (so that the token stays out of the history and of links).
	Token string
	// BasicUser and BasicPassword are HTTP basic authentication.
	BasicUser     string
	BasicPassword string
}

// Lower bounds of the secrets, in bytes: a short secret on a network
// address is guessed.
const (
	MinTokenBytes    = 16
	MinPasswordBytes = 12
)

// sessionCookie names the cookie a valid ?token= sets.
const sessionCookie = "dmarcd_session"

// Enabled says whether a secret is required.
func (a Auth) Enabled() bool { return a.Token != "" || a.BasicUser != "" }

// Validate checks the secrets: a token long enough, basic authentication
// with both parts.
func (a Auth) Validate() error {
	if a.Token != "" && len(a.Token) < MinTokenBytes {
		return fmt.Errorf("web: the token has %d bytes; use at least %d (for example: openssl rand -hex 32)", len(a.Token), MinTokenBytes)
	}
	if (a.BasicUser == "") != (a.BasicPassword == "") {
		return errors.New("web: basic authentication needs both a user and a password")
	}
	if strings.ContainsAny(a.BasicUser, ":") {
		return errors.New("web: the basic authentication user may not contain ':'")
	}
	if a.BasicPassword != "" && len(a.BasicPassword) < MinPasswordBytes {
		return fmt.Errorf("web: the basic authentication password has %d bytes; use at least %d", len(a.BasicPassword), MinPasswordBytes)
	}
	return nil
}

// CheckListen refuses to serve on addr without a secret unless addr is a
// loopback address: the page shows every sender and recipient domain of
// the reports. An empty host (":8478") listens on every address.
func CheckListen(addr string, a Auth) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("web: listen address %q: %w", addr, err)
	}
	if a.Enabled() || isLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("web: %s is not a loopback address: set a token (token or token_file) or basic authentication "+
		"(basic_auth_user and basic_auth_password_file) in [web], or listen on 127.0.0.1", addr)
}

// isLoopbackHost says whether host (a name or an address, without port)
// is the local machine only.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true // RFC 6761 §6.3
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

// sessionValue is the cookie of a token: an HMAC of it, so that the token
// itself is not stored in the browser.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("dmarcd web session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// equal compares two secrets in constant time, whatever their lengths: it
// compares their digests.
func equal(a, b string) bool {
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// contentSecurityPolicy allows the page's own stylesheet, script and
// images only: no inline script or style, no frames, no other origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secure wraps next with the security headers, the method check, the
// Host check and authentication.
func (h *Handler) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		// same-origin: no address of the page leaves for another site,
		// and the browser sends its Origin with the page's own forms
		// (with no-referrer it sends "Origin: null", which tells nothing).
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		if h.opts.Accounts != nil {
			// Logins guard the page: withAccounts checks each request.
			// The API (tokens, no cookies) also takes PUT and DELETE.
			api := strings.HasPrefix(r.URL.Path, "/api/") && (r.Method == http.MethodPut || r.Method == http.MethodDelete)
			if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost && !api {
				hd.Set("Allow", "GET, HEAD, POST")
				http.Error(w, "only GET, HEAD and POST", http.StatusMethodNotAllowed)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			hd.Set("Allow", "GET, HEAD")
			http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		if !h.opts.Auth.Enabled() && !isLoopbackHost(hostOnly(r.Host)) {
			// Without a secret the page serves the local machine only;
			// another Host name is a DNS rebinding attempt or a
			// misconfigured proxy.
			http.Error(w, "this page answers on localhost only; set a token or basic authentication in [web] to serve other names", http.StatusMisdirectedRequest)
			return
		}
		if h.opts.Auth.Enabled() && !h.authenticate(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func hostOnly(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return hostport
}

// authenticate says whether r carries the secret. When it does not, it
// writes the answer: 401, or for a valid ?token= the cookie and a redirect
// to the same page without the token.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) bool {
	a := h.opts.Auth
	if a.Token != "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(strings.TrimSpace(v), a.Token) {
			return true
		}
		if c, err := r.Cookie(sessionCookie); err == nil && equal(c.Value, h.session) {
			return true
		}
	}
	if a.BasicUser != "" {
		if user, pass, ok := r.BasicAuth(); ok {
			// Both compared, always, so that the time says nothing of
			// which was wrong.
			u, p := equal(user, a.BasicUser), equal(pass, a.BasicPassword)
			if u && p {
				return true
			}
		}
	}
	if q := r.URL.Query(); a.Token != "" && q.Has("token") {
		if !equal(q.Get("token"), a.Token) {
			h.unauthorized(w, "the token is wrong")
			return false
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: h.session, Path: "/", HttpOnly: true,
			Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		q.Del("token")
		u := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
		// A path of this server only: "//host" would leave it.
		if p := u.EscapedPath(); !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
			u.Path, u.RawPath = "/", ""
		}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return false
	}
	h.unauthorized(w, "authentication required")
	return false
}

func (h *Handler) unauthorized(w http.ResponseWriter, msg string) {
	a := h.opts.Auth
	if a.BasicUser != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="dmarcd", charset="UTF-8"`)
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dmarcd"`)
	}
	how := ""
	if a.Token != "" {
		how = " Open the page once as /?token=TOKEN (it sets a cookie), or send Authorization: Bearer TOKEN."
	}
	http.Error(w, "dmarcd: "+msg+"."+how, http.StatusUnauthorized)
}
