// Package web serves the dmarcd web page: an http.Handler that shows, over
// either store (it reads only the documented views, with SQL both SQLite and
// ClickHouse accept), the sender domains with their rollout step and the
// advisor's recommendation, compliance trend charts, the sources of a domain
// with drill-down to their records, the DKIM keys and their rotation state,
// the DNS records the sender-domain wizard writes, and the failure reports
// (headers only).
//
// Everything the page needs is in the binary: the templates and assets are
// embedded, and the charts are inline SVG drawn on the server. The only
// script is a dozen lines for the copy buttons.
//
// The handler answers GET and HEAD only, sets a strict Content-Security-Policy
// and, when Options.Auth holds a secret, requires it: a bearer token (also
// given once as ?token=, which sets a cookie) or HTTP basic authentication.
// CheckListen refuses an address other than loopback without one.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

// Limits and defaults of the page. Every figure a request can ask for is
// bounded by one of these.
const (
	// DefaultWindowDays is the span of the charts and tables without ?days=;
	// WindowChoices are the spans ?days= accepts.
	DefaultWindowDays = 30
	// MaxSourcesShown bounds the sources listed on a domain's page (the most
	// mail first); the page says how many more there are.
	MaxSourcesShown = 200
	// MaxSourceRecords bounds the records listed for one source.
	MaxSourceRecords = 500
	// MaxReportersShown bounds the reporters listed on a domain's page.
	MaxReportersShown = 100
	// FailuresPerPage is the page size of the failure report list;
	// MaxFailurePage the last page number ?page= accepts.
	FailuresPerPage = 50
	MaxFailurePage  = 10000
	// MaxDomainNameBytes is the longest domain name (RFC 1035 §2.3.4).
	MaxDomainNameBytes = 253
	// DefaultCacheTTL is how long a recommendation, the key advice and a
	// record plan are reused before they are asked again: each asks DNS.
	// Errors are kept for a fifth of it.
	DefaultCacheTTL = 5 * time.Minute
	// cacheMaxEntries bounds the cache; past it, it is emptied.
	cacheMaxEntries = 1000
	// AdviceTimeout bounds one recommendation, key advice or plan (they ask
	// DNS); adviceConcurrency is how many recommendations run at once.
	AdviceTimeout     = 30 * time.Second
	adviceConcurrency = 4
	// RequestTimeout bounds one page: the store's queries and the advice.
	RequestTimeout = 2 * time.Minute
)

// WindowChoices are the values ?days= accepts.
var WindowChoices = []int{7, 30, 90}

// Recommender gives the advisor's recommendation for a sender domain;
// *advisor.Advisor is one.
type Recommender interface {
	Recommend(ctx context.Context, d dmarcd.SenderDomain) (*advisor.Recommendation, error)
}

