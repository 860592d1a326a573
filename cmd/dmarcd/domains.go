package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
)

type domainsCmd struct {
	Domain []string `arg:"" optional:"" help:"Only these domains."`
}

func (c *domainsCmd) Run(e *env) error {
	st, err := e.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	domains, err := analyze.Domains(e.ctx, st, c.Domain...)
	if err != nil {
		return err
	}
	printCompliance(e.stdout, domains)
	return nil
}

// printCompliance prints per-domain compliance as an aligned table.
func printCompliance(w io.Writer, domains []analyze.DomainCompliance) {
	if len(domains) == 0 {
		fmt.Fprintln(w, "no aggregate reports stored")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "domain\tfrom\tto\treports\treporters\tmessages\tDMARC pass\tDKIM aligned\tSPF aligned\tquarantined\trejected\t")
	for _, d := range domains {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t%d\t%d\t\n",
			d.Domain, d.FirstDay, d.LastDay, d.Reports, d.Reporters, d.Messages,
			100*d.PassRate(), 100*d.DKIMRate(), 100*d.SPFRate(), d.Quarantined, d.Rejected)
	}
	tw.Flush()
}

type sourcesCmd struct {
	Domain string `arg:"" help:"The policy domain."`
	Days   int    `help:"Days of reports, ending yesterday." default:"7"`
	Format string `help:"Output: table or json." enum:"table,json" default:"table" short:"f"`
}

// Run prints the sources that sent mail as the domain, with their class,
// reverse DNS and results.
func (c *sourcesCmd) Run(e *env) error {
	st, w, err := openAnalysis(e, c.Days)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := newResolver(e.cfg.DNS)
	if err != nil {
		return err
	}
	classify, err := newClassifiers(e, r)
	if err != nil {
		return err
	}
	sources, err := classify(configuredDomain(e.cfg, c.Domain)).Sources(e.ctx, st, strings.ToLower(c.Domain), w)
	if err != nil {
		return err
	}
	if c.Format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sources)
	}
	if len(sources) == 0 {
		fmt.Fprintf(e.stdout, "no reports for %s from %s to %s\n", c.Domain, w.From, w.To)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "source\tclass\treverse DNS\tmessages\tDMARC pass\tDKIM aligned\tSPF aligned\tfailing\tseen\twhy")
	for _, s := range sources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t%d\t%s..%s\t%s\n", s.IP, s.Class, orDash(s.PTR), s.Messages,
			100*s.PassRate(), 100*s.DKIMRate(), 100*s.SPFRate(), s.Failing(), s.FirstDay, s.LastDay, s.Why)
	}
	return tw.Flush()
}

type dailyCmd struct {
	Domain string `arg:"" help:"The policy domain."`
	Days   int    `help:"Days of reports, ending yesterday." default:"30"`
}

// Run prints the domain's compliance day by day.
func (c *dailyCmd) Run(e *env) error {
	st, w, err := openAnalysis(e, c.Days)
	if err != nil {
		return err
	}
	defer st.Close()
	days, err := analyze.Daily(e.ctx, st, strings.ToLower(c.Domain), w)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "day\tmessages\tDMARC pass\tDKIM aligned\tSPF aligned\tquarantined\trejected")
	for _, d := range days {
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t%d\t%d\n", d.Day, d.Messages, 100*d.PassRate(),
			100*d.DKIMRate(), 100*d.SPFRate(), d.Quarantined, d.Rejected)
	}
	return tw.Flush()
}

// maxAnalysisDays bounds the window of the analysis commands.
const maxAnalysisDays = 3660

// openAnalysis checks --days and opens the store for an analysis command
// over the days that end yesterday.
func openAnalysis(e *env, days int) (dmarcd.Store, analyze.Window, error) {
	if days < 1 || days > maxAnalysisDays {
		return nil, analyze.Window{}, &exitError{code: exitUsage, err: fmt.Errorf("--days must be within 1..%d", maxAnalysisDays)}
	}
	st, err := e.openStore()
	return st, lastDays(days), err
}

// lastDays is the window of the n days that end yesterday: reports cover
// whole days and arrive the day after.
func lastDays(n int) analyze.Window {
	end := time.Now().UTC().AddDate(0, 0, -1)
	return analyze.Window{From: end.AddDate(0, 0, 1-n).Format(time.DateOnly), To: end.Format(time.DateOnly)}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
