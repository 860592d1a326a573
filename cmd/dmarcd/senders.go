package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/figures"
)

type sendersCmd struct {
	Domain      string `arg:"" help:"The policy domain."`
	windowFlags `embed:"" set:"days=30"`
	Format      string `help:"Output: table or json." enum:"table,json" default:"table" short:"f"`
}

// maxSpoofingRows bounds the spoofing senders the table lists one by one;
// the rest are summed.
const maxSpoofingRows = 5

// senderView is a sender with its fixes, as senders --format json writes
// it.
type senderView struct {
	analyze.Sender
	Fixes []advisor.Fix `json:"fixes,omitempty"`
}

// Run prints the sender inventory of a domain: who sends as it, their
// class and results, and for the legitimate ones that fail, the fixes.
func (c *sendersCmd) Run(e *env) error {
	st, w, err := openAnalysis(e, c.windowFlags)
	if err != nil {
		return err
	}
	defer st.Close()
	domain := strings.ToLower(strings.TrimSuffix(c.Domain, "."))
	a, err := newAdvisor(e, st)
	if err != nil {
		return err
	}
	inv, err := a.Classifier(configuredDomain(e.cfg, domain)).Inventory(e.ctx, st, domain, w)
	if err != nil {
		return err
	}
	fixes, err := a.Fixes(e.ctx, domain, inv)
	if err != nil {
		return err
	}
	if c.Format == "json" {
		views := make([]senderView, len(inv.Senders))
		for i, s := range inv.Senders {
			views[i] = senderView{Sender: s, Fixes: fixes[s.ID]}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Domain   string         `json:"domain"`
			Window   analyze.Window `json:"window"`
			Messages int64          `json:"messages"`
			Senders  []senderView   `json:"senders"`
		}{domain, w, inv.Messages, nonNilSlice(views)})
	}
	if len(inv.Senders) == 0 {
		fmt.Fprintln(e.stdout, noReports(e, st, domain, w))
		return nil
	}
	fmt.Fprintf(e.stdout, "Senders of %s, %s to %s: %s messages\n\n", domain, w.From, w.To, figures.Count(inv.Messages))
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "sender\tclass\tmessages\tshare\tDMARC pass\tfailing\taddresses\tauthenticates as\tseen\tdays")
	var spoofing, spoofingMessages, spoofingRows int64
	for _, s := range inv.Senders {
		if s.Class == analyze.Spoofing && !s.NotOurs {
			spoofing++
			spoofingMessages += s.Messages
			if spoofingRows >= maxSpoofingRows {
				continue
			}
			spoofingRows++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f%%\t%s\t%d\t%s\t%s..%s\t%d\n", s.Name, s.Class, figures.Count(s.Messages), figures.Share(s.Share),
			100*s.PassRate(), figures.Count(s.Failing()), s.IPCount, orDash(authText(s)), s.FirstDay, s.LastDay, s.Days)
	}
	if rest := spoofing - spoofingRows; rest > 0 {
		fmt.Fprintf(tw, "... %d more spoofing senders\t\t\t\t\t\t\t\t\t\n", rest)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nspoofing: %d senders, %s messages\n", spoofing, figures.Count(spoofingMessages))
	for _, s := range inv.Senders {
		fs := fixes[s.ID]
		if len(fs) == 0 {
			continue
		}
		fmt.Fprintf(e.stdout, "\n%s (%s): %s of %s messages fail DMARC (%s of the domain's mail) since %s\n  why: %s\n",
			s.Name, s.Class, figures.Count(s.Failing()), figures.Count(s.Messages), figures.Share(s.FailingShare(inv.Messages)), s.FirstFailDay, s.Why)
		for _, f := range fs {
			fmt.Fprintf(e.stdout, "  - %s\n", f.Text)
			if f.Record != "" {
				fmt.Fprintf(e.stdout, "    %s\n", f.Record)
			}
		}
	}
	return nil
}

// authText lists what a sender authenticates as: d= with selectors, and
// SPF domains.
func authText(s analyze.Sender) string {
	var parts []string
	for _, d := range s.DKIMDomains {
		p := "d=" + d.Domain
		if len(d.Selectors) > 0 {
			p += " (" + strings.Join(d.Selectors, ",") + ")"
		}
		parts = append(parts, p)
	}
	for _, d := range s.SPFDomains {
		parts = append(parts, "spf="+d.Domain)
	}
	return strings.Join(parts, " ")
}
