package web

// The key forms of the dashboard with accounts: generate, upload, rotate,
// advance and retire DKIM keys. Private keys go into the key store and
// never come out: the page shows public records only.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

// keyAction runs one key form (POST /keys/{action}) and goes back to the
// keys page with what happened.
func (h *Handler) keyAction(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if v == nil || h.opts.KeyStore == nil {
		h.fail(w, r, http.StatusNotFound, "Keys are managed with dmarcd keys on the command line without web.accounts_file and keys.dir.")
		return
	}
	req := keyRequest{Action: r.PathValue("action"), Domain: r.PostFormValue("domain"), Selector: r.PostFormValue("selector"),
		Algorithm: r.PostFormValue("algorithm"), PEM: r.PostFormValue("pem")}
	if f, _, err := r.FormFile("pem_file"); err == nil {
		b, err := io.ReadAll(io.LimitReader(f, keystore.MaxKeyFileBytes+1))
		f.Close()
		if err == nil {
			req.PEM = string(b)
		}
	}
	res, status := h.runKeyRequest(r, v, req)
	switch status {
	case http.StatusOK:
	case http.StatusNotFound:
		h.notFound(w, r)
		return
	default:
		h.inputError(w, r, badRequest(res.Message))
		return
	}
	http.Redirect(w, r, "/keys?note="+url.QueryEscape(res.Message), http.StatusSeeOther)
}

// keyRequest is one key operation, from a form or the API.
type keyRequest struct {
	Action    string `json:"-"`
	Domain    string `json:"domain"`
	Selector  string `json:"selector,omitempty"`
	Algorithm string `json:"algorithm,omitempty"`
	PEM       string `json:"pem,omitempty"`
}

// keyResult says what a key operation did: Changed when it changed the
// key store, Message for people either way.
type keyResult struct {
	Changed bool   `json:"changed"`
	Message string `json:"message"`
}

// runKeyRequest runs a key operation for the viewer: 404 for a domain they
// may not change (or an unknown action), 400 for a request that is wrong,
// 200 otherwise, whether the operation could be done or not (the message
// says).
func (h *Handler) runKeyRequest(r *http.Request, v *viewer, req keyRequest) (keyResult, int) {
	action := req.Action
	domain, err := accounts.CheckDomain(req.Domain)
	if err != nil {
		return keyResult{Message: err.Error()}, http.StatusBadRequest
	}
	if !v.scope.CanEdit(domain) {
		return keyResult{}, http.StatusNotFound
	}
	selector := strings.TrimSpace(req.Selector)
	ctx := r.Context()
	st := h.opts.KeyStore
	var note string
	var object, detail string
	switch action {
	case "generate":
		keys, err := st.List()
		if err != nil {
			return keyResult{Message: "the key store cannot be read: " + err.Error()}, http.StatusOK
		}
		alg := req.Algorithm
		if alg != "rsa" && alg != "ed25519" {
			return keyResult{Message: "algorithm: want rsa or ed25519"}, http.StatusBadRequest
		}
		k, err := st.Generate(keystore.GenerateOptions{Domain: domain, Selector: keystore.NextSelector(alg, keys, domain, h.now()), Algorithm: alg, Bits: h.rsaBits(alg)})
		if err != nil {
			note = "Not generated: " + err.Error()
			break
		}
		object, detail = k.ID(), fmt.Sprintf("%s, %d bits", k.Algorithm, k.Bits)
		note = fmt.Sprintf("Generated %s. Publish its record (below), then advance it once DNS shows it.", k.ID())
	case "import":
		pem := req.PEM
		if len(pem) > keystore.MaxKeyFileBytes {
			note = "Not imported: the key file is too large."
			break
		}
		opts := keystore.ImportOptions{Domain: domain, Selector: selector, PEM: []byte(pem)}
		if lookup := h.opts.LookupTXT; lookup != nil {
			opts.Lookup = func(ctx context.Context, name string) ([]string, error) {
				txts, err := lookup(ctx, name)
				if advisor.IsNotFound(err) {
					return nil, nil // a new selector: nothing published yet
				}
				return txts, err
			}
		}
		k, err := st.Import(ctx, opts)
		if err != nil {
			// The error names the key, never its bytes.
			note = "Not imported: " + err.Error()
			break
		}
		object, detail = k.ID(), fmt.Sprintf("%s, %d bits, state %s", k.Algorithm, k.Bits, k.State)
		note = fmt.Sprintf("Imported %s (%s).", k.ID(), k.State)
	case "rotate":
		keys, err := st.List()
		if err != nil {
			return keyResult{Message: "the key store cannot be read: " + err.Error()}, http.StatusOK
		}
		algs := map[string]bool{}
		for _, k := range keys {
			if k.Domain == domain && k.State == dmarcd.KeyCurrent {
				algs[k.KeyType()] = true
			}
		}
		if len(algs) == 0 {
			algs["rsa"] = true
		}
		var made []string
		for alg := range algs {
			k, err := st.Generate(keystore.GenerateOptions{Domain: domain, Selector: keystore.NextSelector(alg, keys, domain, h.now()), Algorithm: alg, Bits: h.rsaBits(alg)})
			if err != nil {
				note = "Rotation not started: " + err.Error()
				break
			}
			keys = append(keys, k)
			made = append(made, k.ID())
		}
		if len(made) > 0 {
			object = domain
			detail = "new " + strings.Join(made, ", ")
			note = "Rotation started: " + strings.Join(made, ", ") + ". Publish the new record; the old key keeps signing until the new one is current."
		}
	case "advance", "retire":
		k, err := st.Get(domain, selector)
		if err != nil {
			note = err.Error()
			break
		}
		to := dmarcd.KeyRetired
		if action == "advance" {
			to, note = h.advanceTo(r, k)
			if to == "" {
				break
			}
		}
		moves, err := st.Transition(domain, selector, to)
		if err != nil {
			note = err.Error()
			break
		}
		var said []string
		for _, m := range moves {
			said = append(said, fmt.Sprintf("%s: %s -> %s", m.Key.ID(), m.From, m.To))
		}
		object, detail = k.ID(), strings.Join(said, "; ")
		note = strings.Join(said, "; ") + "."
	default:
		return keyResult{}, http.StatusNotFound
	}
	if object != "" {
		h.audit(r, accounts.AuditEntry{Actor: v.sess.User.Email, Org: h.orgName(r, domain), Action: "key." + action, Object: object, Detail: detail})
		h.cache.forget("keys")
	}
	return keyResult{Changed: object != "", Message: note}, http.StatusOK
}

// advanceTo is the state a key may move to now: the key advice's next
// state when its checks pass; else "" and why not.
func (h *Handler) advanceTo(r *http.Request, k dmarcd.Key) (dmarcd.KeyState, string) {
	if h.opts.KeyAdvice == nil {
		return "", "No key advice is configured."
	}
	advice, err := h.opts.KeyAdvice(r.Context())
	if err != nil {
		return "", "The key advice failed: " + err.Error()
	}
	for _, a := range advice {
		if a.Key.ID() != k.ID() {
			continue
		}
		if a.Next == "" || !a.Ready {
			return "", k.ID() + " stays " + string(k.State) + ": " + a.Reason
		}
		return a.Next, ""
	}
	return "", errors.New("no advice on " + k.ID()).Error()
}

// rsaBits is the size of a new key of alg: Options.RSABits for RSA, none
// for Ed25519.
func (h *Handler) rsaBits(alg string) int {
	if alg == "rsa" {
		return h.opts.RSABits
	}
	return 0
}
