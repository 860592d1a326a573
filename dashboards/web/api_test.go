package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/dmarcd/dmarcd/dashboards/accounts"
)

// apiClient calls the API with a token and checks every request and answer
// against docs/openapi.yaml.
type apiClient struct {
	t      *testing.T
	tn     *tenants
	token  string
	router routers.Router
}

func openAPI(t *testing.T, tn *tenants) routers.Router {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: tn.srv.URL}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return router
}

func (c *apiClient) call(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, c.tn.srv.URL+path, bytes.NewReader(b))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.t.Fatalf("%s %s is not in docs/openapi.yaml: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		c.t.Errorf("%s %s: the request breaks docs/openapi.yaml: %v", method, path, err)
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s %s: the answer (%d) breaks docs/openapi.yaml: %v\n%s", method, path, res.StatusCode, err, raw)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	return res.StatusCode, m
}

// TestAPI: an organisation's token sets up a domain, reads its records
// with their live state, says a step is published, manages keys; every
// answer matches docs/openapi.yaml; a read token may not write; another
// organisation's domain is 404; no private key in any answer.
func TestAPI(t *testing.T) {
	tn := newTenants(t)
	ctx := context.Background()
	acme, _ := tn.acc.OrgByName(ctx, "Acme")
	globex, _ := tn.acc.OrgByName(ctx, "Globex")
	write, _ := tn.acc.NewAPIToken(ctx, acme.ID, "portal", []string{accounts.ScopeWrite})
	manage, _ := tn.acc.NewAPIToken(ctx, acme.ID, "settings", []string{accounts.ScopeManage})
	read, _ := tn.acc.NewAPIToken(ctx, globex.ID, "dash", []string{accounts.ScopeRead})
	router := openAPI(t, tn)
	api := &apiClient{t: t, tn: tn, token: write, router: router}
	ro := &apiClient{t: t, tn: tn, token: read, router: router}
	anon := &apiClient{t: t, tn: tn, router: router}

	if status, _ := anon.call("GET", "/api/v1/domains", nil); status != http.StatusUnauthorized {
		t.Errorf("no token: %d", status)
	}
	status, body := api.call("GET", "/api/v1/domains", nil)
	if status != 200 || !strings.Contains(mustJSON(body), "acme.example") || strings.Contains(mustJSON(body), "globex") || strings.Contains(mustJSON(body), "orphan") {
		t.Errorf("Acme's domains: %d %s", status, mustJSON(body))
	}
	// Set up a subdomain; checked answers first.
	if status, body := api.call("POST", "/api/v1/domains", map[string]any{"name": "news.acme.example", "mode": "subdomain", "ips": []string{"bad"}, "rua": []string{"dmarc@acme.example"}}); status != 422 {
		t.Errorf("a bad setup: %d %s", status, mustJSON(body))
	}
	status, body = api.call("POST", "/api/v1/domains", map[string]any{"name": "news.acme.example", "mode": "subdomain", "ips": []string{"198.51.100.0/24"}, "rua": []string{"dmarc@acme.example"}})
	if status != 201 || !strings.Contains(mustJSON(body), `"status": "missing"`) {
		t.Fatalf("setup: %d %s", status, mustJSON(body))
	}
	tn.dns.txt["_dmarc.news.acme.example"] = []string{"v=DMARC1; p=none; rua=mailto:dmarc@acme.example"}
	status, body = api.call("GET", "/api/v1/domains/news.acme.example/records?fresh=1", nil)
	if status != 200 || !strings.Contains(mustJSON(body), `"status": "matches"`) {
		t.Errorf("records: %d %s", status, mustJSON(body))
	}
	if status, body := api.call("POST", "/api/v1/domains/news.acme.example/published", nil); status != 200 || body["step"] != "none" {
		t.Errorf("published: %d %s", status, mustJSON(body))
	}
	if status, _ := api.call("POST", "/api/v1/domains/missing.acme.example/published", nil); status != 409 {
		t.Errorf("published without a record: %d", status)
	}
	// Keys.
	if status, body := api.call("POST", "/api/v1/keys/generate", map[string]any{"domain": "acme.example", "algorithm": "ed25519"}); status != 200 || body["changed"] != true {
		t.Errorf("generate: %d %s", status, mustJSON(body))
	}
	status, body = api.call("GET", "/api/v1/keys", nil)
	if status != 200 || !strings.Contains(mustJSON(body), "e202611") || strings.Contains(mustJSON(body), "PRIVATE") {
		t.Errorf("keys: %d %s", status, mustJSON(body))
	}
	if status, _ := api.call("POST", "/api/v1/keys/advance", map[string]any{"domain": "acme.example", "selector": "e202611"}); status != 409 {
		t.Errorf("advance before DNS: %d", status)
	}
	// The rollout: the advisor's recommendation, as `dmarcd advise --format json`.
	status, body = api.call("GET", "/api/v1/domains/acme.example/recommendation", nil)
	if status != 200 || body["domain"] != "acme.example" || body["record_name"] != "_dmarc.acme.example" {
		t.Errorf("recommendation: %d %s", status, mustJSON(body))
	}
	// The organisation's Slack channel: the webhook is taken, never given,
	// and only from a token that manages the organisation, as only its
	// owners may on the page.
	const hook = "https://hooks.slack.com/services/T0/B0/secretpart"
	if status, _ := api.call("PUT", "/api/v1/slack", map[string]any{"webhook_url": hook}); status != 403 {
		t.Errorf("a write token setting the Slack channel: %d", status)
	}
	if status, _ := api.call("DELETE", "/api/v1/slack", nil); status != 403 {
		t.Errorf("a write token removing the Slack channel: %d", status)
	}
	mg := &apiClient{t: t, tn: tn, token: manage, router: router}
	if status, body := mg.call("PUT", "/api/v1/slack", map[string]any{"webhook_url": "http://10.0.0.1/admin", "alerts": true}); status != 422 {
		t.Errorf("a webhook outside the prefixes: %d %s", status, mustJSON(body))
	}
	status, body = mg.call("PUT", "/api/v1/slack", map[string]any{"webhook_url": hook, "alerts": true, "weekly": false})
	if status != 200 || strings.Contains(mustJSON(body), "secretpart") || !strings.Contains(mustJSON(body), `"host": "hooks.slack.com"`) {
		t.Errorf("setting the Slack channel: %d %s", status, mustJSON(body))
	}
	if status, body := ro.call("GET", "/api/v1/slack", nil); status != 200 || body["set"] != false {
		t.Errorf("Globex's channel: %d %s", status, mustJSON(body))
	}
	if status, _ := ro.call("PUT", "/api/v1/slack", map[string]any{"webhook_url": hook}); status != 403 {
		t.Errorf("a read token setting the channel: %d", status)
	}
	if d, err := tn.acc.Slack(ctx, acme.ID); err != nil || d.WebhookURL != hook || d.Weekly {
		t.Errorf("Acme's channel: %+v %v", d, err)
	}
	if status, body := mg.call("DELETE", "/api/v1/slack", nil); status != 200 || body["slack"].(map[string]any)["set"] != false {
		t.Errorf("removing the channel: %d %s", status, mustJSON(body))
	}
	// Another organisation's domain; a read token writing.
	for _, c := range []struct {
		client       *apiClient
		method, path string
		body         any
		want         int
	}{
		{api, "GET", "/api/v1/domains/globex.example/records", nil, 404},
		{api, "POST", "/api/v1/domains/globex.example/published", nil, 404},
		{api, "POST", "/api/v1/keys/generate", map[string]any{"domain": "globex.example", "algorithm": "rsa"}, 404},
		{api, "POST", "/api/v1/domains", map[string]any{"name": "globex.example", "rua": []string{"x@acme.example"}}, 422},
		{ro, "POST", "/api/v1/keys/generate", map[string]any{"domain": "globex.example", "algorithm": "rsa"}, 403},
		{ro, "GET", "/api/v1/domains/acme.example/records", nil, 404},
		{ro, "GET", "/api/v1/domains/acme.example/recommendation", nil, 404},
	} {
		if status, body := c.client.call(c.method, c.path, c.body); status != c.want {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, status, c.want, mustJSON(body))
		}
	}
	if status, body := ro.call("GET", "/api/v1/keys", nil); status != 200 || strings.Contains(mustJSON(body), "acme") {
		t.Errorf("Globex's keys: %d %s", status, mustJSON(body))
	}
	log, _ := tn.acc.AuditLog(ctx, "Acme", 50)
	var actors []string
	for _, e := range log {
		actors = append(actors, e.Actor+" "+e.Action)
	}
	if s := strings.Join(actors, "\n"); !strings.Contains(s, "api:Acme/portal domain.setup") || !strings.Contains(s, "api:Acme/portal key.generate") {
		t.Errorf("audit:\n%s", s)
	}
}

func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
