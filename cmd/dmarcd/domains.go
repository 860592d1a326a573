package main

import (
	"fmt"
	"io"
	"text/tabwriter"

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
