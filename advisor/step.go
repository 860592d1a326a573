package advisor

import (
	"fmt"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// buildRecord writes the record for step from the live record, keeping its
// other tags (rua, ruf, sp, np, adkim, aspf, fo, psd and unknown ones;
// invalid values are dropped, as receivers ignore them). Below 100% the
// record carries pct=N together with t=y; at 100% both go:
//
//   - RFC 7489 receivers apply p to pct% of the failing mail and the next
//     lower policy to the rest (RFC 7489 §6.3).
//   - RFC 9989 receivers ignore pct; t=y tells them the domain is testing,
//     and they apply the next lower policy to all failing mail: quarantine
//     becomes none, reject becomes quarantine (RFC 9989 §4.7, t tag).
//
// Without t=y, an RFC 9989 receiver would apply p=quarantine; pct=5 to all
// failing mail. The removed RFC 7489 tags rf and ri are dropped. Without a
// report address in the live record, the domain's configured ones are
// added.
func buildRecord(live *dnsrecord.DMARCRecord, step dmarcd.RolloutStep, d dmarcd.SenderDomain) string {
	r := dnsrecord.DMARCRecord{}
	if live != nil {
		r = *live
	}
	r.Policy, r.Percent, r.Testing = step.Policy, nil, false
	if step.Policy != dmarcd.PolicyNone && step.Percent < 100 {
		n := step.Percent
		r.Percent, r.Testing = &n, true
	}
	r.ReportFormat, r.ReportInterval = "", nil
	if len(r.RUA) == 0 && len(d.RUA) > 0 {
		r.RUA = dnsrecord.MailtoURIs(d.RUA)
	}
	return r.String()
}

// explain says how the record of step reads to both kinds of receivers.
func explain(step dmarcd.RolloutStep) string {
	switch {
	case step.Policy == dmarcd.PolicyNone:
		return "p=none asks receivers only to report: nothing is quarantined or rejected."
	case step.Percent < 100:
		lower := "none (report only)"
		if step.Policy == dmarcd.PolicyReject {
			lower = "quarantine"
		}
		return fmt.Sprintf("RFC 7489 receivers apply p=%s to %d%% of the mail that fails DMARC (pct=%d) and the next lower policy to the rest. "+
			"RFC 9989 receivers ignore pct: t=y tells them the policy is being tested, and they apply %s to all failing mail instead. "+
			"Without t=y they would apply p=%s to all of it. Both tags go when the step reaches 100%%.",
			step.Policy, step.Percent, step.Percent, lower, step.Policy)
	}
	return fmt.Sprintf("All receivers apply p=%s to all mail that fails DMARC.", step.Policy)
}
