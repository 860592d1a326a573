package alert

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// DNSDrift alerts when a published record is no longer what dmarcd
// recommended: the SPF record lost our servers, a DKIM key record changed
// or went away, a report authorization record is missing, the DMARC record
// is gone, doubled, or no longer sends reports to us. The DMARC policy
// itself moves with the rollout and is the advisor's business, not drift.
func DNSDrift(r advisor.DNS, domains []dmarcd.SenderDomain, ours advisor.SPFAdditions, dkim func(dmarcd.SenderDomain) ([]advisor.DKIMPublicKey, error)) Detector {
	var ds []Domain
	for _, d := range domains {
		ds = append(ds, Domain{SenderDomain: d})
	}
	return perDomain([]dmarcd.AlertKind{dmarcd.AlertDNSDrift}, ds, func(ctx context.Context, now time.Time, dom Domain) ([]dmarcd.Alert, error) {
		d := dom.SenderDomain
		var out []dmarcd.Alert
		{
			keys, err := dkim(d)
			if err != nil {
				return nil, err
			}
			plan, err := advisor.PlanDomain(ctx, r, advisor.DomainSetup{Domain: d, Ours: ours, DKIM: keys})
			if err != nil {
				return nil, fmt.Errorf("planning the records of %s: %w", d.Name, err)
			}
			diffs, err := advisor.Drift(ctx, r, plan)
			if err != nil {
				return nil, err
			}
			for _, diff := range diffs {
				if diff.Purpose == advisor.PurposeDMARC && diff.Kind == advisor.DriftDiffers && reportsStillReachUs(diff.Live, d.RUA) {
					continue
				}
				out = append(out, dmarcd.Alert{
					Domain: d.Name, Kind: dmarcd.AlertDNSDrift, Subject: diff.Purpose + ":" + diff.Name, Onset: true,
					Title:  fmt.Sprintf("The %s record of %s is not what dmarcd recommended", strings.ToUpper(diff.Purpose), d.Name),
					Text:   diff.String(),
					Facts:  []dmarcd.Fact{{Label: "Name", Value: diff.Name}, {Label: "Problem", Value: diff.Kind}},
					Action: "Publish the record again (dmarcd domain add " + d.Name + " prints it), or check who changed it.",
				})
			}
		}
		return out, nil
	})
}

// reportsStillReachUs says whether a live DMARC record still sends
// aggregate reports to every configured rua address.
func reportsStillReachUs(live []string, rua []string) bool {
	if len(live) != 1 {
		return false
	}
	rec, _, err := dnsrecord.ParseDMARC(live[0])
	if err != nil {
		return false
	}
	for _, want := range rua {
		want = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(want), "mailto:"))
		found := false
		for _, u := range rec.RUA {
			addr, err := dnsrecord.ReportAddress(u)
			found = found || err == nil && strings.EqualFold(addr, want)
		}
		if !found {
			return false
		}
	}
	return true
}
