package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/advisor/alert"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

type adviseCmd struct {
	Domain []string `help:"Only these domains (repeatable); default every [[domain]] of the config, or every domain with reports." placeholder:"DOMAIN"`
	Format string   `help:"Output: text, json or markdown." enum:"text,json,markdown" default:"text" short:"f"`
	At     string   `help:"Advise as of this day (YYYY-MM-DD, UTC) instead of today: the window of evidence ends the day before. For data that is not recent, such as the samples." placeholder:"DAY"`
}

// Run prints the weekly recommendation: per domain the rollout step, the
// evidence, the record to publish; and the DKIM keys due.
func (c *adviseCmd) Run(e *env) (err error) {
	st, err := e.openStoreReadOnly()
	if err != nil {
		return err
	}
	defer st.Close()
	now, err := e.asOf(c.At)
	if err != nil {
		return err
	}
	w, err := weekly(e, st, c.Domain, now)
	if err != nil {
		return err
	}
	// The domains that failed are said at the end; the others print.
	defer func() {
		if err == nil && len(w.Failed) > 0 {
			for _, f := range w.Failed {
				fmt.Fprintf(e.stderr, "dmarcd: no recommendation for %s: %s\n", f.Domain, f.Error)
			}
			err = &exitError{code: exitFailure, err: fmt.Errorf("%d of %d domains without a recommendation", len(w.Failed), len(w.Failed)+len(w.Recommendations))}
		}
	}()
	switch c.Format {
	case "json":
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(w)
	case "markdown":
		if err := advisor.WriteMarkdown(e.stdout, w.Recommendations); err != nil {
			return err
		}
		if err := writeKeyAdvice(e.stdout, w.Keys, "## DKIM keys\n\n", "- "); err != nil {
			return err
		}
		writeTLS(e.stdout, w.TLS, "\n## SMTP TLS\n\n", "- ")
		return nil
	}
	if err := advisor.WriteText(e.stdout, w.Recommendations); err != nil {
		return err
	}
	if err := writeKeyAdvice(e.stdout, w.Keys, "\nDKIM keys:\n", "  "); err != nil {
		return err
	}
	writeTLS(e.stdout, w.TLS, "\nSMTP TLS (what sending servers saw of your MX hosts):\n", "  ")
	return nil
}

// writeTLS prints the TLS sessions of the advised domains per policy.
func writeTLS(w io.Writer, policies []analyze.TLSPolicy, heading, bullet string) {
	if len(policies) == 0 {
		return
	}
	fmt.Fprint(w, heading)
	for _, p := range policies {
		fmt.Fprintf(w, "%s%s %s: %d sessions from %d reporters, %.2f%% failed\n", bullet, p.Domain, p.Type, p.Successful+p.Failed, p.Reporters, 100*p.FailureRate())
	}
}

func writeKeyAdvice(w io.Writer, keys []advisor.KeyAdvice, heading, bullet string) error {
	if len(keys) == 0 {
		return nil
	}
	fmt.Fprint(w, heading)
	for _, k := range keys {
		state := string(k.Key.State)
		if k.Ready && k.Next != "" {
			state += " -> " + string(k.Next) + " (ready: dmarcd keys advance)"
		}
		if k.RotationDue {
			state += " [rotation due]"
		}
		fmt.Fprintf(w, "%s%s %s: %s. %s\n", bullet, k.Key.Domain, k.Key.Selector, state, k.Reason)
	}
	return nil
}

// weekly computes the content of the weekly recommendation: the same
// objects `dmarcd advise` prints, Slack receives and the web page shows.
func weekly(e *env, st dmarcd.Store, only []string, now time.Time) (alert.Weekly, error) {
	w := alert.Weekly{At: now}
	a, err := newAdvisor(e, st)
	if err != nil {
		return w, err
	}
	a.Now = func() time.Time { return now }
	domains, err := adviseDomains(e, st, only)
	if err != nil {
		return w, err
	}
	for _, d := range domains {
		rec, err := a.Recommend(e.ctx, d)
		if err != nil {
			if e.ctx.Err() != nil {
				return w, e.ctx.Err()
			}
			e.log.Error("no recommendation for a domain", "domain", d.Name, "err", err)
			w.Failed = append(w.Failed, alert.DomainFailure{Domain: d.Name, Error: e.redact.text(err.Error())})
			continue
		}
		w.Recommendations = append(w.Recommendations, rec)
		policies, _, err := analyze.TLS(e.ctx, st, d.Name, rec.Evidence.Window)
		if err != nil {
			return w, err
		}
		w.TLS = append(w.TLS, policies...)
	}
	w.Keys, err = keyAdvice(e, st)
	return w, err
}

