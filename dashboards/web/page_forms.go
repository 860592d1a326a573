package web

// The forms of the dashboard with accounts: a sender domain's setup (the
// wizard's questions, for a new domain or again for one set up), and "I
// published it" for a rollout step.

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// Bounds of the domain form.
const (
	// MaxFormListItems bounds the addresses, includes and report
	// addresses of a domain form.
	MaxFormListItems = 50
)

type domainFormPage struct {
	page
	New    bool
	Name   string
	Mode   string
	IPs    string
	Incl   string
	RUA    string
	Org    int64
	Orgs   []accounts.Org
	Errors []string
}

// editableOrgs are the organisations the viewer may add domains to.
func (h *Handler) editableOrgs(r *http.Request) ([]accounts.Org, error) {
	v := viewerOf(r)
	all, err := h.opts.Accounts.Orgs(r.Context())
	if err != nil {
		return nil, err
	}
	if v.scope.Admin {
		return all, nil
	}
	return slices.DeleteFunc(all, func(o accounts.Org) bool { return !v.sess.User.Roles[o.ID].AtLeast(accounts.RoleEditor) }), nil
}

// domainForm asks the wizard's questions in the browser: the domain (or a
// subdomain only for our mail), the other servers that send for it (kept
// in its SPF record), and where reports go; on success it keeps the
// answers and shows the records to publish, with their live state.
func (h *Handler) domainForm(w http.ResponseWriter, r *http.Request) {
	if viewerOf(r) == nil {
		h.fail(w, r, http.StatusNotFound, "Sender domains are set up in the configuration file ([[domain]]) without web.accounts_file.")
		return
	}
	ctx := r.Context()
	p := &domainFormPage{page: h.page(r, "Set up a sender domain", "domains"), New: r.PathValue("name") == "", Mode: dmarcd.ModeOwn}
	orgs, err := h.editableOrgs(r)
	if err != nil {
		h.internal(w, r, "the organisations", err)
		return
	}
	p.Orgs = orgs
	if !p.New {
		name, err := pathDomain(r)
		if err != nil {
			h.inputError(w, r, err)
			return
		}
		if !viewerOf(r).scope.CanEdit(name) {
			h.notFound(w, r)
			return
		}
		p.Name = name
		p.Title = "Settings · " + name
		d, found, err := h.lookupDomain(ctx, name)
		if err != nil {
			h.internal(w, r, "the domain", err)
			return
		}
		if found {
			p.Mode, p.IPs, p.Incl, p.RUA = d.Mode, strings.Join(d.IPs, "\n"), strings.Join(d.SPFIncludes, "\n"), strings.Join(d.RUA, "\n")
		}
		if owner, ok, err := h.opts.Accounts.DomainOwner(ctx, name); err == nil && ok {
			p.Org = owner
		}
	} else {
		if len(orgs) == 0 {
			h.fail(w, r, http.StatusForbidden, "You may not add domains: you are an editor or owner of no organisation.")
			return
		}
		p.RUA = strings.Join(h.opts.DefaultRUA, "\n")
		p.Org = orgs[0].ID
	}
	if r.Method == http.MethodPost {
		d, org, errs := h.readDomainForm(r, p)
		if len(errs) == 0 {
			if errs = h.saveDomain(r, viewerOf(r), d, org, p.New); len(errs) == 0 {
				http.Redirect(w, r, "/domain/"+url.PathEscape(d.Name)+"/records", http.StatusSeeOther)
				return
			}
		}
		p.Errors = errs
		h.render(w, r, http.StatusUnprocessableEntity, "domainform", p)
		return
	}
	h.render(w, r, http.StatusOK, "domainform", p)
}

