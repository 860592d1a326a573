package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
)

type checkCmd struct {
	Domain string `arg:"" help:"The sender domain to check; its [[domain]] table is used when the config file has one (then an sp= or np= weaker than the rollout's end, p=reject, is warned about)."`
	Format string `help:"Output: text or json." enum:"text,json" default:"text" short:"f"`
}

// Run checks the live DNS of a domain; exit 1 when a finding is an error.
func (c *checkCmd) Run(e *env) error {
	d, configured := lookupConfigured(e.cfg, c.Domain)
	r, err := newResolver(e.cfg.DNS)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	keys, err := dkimKeys(e.cfg, d.Name)
	if err != nil {
		return err
	}
	opts := advisor.CheckOptions{DKIM: keys, Ours: ourSPF(e.cfg.Sending)}
	if configured {
		// The rollout of a configured domain ends at p=reject: an sp= or
		// np= below it leaves subdomains or non-existent names open.
		opts.IntendedPolicy = dmarcd.PolicyReject
	}
	fs, err := advisor.Check(e.ctx, r, d, opts)
	if err != nil {
		if e.ctx.Err() == nil {
			return &exitError{code: exitUsage, err: err}
		}
		return err
	}
	order := map[advisor.Severity]int{advisor.SeverityError: 0, advisor.SeverityWarning: 1, advisor.SeverityInfo: 2}
	slices.SortStableFunc(fs, func(a, b advisor.Finding) int { return cmp.Compare(order[a.Severity], order[b.Severity]) })
	if c.Format == "json" {
		err = writeFindingsJSON(e.stdout, d.Name, fs)
	} else {
		err = writeFindings(e.stdout, d.Name, fs)
	}
	if err != nil {
		return err
	}
	if advisor.HasErrors(fs) {
		return &exitError{code: exitFailure}
	}
	return nil
}

func countSeverity(fs []advisor.Finding, s advisor.Severity) int {
	n := 0
	for _, f := range fs {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// writeFindings prints the findings for people: a summary line, then each
// finding with the name it concerns and what to do.
func writeFindings(w io.Writer, domain string, fs []advisor.Finding) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d errors, %d warnings, %d notes\n", domain,
		countSeverity(fs, advisor.SeverityError), countSeverity(fs, advisor.SeverityWarning), countSeverity(fs, advisor.SeverityInfo))
	for _, f := range fs {
		fmt.Fprintf(&b, "\n%-7s %s  [%s]\n", strings.ToUpper(string(f.Severity)), f.Name, f.Code)
		fmt.Fprintf(&b, "        %s\n", f.Message)
		if f.Advice != "" {
			fmt.Fprintf(&b, "        -> %s\n", f.Advice)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFindingsJSON(w io.Writer, domain string, fs []advisor.Finding) error {
	if fs == nil {
		fs = []advisor.Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Domain   string            `json:"domain"`
		Errors   int               `json:"errors"`
		Warnings int               `json:"warnings"`
		Findings []advisor.Finding `json:"findings"`
	}{domain, countSeverity(fs, advisor.SeverityError), countSeverity(fs, advisor.SeverityWarning), fs})
}

// configuredDomain is the [[domain]] table of name, or a domain of mode
// own without other senders when the config has none.
func configuredDomain(cfg Config, name string) dmarcd.SenderDomain {
	d, _ := lookupConfigured(cfg, name)
	return d
}

// lookupConfigured is configuredDomain, and whether the config file has
// a [[domain]] table for name.
func lookupConfigured(cfg Config, name string) (dmarcd.SenderDomain, bool) {
	name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
	for _, d := range cfg.Domains {
		if strings.EqualFold(strings.TrimSuffix(d.Name, "."), name) {
			d.Name = name
			return d, true
		}
	}
	return dmarcd.SenderDomain{Name: name, Mode: dmarcd.ModeOwn}, false
}

// newResolver is the resolver of the [dns] table.
func newResolver(cfg DNSConfig) (*advisor.Resolver, error) {
	return advisor.NewResolver(cfg.Resolver, time.Duration(cfg.TimeoutSeconds)*time.Second)
}

// dkimKeys are the key records of the domain's keys in the key store
// (keys.dir) that belong in DNS; none when there is no key store.
func dkimKeys(cfg Config, domain string) ([]advisor.DKIMPublicKey, error) {
	keys, err := storedKeys(cfg)
	if err != nil {
		return nil, err
	}
	var out []advisor.DKIMPublicKey
	for _, k := range keys {
		if !strings.EqualFold(k.Domain, domain) || k.State == dmarcd.KeyDeleted {
			continue
		}
		out = append(out, advisor.DKIMPublicKey{Selector: k.Selector, Value: k.TXT()})
	}
	return out, nil
}
