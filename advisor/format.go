package advisor

import (
	"fmt"
	"io"
	"strings"

	"github.com/dmarcd/dmarcd/internal/dnsrecord"
	"github.com/dmarcd/dmarcd/internal/figures"
)

// WriteText writes recommendations for a terminal.
func WriteText(w io.Writer, recs []*Recommendation) error {
	for i, r := range recs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s: %s (%s -> %s)\n", r.Domain, strings.ToUpper(string(r.Action)), r.CurrentText(), StepText(r.Next, r.NextTesting))
		for _, reason := range r.Reasons {
			fmt.Fprintf(w, "  - %s\n", reason)
		}
		if r.Record != "" {
			fmt.Fprintf(w, "  publish: %s. IN TXT %s\n", r.RecordName, dnsrecord.Quote(r.Record))
		}
		if r.LiveRecord != "" {
			fmt.Fprintf(w, "  live:    %s\n", r.LiveRecord)
		}
		if r.Explanation != "" && r.Record != "" {
			fmt.Fprintf(w, "  how receivers read it: %s\n", r.Explanation)
		}
		writeBlockers(w, r, "  ")
		writeEvidence(w, r, "  ")
	}
	return nil
}

// writeBlockers writes the senders that hold the rollout, each with its
// fixes.
func writeBlockers(w io.Writer, r *Recommendation, indent string) {
	if len(r.Evidence.Blocking) == 0 {
		return
	}
	fmt.Fprintf(w, "%ssenders to fix:\n", indent)
	for _, b := range r.Evidence.Blocking {
		fmt.Fprintf(w, "%s  %s (%s): %s of %s messages fail, %s of the domain's mail, since %s; %s\n",
			indent, b.Name, b.Class, figures.Count(b.Failing), figures.Count(b.Messages), figures.Share(b.FailingShare), b.Since, strings.Join(b.IPs, ", "))
		for _, f := range b.Fixes {
			fmt.Fprintf(w, "%s    - %s\n", indent, f.Text)
			if f.Record != "" {
				fmt.Fprintf(w, "%s      %s\n", indent, f.Record)
			}
		}
	}
}

func writeEvidence(w io.Writer, r *Recommendation, indent string) {
	e := r.Evidence
	fmt.Fprintf(w, "%sevidence %s..%s: %d days at %s, %s messages, DMARC pass %.1f%%, DKIM aligned %.1f%%, SPF aligned %.1f%%\n",
		indent, e.Window.From, e.Window.To, e.DaysAtStep, StepText(r.Current, r.Testing), figures.Count(e.Messages), 100*e.DMARCPassRate, 100*e.DKIMAlignedRate, 100*e.SPFAlignedRate)
	fmt.Fprintf(w, "%s  authorized senders: %s messages, %.1f%% pass DMARC\n", indent, figures.Count(e.AuthorizedMessages), 100*e.AuthorizedPassRate)
	fmt.Fprintf(w, "%s  failing mail of legitimate senders: %s (%s of the domain's mail; %s in the last days)\n", indent, figures.Count(e.LegitimateFailing), figures.Share(e.LegitimateFailingShare), figures.Share(e.RecentFailingShare))
	fmt.Fprintf(w, "%s  failing mail of forwarders: %s; of spoofing senders: %s\n", indent, figures.Count(e.ForwardedFailing), figures.Count(e.SpoofingFailing))
	if r.Next.Policy != "none" {
		fmt.Fprintf(w, "%s  %s would have applied to about %s messages in the window (%s of them from legitimate senders)\n", indent, r.Next, figures.Count(e.NextWouldAffect), figures.Count(e.NextWouldAffectLegitimate))
	}
	if len(e.Reporters) > 0 {
		names := make([]string, len(e.Reporters))
		for i, rep := range e.Reporters {
			names[i] = fmt.Sprintf("%s (%s)", rep.OrgName, figures.Count(rep.Messages))
		}
		fmt.Fprintf(w, "%s  reporters: %s", indent, strings.Join(names, ", "))
		if e.Formats != "" {
			fmt.Fprintf(w, "; formats: %s", e.Formats)
		}
		fmt.Fprintln(w)
	}
}

// WriteMarkdown writes recommendations as Markdown, for tickets and chat.
func WriteMarkdown(w io.Writer, recs []*Recommendation) error {
	for _, r := range recs {
		fmt.Fprintf(w, "## %s: %s (%s → %s)\n\n", r.Domain, r.Action, r.CurrentText(), StepText(r.Next, r.NextTesting))
		for _, reason := range r.Reasons {
			fmt.Fprintf(w, "- %s\n", reason)
		}
		if r.Record != "" {
			fmt.Fprintf(w, "\nPublish:\n\n```\n%s. IN TXT %s\n```\n\n%s\n", r.RecordName, dnsrecord.Quote(r.Record), r.Explanation)
		}
		fmt.Fprintln(w, "\n<details><summary>Evidence</summary>\n\n```")
		writeBlockers(w, r, "")
		writeEvidence(w, r, "")
		fmt.Fprint(w, "```\n</details>\n\n")
	}
	return nil
}
