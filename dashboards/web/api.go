package web

// The JSON API of the dashboard (/api/v1, with Options.Accounts), for a
// provider's own customer dashboard: the same operations as the forms, for
// an organisation's API token (Authorization: Bearer dmarcd_...). The
// token's scope says what it may do: read, or write as an editor of the
// organisation's domains, or also manage its Slack channel as an owner.
// docs/openapi.yaml describes every endpoint; the tests check the answers
// against it.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
)

// maxAPIBodyBytes bounds a request body of the API.
const maxAPIBodyBytes = 128 << 10

// apiAuth is the gate of /api/: an organisation's token, read or write.
func (h *Handler) apiAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dmarcd"`)
			apiError(w, http.StatusUnauthorized, "send an organisation's API token: Authorization: Bearer dmarcd_...")
			return
		}
		tok, err := h.opts.Accounts.APITokenOf(r.Context(), strings.TrimSpace(token))
		if errors.Is(err, accounts.ErrNoToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dmarcd", error="invalid_token"`)
			apiError(w, http.StatusUnauthorized, "no such API token")
			return
		}
		if err != nil {
			h.log.Error("web: reading an API token failed", "err", err)
			apiError(w, http.StatusInternalServerError, "the accounts cannot be read")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !tok.Allows(accounts.ScopeWrite) {
			apiError(w, http.StatusForbidden, "the token may read only (scope read)")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBodyBytes)
		v := &viewer{sess: accounts.Session{User: accounts.User{Email: "api:" + tok.Org.Name + "/" + tok.Name}}, scope: tok.TokenScope(), org: &tok.Org,
			manage: tok.Allows(accounts.ScopeManage)}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
	})
}

// apiError writes {"error": msg}.
func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// readJSON reads a request body into v, refusing unknown fields.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("one JSON object, nothing after it")
	}
	return nil
}

// apiDomain is a domain in the API's answers.
type apiDomain struct {
	Name      string  `json:"name"`
	FirstDay  string  `json:"first_day,omitempty"`
	LastDay   string  `json:"last_day,omitempty"`
	Reports   int64   `json:"reports"`
	Messages  int64   `json:"messages"`
	DMARCPass float64 `json:"dmarc_pass_rate"`
	// SetUp: the domain has settings (the configuration or the page).
	SetUp bool `json:"set_up"`
}