// Options configure the handler. Only Store is required: without the
// others the page shows the report data and says what is not configured.
type Options struct {
	// Store is read through the documented views; every dmarcd.Store is
	// an analyze.Querier.
	Store analyze.Querier
	// Domains returns the sender domains the advisor covers (the
	// [[domain]] tables of the configuration, or every domain with
	// reports). Nil: every domain with reports, without configuration.
	Domains func(ctx context.Context) ([]dmarcd.SenderDomain, error)
	// Recommender gives the recommendation of each of Domains; nil shows
	// none.
	Recommender Recommender
	// Classifier gives the classifier of a domain's sources (its
	// authorized networks and selectors, reverse DNS); nil classifies by
	// the reports alone.
	Classifier func(d dmarcd.SenderDomain) *analyze.Classifier
	// KeyAdvice lists the DKIM keys with the advice on each; nil when
	// there is no key store.
	KeyAdvice func(ctx context.Context) ([]advisor.KeyAdvice, error)
	// Plan works out the DNS records of a sender domain (the wizard of
	// dmarcd domain add); nil hides the records page.
	Plan func(ctx context.Context, d dmarcd.SenderDomain) (*advisor.Plan, error)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Auth is the secret the page requires; none when empty.
	Auth Auth
	// Accounts, when set, puts the page behind logins (the dashboard of
	// many organisations): each user sees their organisations' domains
	// only, the administrator everything; Auth is not used then.
	Accounts *accounts.Store
	// SecureCookies marks the login cookies Secure over plain HTTP too:
	// for a page behind a TLS reverse proxy.
	SecureCookies bool
	// LookupTXT asks DNS for the TXT records at a name: the records page
	// shows whether each planned record is live, and "I published it"
	// checks the DMARC record. Nil: neither.
	LookupTXT func(ctx context.Context, name string) ([]string, error)
	// DefaultRUA are the report addresses a new sender domain's form
	// starts with.
	DefaultRUA []string
	// KeyStore, with Accounts, lets editors generate, upload, rotate,
	// advance and retire their domains' DKIM keys; RSABits is the size of
	// the RSA keys generated (keystore.DefaultRSABits when 0).
	KeyStore *keystore.Store
	RSABits  int
	// SlackWebhookPrefixes are the allowed starts of an organisation's
	// Slack webhook (accounts.DefaultWebhookPrefixes when empty).
	SlackWebhookPrefixes []string
	// CacheTTL is DefaultCacheTTL when zero; negative turns the cache off.
	CacheTTL time.Duration
	Logger   *slog.Logger
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Handler serves the page. Make it with New.
type Handler struct {
	opts    Options
	root    http.Handler
	pages   map[string]*template.Template
	cache   *cache
	log     *slog.Logger
	session string // the cookie value a valid token gives
	limiter loginLimiter
}

// New returns the handler of opts.
func New(opts Options) (*Handler, error) {
	if opts.Store == nil {
		return nil, errors.New("web: no store")
	}
	if err := opts.Auth.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	h := &Handler{opts: opts, log: opts.Logger, cache: newCache(opts.CacheTTL, cacheMaxEntries)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if opts.Auth.Token != "" {
		h.session = sessionValue(opts.Auth.Token)
	}
	var err error
	if h.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.index)
	mux.HandleFunc("GET /domain/{name}", h.domain)
	mux.HandleFunc("GET /domain/{name}/source/{ip}", h.source)
	mux.HandleFunc("GET /domain/{name}/records", h.records)
	mux.HandleFunc("GET /keys", h.keys)
	mux.HandleFunc("GET /failures", h.failures)
	mux.HandleFunc("GET /failures/{id}", h.failure)
	mux.HandleFunc("GET /tls", h.tls)
	mux.HandleFunc("GET /alerts", h.alerts)
	mux.HandleFunc("POST /logout", h.logout)
	mux.HandleFunc("GET /audit", h.auditLog)
	mux.HandleFunc("GET /slack", h.slackSettings)
	mux.HandleFunc("POST /slack", h.slackSettings)
	mux.HandleFunc("POST /keys/{action}", h.keyAction)
	if opts.Accounts != nil {
		mux.HandleFunc("GET /api/v1/domains", h.apiDomains)
		mux.HandleFunc("POST /api/v1/domains", h.apiSetupDomain)
		mux.HandleFunc("GET /api/v1/domains/{name}/records", h.apiRecords)
		mux.HandleFunc("POST /api/v1/domains/{name}/published", h.apiPublished)
		mux.HandleFunc("GET /api/v1/domains/{name}/recommendation", h.apiRecommendation)
		mux.HandleFunc("GET /api/v1/slack", h.apiSlack)
		mux.HandleFunc("PUT /api/v1/slack", h.apiSlack)
		mux.HandleFunc("DELETE /api/v1/slack", h.apiSlack)
		mux.HandleFunc("POST /api/v1/slack/test", h.apiSlack)
		mux.HandleFunc("GET /api/v1/keys", h.apiKeys)
		mux.HandleFunc("POST /api/v1/keys/{action}", h.apiKeyAction)
		mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) { apiError(w, http.StatusNotFound, "no such endpoint") })
	}
	mux.HandleFunc("GET /domains/new", h.domainForm)
	mux.HandleFunc("POST /domains/new", h.domainForm)
	mux.HandleFunc("GET /domain/{name}/settings", h.domainForm)
	mux.HandleFunc("POST /domain/{name}/settings", h.domainForm)
	mux.HandleFunc("POST /domain/{name}/published", h.published)
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	mux.Handle("GET /favicon.ico", faviconHandler(static))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "There is no such page.")
	})
	var root http.Handler = mux
	if opts.Accounts != nil {
		root = h.withAccounts(mux)
	}
	h.root = h.secure(root)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.root.ServeHTTP(w, r)
}

// staticHandler serves the embedded assets. They change only with the
// binary, so browsers may keep them for a day.
func staticHandler(static fs.FS) http.Handler {
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path[len(r.URL.Path)-1] == '/' {
			http.NotFound(w, r) // no listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

// faviconHandler answers the browsers that ask for /favicon.ico whatever
// the page's <link rel=icon> says, so that no request fails.
func faviconHandler(static fs.FS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(static, "favicon.svg")
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Write(b)
	})
}

// now is the handler's clock in UTC.
func (h *Handler) now() time.Time { return h.opts.Now().UTC() }

// fail writes an error page with status; msg is shown to the user.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "error", &errorPage{page: h.page(r, http.StatusText(status), ""), Status: status, Message: msg})
}

// internal logs err and writes a 500 page that names what failed, but not
// the error itself: it may carry the store's address.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the browser went away
	}
	h.log.Error("web page failed", "path", r.URL.Path, "what", what, "err", err)
	h.fail(w, r, http.StatusInternalServerError, fmt.Sprintf("Reading %s failed; the daemon's log has the details.", what))
}
