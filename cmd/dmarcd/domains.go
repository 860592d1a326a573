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
	st, err := e.openStoreReadOnly()
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
	fmt.Fprintln(tw, "domain\tfrom\tto\treports\treporters\tmessages\tDMARC pass\tDKIM aligned\tSPF aligned\tdisp. quarantine\tdisp. reject\t")
	for _, d := range domains {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t%d\t%d\t\n",
			d.Domain, d.FirstDay, d.LastDay, d.Reports, d.Reporters, d.Messages,
			100*d.PassRate(), 100*d.DKIMRate(), 100*d.SPFRate(), d.Quarantined, d.Rejected)
	}
	tw.Flush()
}

type sourcesCmd struct {
	Domain      string `arg:"" help:"The policy domain."`
	windowFlags `embed:"" set:"days=7"`
	Format      string `help:"Output: table or json." enum:"table,json" default:"table" short:"f"`
}

// Run prints the sources that sent mail as the domain, with their class,
// reverse DNS and results.
func (c *sourcesCmd) Run(e *env) error {
	st, w, err := openAnalysis(e, c.windowFlags)
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
		fmt.Fprintln(e.stdout, noReports(e, st, strings.ToLower(c.Domain), w))
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
	Domain      string `arg:"" help:"The policy domain."`
	windowFlags `embed:"" set:"days=30"`
}

// Run prints the domain's compliance day by day.
func (c *dailyCmd) Run(e *env) error {
	st, w, err := openAnalysis(e, c.windowFlags)
	if err != nil {
		return err
	}
	defer st.Close()
	days, err := analyze.Daily(e.ctx, st, strings.ToLower(c.Domain), w)
	if err != nil {
		return err
	}
	if len(days) == 0 {
		fmt.Fprintln(e.stdout, noReports(e, st, strings.ToLower(c.Domain), w))
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "day\tmessages\tDMARC pass\tDKIM aligned\tSPF aligned\tdisp. quarantine\tdisp. reject")
	for _, d := range days {
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.1f%%\t%.1f%%\t%d\t%d\n", d.Day, d.Messages, 100*d.PassRate(),
			100*d.DKIMRate(), 100*d.SPFRate(), d.Quarantined, d.Rejected)
	}
	return tw.Flush()
}

// maxAnalysisDays bounds the window of the analysis commands.
const maxAnalysisDays = 3660

// windowFlags are the flags of the windowed analysis commands: --days
// ending the day before --at (today by default).
type windowFlags struct {
	Days int    `help:"Days of reports, ending the day before --at (yesterday by default)." default:"${days}"`
	At   string `help:"As of this day (YYYY-MM-DD, UTC) instead of today: the window ends the day before. For data that is not recent, such as the samples." placeholder:"DAY"`
}

// openAnalysis checks the window flags and opens the store for an analysis
// command over the days that end the day before --at.
func openAnalysis(e *env, f windowFlags) (dmarcd.Store, analyze.Window, error) {
	if f.Days < 1 || f.Days > maxAnalysisDays {
		return nil, analyze.Window{}, &exitError{code: exitUsage, err: fmt.Errorf("--days must be within 1..%d", maxAnalysisDays)}
	}
	at, err := e.asOf(f.At)
	if err != nil {
		return nil, analyze.Window{}, err
	}
	st, err := e.openStoreReadOnly()
	return st, lastDays(at, f.Days), err
}

// asOf is the moment a command looks from: now, or noon (UTC) of the day
// given with --at.
func (e *env) asOf(day string) (time.Time, error) {
	if day == "" {
		return e.now(), nil
	}
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return time.Time{}, &exitError{code: exitUsage, err: fmt.Errorf("--at: %q is not a day (YYYY-MM-DD)", day)}
	}
	return t.Add(12 * time.Hour), nil
}

// lastDays is the window of the n days that end the day before at: reports
// cover whole days and arrive the day after.
func lastDays(at time.Time, n int) analyze.Window {
	end := at.UTC().AddDate(0, 0, -1)
	return analyze.Window{From: end.AddDate(0, 0, 1-n).Format(time.DateOnly), To: end.Format(time.DateOnly)}
}

// noReports says that a window holds no reports of a domain and, when the
// store has older ones, where the last of them is, so that a user of old
// data knows which --at to give.
func noReports(e *env, st dmarcd.Store, domain string, w analyze.Window) string {
	msg := fmt.Sprintf("no reports for %s from %s to %s", domain, w.From, w.To)
	all, err := analyze.Domains(e.ctx, st, domain)
	if err != nil || len(all) == 0 || all[0].LastDay == "" {
		return msg
	}
	last, err := time.Parse(time.DateOnly, all[0].LastDay)
	if err != nil {
		return msg
	}
	return fmt.Sprintf("%s; the last report covers %s (try --at %s)", msg, all[0].LastDay, last.AddDate(0, 0, 1).Format(time.DateOnly))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