// adviseDomains are the domains to advise on: the ones asked for, else the
// watched ones (the [[domain]] tables and the dashboard's), else every
// domain of the stored reports.
func adviseDomains(e *env, st dmarcd.Store, only []string) ([]dmarcd.SenderDomain, error) {
	var out []dmarcd.SenderDomain
	if len(only) > 0 {
		for _, name := range only {
			out = append(out, configuredDomain(e.cfg, name))
		}
		return out, nil
	}
	watched, err := watchedDomains(e)
	if err != nil || len(watched) > 0 {
		return watched, err
	}
	compliance, err := analyze.Domains(e.ctx, st)
	if err != nil {
		return nil, err
	}
	for _, c := range compliance {
		out = append(out, dmarcd.SenderDomain{Name: c.Domain})
	}
	return out, nil
}

// newAdvisor builds the rollout advisor of the configuration.
func newAdvisor(e *env, st dmarcd.Store) (*advisor.Advisor, error) {
	r, err := newResolver(e.cfg.DNS)
	if err != nil {
		return nil, err
	}
	classifiers, err := newClassifiers(e, r)
	if err != nil {
		return nil, err
	}
	return &advisor.Advisor{Store: st, Lookup: advisor.LookupDMARC(r), DNS: r, Gates: e.cfg.Advisor, Classifier: classifiers, Now: e.now,
		DefaultRUA: defaultRUA(e.cfg)}, nil
}

// newClassifiers returns, per sender domain, the classifier of its
// sources: our servers and the domain's, our selectors and the domain's,
// reverse DNS through the resolver.
func newClassifiers(e *env, r *advisor.Resolver) (func(dmarcd.SenderDomain) *analyze.Classifier, error) {
	ours, err := analyze.ParseNetworks(e.cfg.Sending.IPs)
	if err != nil {
		return nil, err
	}
	keys, err := storedKeys(e.cfg)
	if err != nil {
		return nil, err
	}
	cat, err := e.cfg.catalogue()
	if err != nil {
		return nil, err
	}
	return func(d dmarcd.SenderDomain) *analyze.Classifier {
		nets, _ := analyze.ParseNetworks(d.IPs) // validated with the config
		selectors := slices.Clone(d.Selectors)
		for _, k := range keys {
			if strings.EqualFold(k.Domain, d.Name) {
				selectors = append(selectors, k.Selector)
			}
		}
		return &analyze.Classifier{Networks: append(slices.Clone(ours), nets...), Selectors: selectors, Resolver: r, Catalogue: cat,
			SPFIncludes: append(slices.Clone(e.cfg.Sending.SPFIncludes), d.SPFIncludes...), NotOurs: d.NotOurs}
	}, nil
}

// configuredKeyStore opens the key store of the config; nil when there is
// none.
func configuredKeyStore(cfg Config) (*keystore.Store, error) {
	if cfg.Keys.Dir == "" {
		return nil, nil
	}
	if _, err := os.Stat(cfg.Keys.Dir); err != nil {
		return nil, nil
	}
	return keystore.Open(cfg.Keys.Dir)
}

// storedKeys lists the key store's keys whose metadata reads; none when
// there is no key store. Broken keys are unusableKeys' to tell.
func storedKeys(cfg Config) ([]dmarcd.Key, error) {
	ks, err := configuredKeyStore(cfg)
	if ks == nil || err != nil {
		return nil, err
	}
	keys, _, err := ks.Scan()
	return keys, err
}

// unusableKeys are the keys that should sign and cannot, as the signer
// sees them.
func unusableKeys(cfg Config) ([]alert.UnusableKey, error) {
	ks, err := configuredKeyStore(cfg)
	if ks == nil || err != nil {
		return nil, err
	}
	_, problems, err := ks.SigningKeys()
	if err != nil {
		return nil, err
	}
	out := make([]alert.UnusableKey, len(problems))
	for i, p := range problems {
		_, domain, _ := strings.Cut(p.ID, "._domainkey.")
		out[i] = alert.UnusableKey{Domain: domain, ID: p.ID, Reason: p.Err.Error()}
	}
	return out, nil
}

// keyAdvice is the rotation advice for the stored keys.
func keyAdvice(e *env, st dmarcd.Store) ([]advisor.KeyAdvice, error) {
	keys, err := storedKeys(e.cfg)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	a := &advisor.KeyAdvisor{Policy: e.cfg.Keys.policy(), Lookup: txtLookup(e.cfg.DNS), Store: st, Now: e.now}
	return a.Advise(e.ctx, keys)
}
