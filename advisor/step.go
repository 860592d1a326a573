package advisor

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dmarcd/dmarcd"
)

// tag is one tag=value pair of a DMARC record, in record order.
type tag struct{ name, value string }

// parseTags splits a DMARC record into its tags (RFC 9989 §4.7: tag-list
// of "tag=value" separated by ";"). It does not validate: checks do.
func parseTags(record string) []tag {
	var out []tag
	for _, part := range strings.Split(record, ";") {
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		out = append(out, tag{strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)})
	}
	return out
}

func tagValue(tags []tag, name string) string {
	for _, t := range tags {
		if t.name == name {
			return t.value
		}
	}
	return ""
}

// stepOf reads the rollout step of a record: p= and pct= (100 when absent,
// RFC 7489 §6.3). No record is p=none.
func stepOf(tags []tag) dmarcd.RolloutStep {
	p := dmarcd.Policy(strings.ToLower(tagValue(tags, "p")))
	if p != dmarcd.PolicyQuarantine && p != dmarcd.PolicyReject {
		return dmarcd.RolloutStep{Policy: dmarcd.PolicyNone, Percent: 100}
	}
	pct := 100
	if v := tagValue(tags, "pct"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 100 {
			pct = n
		}
	}
	return dmarcd.RolloutStep{Policy: p, Percent: pct}
}

// buildRecord writes the record for step, keeping the live record's other
// tags (rua, ruf, sp, np, adkim, aspf, fo, psd) in their order. Below 100%
// the record carries pct=N together with t=y; at 100% both go:
//
//   - RFC 7489 receivers apply p to pct% of the failing mail and the next
//     lower policy to the rest (RFC 7489 §6.3).
//   - RFC 9989 receivers ignore pct; t=y tells them the domain is testing,
//     and they apply the next lower policy to all failing mail: quarantine
//     becomes none, reject becomes quarantine (RFC 9989 §4.7, t tag).
//
// Without t=y, an RFC 9989 receiver would apply p=quarantine; pct=5 to all
// failing mail. The removed RFC 7489 tags rf and ri are dropped.
func buildRecord(live []tag, step dmarcd.RolloutStep, d dmarcd.SenderDomain) string {
	parts := []string{"v=DMARC1", "p=" + string(step.Policy)}
	if step.Policy != dmarcd.PolicyNone && step.Percent < 100 {
		parts = append(parts, fmt.Sprintf("pct=%d", step.Percent), "t=y")
	}
	haveRUA := false
	for _, t := range live {
		switch t.name {
		case "v", "p", "pct", "t", "rf", "ri":
			continue
		case "rua":
			haveRUA = true
		}
		parts = append(parts, t.name+"="+t.value)
	}
	if !haveRUA && len(d.RUA) > 0 {
		parts = append(parts, "rua="+mailtoList(d.RUA))
	}
	return strings.Join(parts, "; ")
}

// mailtoList writes report addresses as a DMARC URI list.
func mailtoList(addrs []string) string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		if !strings.Contains(a, ":") {
			a = "mailto:" + a
		}
		out[i] = a
	}
	return strings.Join(out, ",")
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
