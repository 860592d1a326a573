package advisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// Fix is one thing to do so that a sender's mail passes DMARC: what to do,
// and where it applies the record to publish, as a zone file line.
type Fix struct {
	Text   string `json:"text"`
	Record string `json:"record,omitempty"`
}

// MaxBlockers bounds the blocking senders a recommendation names, the most
// failing mail first.
const MaxBlockers = 10

// maxSPFFixIPs bounds the addresses a fix proposes to list in SPF.
const maxSPFFixIPs = 8

// blockers lists the legitimate senders whose failing mail counts against
// the gates, with what would fix each.
func (a *Advisor) blockers(ctx context.Context, d dmarcd.SenderDomain, inv *analyze.Inventory, rec *Recommendation) error {
	spf := &liveSPF{}
	var bs []Blocker
	for i := range inv.Senders {
		s := &inv.Senders[i]
		if !s.Class.Legitimate() || s.Failing() < max(a.Gates.MinSourceMessages, 1) {
			continue
		}
		bs = append(bs, Blocker{
			ID: s.ID, Name: s.Name, Class: s.Class, Why: s.Why, Messages: s.Messages, Failing: s.Failing(),
			FailingShare: s.FailingShare(inv.Messages), RecentShare: s.RecentShare, Since: s.FirstFailDay,
			IPs: s.IPs[:min(len(s.IPs), 5)],
		})
	}
	slices.SortStableFunc(bs, func(x, y Blocker) int { return cmp.Compare(y.Failing, x.Failing) })
	if len(bs) > MaxBlockers {
		bs = bs[:MaxBlockers]
	}
	for i := range bs {
		s := senderByID(inv, bs[i].ID)
		fixes, err := a.fixes(ctx, d.Name, s, spf)
		if err != nil {
			return err
		}
		bs[i].Fixes = fixes
	}
	rec.Evidence.Blocking = bs
	return nil
}

// Fixes returns, per sender ID, what makes the mail of each legitimate
// sender of the inventory that fails DMARC pass (see fixes), for
// `dmarcd senders`.
func (a *Advisor) Fixes(ctx context.Context, domain string, inv *analyze.Inventory) (map[string][]Fix, error) {
	out := map[string][]Fix{}
	spf := &liveSPF{}
	for i := range inv.Senders {
		s := &inv.Senders[i]
		if !s.Class.Legitimate() || s.Failing() == 0 {
			continue
		}
		fs, err := a.fixes(ctx, domain, s, spf)
		if err != nil {
			return nil, err
		}
		out[s.ID] = fs
	}
	return out, nil
}

func senderByID(inv *analyze.Inventory, id string) *analyze.Sender {
	for i := range inv.Senders {
		if inv.Senders[i].ID == id {
			return &inv.Senders[i]
		}
	}
	return nil
}