// readDomainForm reads and checks the form's answers.
func (h *Handler) readDomainForm(r *http.Request, p *domainFormPage) (dmarcd.SenderDomain, accounts.Org, []string) {
	var errs []string
	lines := func(field string) []string {
		var out []string
		for _, l := range strings.FieldsFunc(r.PostFormValue(field), func(c rune) bool { return c == '\n' || c == '\r' || c == ',' || c == ' ' }) {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		if len(out) > MaxFormListItems {
			errs = append(errs, fmt.Sprintf("%s: at most %d entries", field, MaxFormListItems))
			out = out[:MaxFormListItems]
		}
		return out
	}
	if p.New {
		p.Name = strings.TrimSpace(r.PostFormValue("name"))
	}
	p.Mode, p.IPs, p.Incl, p.RUA = r.PostFormValue("mode"), r.PostFormValue("ips"), r.PostFormValue("spf_includes"), r.PostFormValue("rua")
	d := dmarcd.SenderDomain{Name: p.Name, Mode: p.Mode, IPs: lines("ips"), SPFIncludes: lines("spf_includes"), RUA: lines("rua")}
	var org accounts.Org
	fmt.Sscan(r.PostFormValue("org"), &p.Org)
	for _, o := range p.Orgs {
		if o.ID == p.Org {
			org = o
		}
	}
	if org.ID == 0 {
		errs = append(errs, "choose an organisation you may add domains to")
	}
	return d, org, errs
}

// saveDomain checks a sender domain's settings and keeps them for org,
// with an entry in the audit log: the errors, none when it is saved.
func (h *Handler) saveDomain(r *http.Request, v *viewer, d dmarcd.SenderDomain, org accounts.Org, isNew bool) []string {
	errs := checkSenderDomain(&d)
	if d.Name != "" && !isNew && !v.scope.CanEdit(d.Name) {
		errs = append(errs, "you may not change "+d.Name)
	}
	if len(errs) > 0 {
		return errs
	}
	if err := h.opts.Accounts.SaveSenderDomain(r.Context(), org.ID, d); err != nil {
		return []string{err.Error()}
	}
	action := "domain.setup"
	if !isNew {
		action = "domain.settings"
	}
	h.audit(r, accounts.AuditEntry{Actor: v.sess.User.Email, Org: org.Name, Action: action, Object: d.Name,
		Detail: fmt.Sprintf("mode %s, %d addresses, %d includes, rua %s", d.Mode, len(d.IPs), len(d.SPFIncludes), strings.Join(d.RUA, " "))})
	h.cache.clear()
	return nil
}

// checkSenderDomain checks the wizard's answers, and writes the name as
// the accounts keep it.
func checkSenderDomain(d *dmarcd.SenderDomain) []string {
	var errs []string
	for _, l := range [][]string{d.IPs, d.SPFIncludes, d.RUA} {
		if len(l) > MaxFormListItems {
			errs = append(errs, fmt.Sprintf("at most %d addresses, includes or report addresses each", MaxFormListItems))
		}
	}
	var err error
	if d.Name, err = accounts.CheckDomain(d.Name); err != nil {
		errs = append(errs, err.Error())
	}
	if d.Mode != dmarcd.ModeOwn && d.Mode != dmarcd.ModeSubdomain {
		errs = append(errs, "choose the whole domain or a subdomain for our mail only")
	}
	for _, ip := range d.IPs {
		if _, err := netip.ParsePrefix(ip); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			errs = append(errs, fmt.Sprintf("%q is neither an address nor a network (CIDR)", ip))
		}
	}
	for _, inc := range d.SPFIncludes {
		if _, err := accounts.CheckDomain(inc); err != nil {
			errs = append(errs, "SPF include: "+err.Error())
		}
	}
	for _, a := range d.RUA {
		uri := a
		if !strings.HasPrefix(strings.ToLower(uri), "mailto:") {
			uri = "mailto:" + uri // a bare address, as [[domain]] takes it
		}
		if _, err := dnsrecord.ReportAddress(uri); err != nil {
			errs = append(errs, fmt.Sprintf("report address %q: %v", a, err))
		}
	}
	if len(d.RUA) == 0 {
		errs = append(errs, "give at least one address for the aggregate reports: without them nothing shows which mail a stricter policy would block")
	}
	return errs
}

// published records that the DMARC record of a rollout step is live: it
// reads the record from DNS, and records the step it says, with who said
// so. The domain's page then shows it.
func (h *Handler) published(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	name, err := pathDomain(r)
	if err != nil {
		h.inputError(w, r, err)
		return
	}
	if v == nil || !v.scope.CanEdit(name) {
		h.notFound(w, r)
		return
	}
	if h.opts.LookupTXT == nil {
		h.fail(w, r, http.StatusNotFound, "No DNS resolver is configured.")
		return
	}
	res, err := h.recordPublished(r, v, name)
	if err != nil {
		h.internal(w, r, "the rollout step", err)
		return
	}
	http.Redirect(w, r, "/domain/"+url.PathEscape(name)+"?note="+url.QueryEscape(res.Message), http.StatusSeeOther)
}

// publishedResult says what "I published it" found in DNS.
type publishedResult struct {
	// Recorded: DNS shows one DMARC record, and its step was recorded.
	Recorded bool   `json:"recorded"`
	Step     string `json:"step,omitempty"`
	Record   string `json:"record,omitempty"`
	Message  string `json:"message"`
}

// recordPublished reads name's DMARC record from DNS and records the step
// it says, with who said so; the error is for a failure of the state file
// or DNS, not for a record that is not there.
func (h *Handler) recordPublished(r *http.Request, v *viewer, name string) (publishedResult, error) {
	txts, err := h.opts.LookupTXT(r.Context(), "_dmarc."+name)
	if err != nil && !errors.Is(err, advisor.ErrNXDomain) {
		return publishedResult{}, err
	}
	records := dnsrecord.SelectDMARC(txts)
	switch len(records) {
	case 0:
		return publishedResult{Message: "DNS shows no DMARC record at _dmarc." + name + " yet: publish it, wait for its TTL, and try again."}, nil
	case 1:
	default:
		return publishedResult{Message: fmt.Sprintf("DNS shows %d DMARC records at _dmarc.%s: receivers then apply none. Keep one.", len(records), name)}, nil
	}
	rec, _, err := dnsrecord.ParseDMARC(records[0])
	if err != nil {
		return publishedResult{Record: records[0], Message: "The DMARC record in DNS does not parse: " + err.Error()}, nil
	}
	step := advisor.StepText(rec.Step(), rec.Testing)
	if err := h.opts.Accounts.RecordPublished(r.Context(), accounts.PublishedStep{Domain: name, Step: step, Record: records[0], Actor: v.sess.User.Email}); err != nil {
		return publishedResult{}, err
	}
	h.audit(r, accounts.AuditEntry{Actor: v.sess.User.Email, Org: h.orgName(r, name), Action: "rollout.published", Object: name, Detail: step + ": " + records[0]})
	h.cache.clear()
	return publishedResult{Recorded: true, Step: step, Record: records[0], Message: "Recorded: " + step + " is live (" + records[0] + ")."}, nil
}

// orgName is the name of the organisation owning domain, for the audit
// log.
func (h *Handler) orgName(r *http.Request, domain string) string {
	id, ok, err := h.opts.Accounts.DomainOwner(r.Context(), domain)
	if err != nil || !ok {
		return ""
	}
	orgs, err := h.opts.Accounts.Orgs(r.Context())
	if err != nil {
		return ""
	}
	for _, o := range orgs {
		if o.ID == id {
			return o.Name
		}
	}
	return ""
}
