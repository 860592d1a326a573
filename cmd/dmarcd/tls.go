package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/dmarcd/dmarcd/analyze"
)

type tlsCmd struct {
	Domain      string `arg:"" optional:"" help:"Only this policy domain."`
	windowFlags `embed:"" set:"days=30"`
	Format      string `help:"Output: table or json." enum:"table,json" default:"table" short:"f"`
}

// maxTLSFailureRows bounds the failure rows of the table output.
const maxTLSFailureRows = 20

// Run prints what the SMTP TLS reports say: per policy domain and policy
// type the sessions that succeeded and failed, then the failures by kind
// and receiving host.
func (c *tlsCmd) Run(e *env) error {
	st, w, err := openAnalysis(e, c.windowFlags)
	if err != nil {
		return err
	}
	defer st.Close()
	policies, failures, err := analyze.TLS(e.ctx, st, strings.ToLower(strings.TrimSuffix(c.Domain, ".")), w)
	if err != nil {
		return err
	}
	if c.Format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Window   analyze.Window       `json:"window"`
			Policies []analyze.TLSPolicy  `json:"policies"`
			Failures []analyze.TLSFailure `json:"failures"`
		}{w, nonNilSlice(policies), nonNilSlice(failures)})
	}
	if len(policies) == 0 {
		fmt.Fprintf(e.stdout, "no SMTP TLS reports from %s to %s\n", w.From, w.To)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "policy domain\tpolicy\treports\treporters\tsessions ok\tfailed\tfailure rate")
	for _, p := range policies {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.2f%%\n", orDash(p.Domain), p.Type, p.Reports, p.Reporters, p.Successful, p.Failed, 100*p.FailureRate())
	}
	if len(failures) > 0 {
		fmt.Fprintln(tw, "\npolicy domain\tfailure\treceiving MX\tsessions")
		for i, f := range failures {
			if i == maxTLSFailureRows {
				fmt.Fprintf(tw, "... %d more (--format json lists them all)\n", len(failures)-i)
				break
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", orDash(f.Domain), f.ResultType, orDash(f.ReceivingMX), f.Sessions)
		}
	}
	return tw.Flush()
}

// nonNilSlice makes JSON say [] rather than null.
func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