// apiDomains lists the token's domains with reports or settings.
func (h *Handler) apiDomains(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	all, err := analyze.Domains(ctx, h.opts.Store)
	if err != nil {
		h.apiInternal(w, "the domains", err)
		return
	}
	configured, _, err := h.senderDomains(ctx)
	if err != nil {
		h.apiInternal(w, "the domains", err)
		return
	}
	out := []apiDomain{}
	seen := map[string]bool{}
	for _, c := range all {
		if !canSee(r, c.Domain) {
			continue
		}
		_, set := findDomain(configured, c.Domain)
		out = append(out, apiDomain{Name: c.Domain, FirstDay: c.FirstDay, LastDay: c.LastDay, Reports: c.Reports, Messages: c.Messages, DMARCPass: c.PassRate(), SetUp: set})
		seen[strings.ToLower(c.Domain)] = true
	}
	for _, d := range configured {
		if canSee(r, d.Name) && !seen[strings.ToLower(d.Name)] {
			out = append(out, apiDomain{Name: d.Name, SetUp: true})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": out})
}

// apiDomainSetup is the body of POST /api/v1/domains.
type apiDomainSetup struct {
	Name        string   `json:"name"`
	Mode        string   `json:"mode"`
	IPs         []string `json:"ips"`
	SPFIncludes []string `json:"spf_includes"`
	RUA         []string `json:"rua"`
}

// apiSetupDomain sets up (or again) a sender domain of the token's
// organisation and answers with its records.
func (h *Handler) apiSetupDomain(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	var req apiDomainSetup
	if err := readJSON(r, &req); err != nil {
		apiError(w, http.StatusBadRequest, "the body: "+err.Error())
		return
	}
	d := dmarcd.SenderDomain{Name: req.Name, Mode: req.Mode, IPs: req.IPs, SPFIncludes: req.SPFIncludes, RUA: req.RUA}
	if d.Mode == "" {
		d.Mode = dmarcd.ModeOwn
	}
	_, existed, err := h.lookupDomain(r.Context(), strings.ToLower(strings.TrimSuffix(d.Name, ".")))
	if err != nil {
		h.apiInternal(w, "the domain", err)
		return
	}
	if errs := h.saveDomain(r, v, d, *v.org, !existed); len(errs) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": strings.Join(errs, "; "), "errors": errs})
		return
	}
	name, _ := accounts.CheckDomain(d.Name)
	h.apiWriteRecords(w, r, name, http.StatusCreated, true)
}

// apiRecord is a planned record with what DNS shows.
type apiRecord struct {
	advisor.PlannedRecord
	Live *advisor.LiveRecord `json:"live,omitempty"`
}

// apiRecords answers the records of a domain with their live state.
func (h *Handler) apiRecords(w http.ResponseWriter, r *http.Request) {
	name, err := pathDomain(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.apiWriteRecords(w, r, name, http.StatusOK, r.URL.Query().Get("fresh") != "")
}

func (h *Handler) apiWriteRecords(w http.ResponseWriter, r *http.Request, name string, status int, fresh bool) {
	ctx, cancel := h.context(r)
	defer cancel()
	if !canSee(r, name) {
		apiError(w, http.StatusNotFound, "no such domain")
		return
	}
	if h.opts.Plan == nil {
		apiError(w, http.StatusNotFound, "the records wizard is not configured")
		return
	}
	d, known, err := h.lookupDomain(ctx, name)
	if err != nil {
		h.apiInternal(w, "the domain", err)
		return
	}
	if !known {
		apiError(w, http.StatusNotFound, "no such domain")
		return
	}
	plan, planErr := h.plan(ctx, d, fresh)
	out := map[string]any{"domain": name}
	if planErr != nil {
		out["error"] = planErr.Error()
	}
	if plan != nil {
		recs := []apiRecord{}
		for _, rec := range plan.Records {
			ar := apiRecord{PlannedRecord: rec}
			if h.opts.LookupTXT != nil {
				live, err := advisor.CheckPlanned(ctx, h.opts.LookupTXT, rec)
				if err != nil {
					live = advisor.LiveRecord{Status: "unknown", Diff: "DNS did not answer: " + err.Error()}
				}
				ar.Live = &live
			}
			recs = append(recs, ar)
		}
		out["mode"], out["records"], out["notes"] = plan.Mode, recs, plan.Notes
	}
	writeJSON(w, status, out)
}

// apiPublished is "I published it" for the token's organisation.
func (h *Handler) apiPublished(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	name, err := pathDomain(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !v.scope.CanEdit(name) {
		apiError(w, http.StatusNotFound, "no such domain")
		return
	}
	if h.opts.LookupTXT == nil {
		apiError(w, http.StatusNotFound, "no DNS resolver is configured")
		return
	}
	res, err := h.recordPublished(r, v, name)
	if err != nil {
		h.apiInternal(w, "the rollout step", err)
		return
	}
	status := http.StatusOK
	if !res.Recorded {
		status = http.StatusConflict
	}
	writeJSON(w, status, res)
}

// apiKey is a key in the API's answers: its public record and state.
type apiKey struct {
	Domain     string          `json:"domain"`
	Selector   string          `json:"selector"`
	Algorithm  string          `json:"algorithm"`
	Bits       int             `json:"bits"`
	State      dmarcd.KeyState `json:"state"`
	StateSince time.Time       `json:"state_since"`
	Created    time.Time       `json:"created"`
	RecordName string          `json:"record_name"`
	Record     string          `json:"record"`
	Next       dmarcd.KeyState `json:"next,omitempty"`
	Ready      bool            `json:"ready"`
	Due        bool            `json:"rotation_due"`
	Reason     string          `json:"reason"`
}

// apiKeys lists the token's domains' keys with the advice on each.
func (h *Handler) apiKeys(w http.ResponseWriter, r *http.Request) {
	if h.opts.KeyAdvice == nil {
		apiError(w, http.StatusNotFound, "no key store is configured")
		return
	}
	advice, err := h.opts.KeyAdvice(r.Context())
	if err != nil {
		h.log.Error("web: the key advice failed", "err", err)
		apiError(w, http.StatusInternalServerError, "the key advice failed; the daemon's log has the details")
		return
	}
	out := []apiKey{}
	for _, a := range advice {
		k := a.Key
		if !canSee(r, k.Domain) {
			continue
		}
		out = append(out, apiKey{Domain: k.Domain, Selector: k.Selector, Algorithm: k.Algorithm, Bits: k.Bits, State: k.State,
			StateSince: k.StateSince, Created: k.Created, RecordName: k.RecordName(), Record: k.TXT(),
			Next: a.Next, Ready: a.Ready, Due: a.RotationDue, Reason: a.Reason})
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// apiKeyAction runs a key operation: generate, import, rotate, advance,
// retire.
func (h *Handler) apiKeyAction(w http.ResponseWriter, r *http.Request) {
	if h.opts.KeyStore == nil {
		apiError(w, http.StatusNotFound, "no key store is configured")
		return
	}
	var req keyRequest
	if err := readJSON(r, &req); err != nil {
		apiError(w, http.StatusBadRequest, "the body: "+err.Error())
		return
	}
	req.Action = r.PathValue("action")
	res, status := h.runKeyRequest(r, viewerOf(r), req)
	switch status {
	case http.StatusNotFound:
		apiError(w, status, "no such domain or action")
	case http.StatusOK:
		if !res.Changed {
			status = http.StatusConflict
		}
		writeJSON(w, status, res)
	default:
		apiError(w, status, res.Message)
	}
}

// apiRecommendation answers the advisor's recommendation for a domain:
// the step it is at, the next one with the record to publish, the
// evidence and the senders that hold it back.
func (h *Handler) apiRecommendation(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.context(r)
	defer cancel()
	name, err := pathDomain(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !canSee(r, name) {
		apiError(w, http.StatusNotFound, "no such domain")
		return
	}
	d, known, err := h.lookupDomain(ctx, name)
	if err != nil {
		h.apiInternal(w, "the domain", err)
		return
	}
	if !known || h.opts.Recommender == nil {
		apiError(w, http.StatusNotFound, "no such domain")
		return
	}
	a, err := h.recommend(ctx, d)
	if err != nil {
		// DNS failed for it, most often: said, with a status to retry.
		apiError(w, http.StatusServiceUnavailable, "no recommendation: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, a.Recommendation)
}

// apiSlack reads (GET), sets (PUT), removes (DELETE) or tests (POST
// .../test) the token's organisation's Slack channel. The webhook URL is
// taken, never given.
func (h *Handler) apiSlack(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	org := *v.org
	var c slackChange
	switch r.Method {
	case http.MethodGet:
		so, err := h.slackOf(r.Context(), org)
		if err != nil {
			h.apiInternal(w, "the Slack channel", err)
			return
		}
		writeJSON(w, http.StatusOK, so)
		return
	case http.MethodPut, http.MethodDelete, http.MethodPost:
		// On the page only owners may; a write token is an editor.
		if !v.manage {
			apiError(w, http.StatusForbidden, "setting the Slack channel takes a token with scope manage (dmarcd token add --scope manage)")
			return
		}
	}
	switch r.Method {
	case http.MethodPut:
		if err := readJSON(r, &c); err != nil {
			apiError(w, http.StatusBadRequest, "the body: "+err.Error())
			return
		}
		c.Action = "save"
	case http.MethodDelete:
		c.Action = "remove"
	case http.MethodPost:
		c.Action = "test"
	}
	note, err := h.changeSlack(r, v, org, c)
	var bad inputErr
	switch {
	case errors.As(err, &bad):
		apiError(w, http.StatusUnprocessableEntity, bad.Error())
		return
	case err != nil:
		h.apiInternal(w, "the Slack channel", err)
		return
	}
	so, err := h.slackOf(r.Context(), org)
	if err != nil {
		h.apiInternal(w, "the Slack channel", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": note, "slack": so})
}

func (h *Handler) apiInternal(w http.ResponseWriter, what string, err error) {
	h.log.Error("web: API request failed", "what", what, "err", err)
	apiError(w, http.StatusInternalServerError, "reading "+what+" failed; the daemon's log has the details")
}