// fixes says what makes the mail of a legitimate sender pass DMARC:
//
//   - DKIM with the domain's d= (aligned DKIM survives forwarding, so it
//     comes first): the service's own setup for a catalogue service, a key
//     of the domain for its own servers, the provider's custom DKIM for an
//     other sender;
//   - SPF, when the sender uses the domain's envelope sender: the
//     service's include, or its addresses, merged into the live record
//     with what the addition costs in DNS lookups; when it uses its own
//     envelope domain, SPF of the domain never applies to it, and only a
//     return path under the domain (where the service has one) aligns it;
//   - for a sender not set up, how to mark it as not yours.
func (a *Advisor) fixes(ctx context.Context, domain string, s *analyze.Sender, spf *liveSPF) ([]Fix, error) {
	var out []Fix
	dkimLow := 2*s.DKIMAligned < s.Messages
	spfLow := 2*s.SPFAligned < s.Messages
	ownEnvelope := 2*s.OwnEnvelope >= s.Messages
	svc := s.Service
	switch {
	case svc != nil && svc.Kind != analyze.KindForwarder:
		if dkimLow && svc.DKIMSetup != "" {
			out = append(out, Fix{Text: svc.Instructions(svc.DKIMSetup, domain)})
		} else if dkimLow {
			out = append(out, Fix{Text: fmt.Sprintf("set up DKIM signing with d=%s in %s (its documentation names the records to publish under %s)", domain, svc.Name, domain)})
		}
		switch {
		case spfLow && ownEnvelope && svc.SPFInclude != "":
			f, err := a.spfFix(ctx, domain, spf, SPFAdditions{Includes: []string{svc.SPFInclude}}, "include:"+svc.SPFInclude)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		case spfLow && !ownEnvelope && svc.ReturnPathSetup != "":
			out = append(out, Fix{Text: "for aligned SPF as well: " + svc.Instructions(svc.ReturnPathSetup, domain) +
				fmt.Sprintf(" (its mail now uses %s's own envelope domain, which SPF of %s does not cover)", svc.Name, domain)})
		}
	case strings.HasPrefix(s.ID, "network:"):
		if dkimLow {
			out = append(out, Fix{Text: fmt.Sprintf("sign the mail of %s with a DKIM key of %s: `dmarcd keys generate --domain %s` and the dmarcd signer, or the server's own DKIM signing with a key published under %s",
				strings.TrimPrefix(s.ID, "network:"), domain, domain, domain)})
		}
		if term, err := dnsrecord.SPFNetworkTerm(strings.TrimPrefix(s.ID, "network:")); err == nil && spfLow && ownEnvelope {
			f, err := a.spfFix(ctx, domain, spf, SPFAdditions{IPs: []string{strings.TrimPrefix(s.ID, "network:")}}, term)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
	case strings.HasPrefix(s.ID, "domain:"):
		org := strings.TrimPrefix(s.ID, "domain:")
		out = append(out, Fix{Text: fmt.Sprintf("ask %s to sign your mail with d=%s (custom DKIM: they give you a record to publish under %s) or to use a return path under %s; its mail now authenticates only as %s",
			org, domain, domain, domain, org)})
		if spfLow && ownEnvelope {
			f, err := a.spfFix(ctx, domain, spf, SPFAdditions{IPs: s.IPs[:min(len(s.IPs), maxSPFFixIPs)]}, "its addresses")
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
	default:
		out = append(out, Fix{Text: fmt.Sprintf("find out what sends from %s: if it is yours, sign its mail with a DKIM key of %s (`dmarcd keys generate --domain %s` and the dmarcd signer, or its own DKIM signing)",
			strings.Join(s.IPs[:min(len(s.IPs), 3)], ", "), domain, domain)})
		if spfLow && ownEnvelope {
			f, err := a.spfFix(ctx, domain, spf, SPFAdditions{IPs: s.IPs[:min(len(s.IPs), maxSPFFixIPs)]}, "its addresses")
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
	}
	if s.Class == analyze.Unconfigured {
		out = append(out, Fix{Text: fmt.Sprintf("if it is not yours, add %q to not_ours in the [[domain]] table of %s: it then counts as spoofing and no longer holds the rollout",
			notOursKey(s), domain)})
	}
	return out, nil
}

// notOursKey is what the user writes in not_ours to mark a sender: its
// service ID, the organization it authenticates as, or its address.
func notOursKey(s *analyze.Sender) string {
	switch {
	case s.Service != nil:
		return s.Service.ID
	case strings.HasPrefix(s.ID, "domain:"), strings.HasPrefix(s.ID, "host:"):
		_, v, _ := strings.Cut(s.ID, ":")
		return v
	case len(s.IPs) > 0:
		return s.IPs[0]
	}
	return s.ID
}

// liveSPF is the domain's published SPF record and its lookups, read once
// per recommendation.
type liveSPF struct {
	read    bool
	record  string
	lookups int
}

// spfFix writes the SPF record of domain with add merged in: what the
// addition costs in lookups against what the live record needs, and the
// record to publish; when the merged record would break the lookup limit,
// advice to rely on DKIM instead.
func (a *Advisor) spfFix(ctx context.Context, domain string, live *liveSPF, add SPFAdditions, what string) (Fix, error) {
	text := fmt.Sprintf("add %s to the SPF record of %s", what, domain)
	if what == "its addresses" {
		text = fmt.Sprintf("or add its addresses (%s) to the SPF record of %s, if they are stable", strings.Join(add.IPs, ", "), domain)
	}
	if a.DNS == nil {
		return Fix{Text: text}, nil
	}
	if !live.read {
		an, _, err := AnalyzeSPF(ctx, a.DNS, domain)
		if err != nil {
			return Fix{}, err
		}
		live.read = true
		if an != nil {
			live.record, live.lookups = an.Record, an.Lookups
		}
	}
	m, err := MergeSPF(ctx, a.DNS, domain, live.record, add)
	var limit *SPFLimitError
	switch {
	case errors.As(err, &limit) && limit.Lookups > SPFMaxLookups:
		return Fix{Text: fmt.Sprintf("%s: that would need %d DNS lookups, over the %d SPF allows (RFC 7208 §4.6.4; you are at %d), so rely on DKIM for this sender, or drop an include you no longer use first",
			text, limit.Lookups, SPFMaxLookups, live.lookups)}, nil
	case err != nil:
		return Fix{Text: fmt.Sprintf("%s (the record cannot be merged: %v)", text, err)}, nil
	}
	if len(m.Added) == 0 {
		return Fix{Text: fmt.Sprintf("%s is in the SPF record of %s already; its mail fails SPF for another reason (check the record with `dmarcd check %s`)", what, domain, domain)}, nil
	}
	return Fix{
		Text:   fmt.Sprintf("%s (costs %d lookups; you are at %d of %d)", text, m.Lookups-live.lookups, live.lookups, SPFMaxLookups),
		Record: fmt.Sprintf("%s. IN TXT %s", domain, dnsrecord.Quote(m.Record)),
	}, nil
}
