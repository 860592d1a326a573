package advisor

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/dmarcd/dmarcd/internal/dnsrecord"
)

// The live states of a planned record.
const (
	// LiveMissing: DNS has no record of the kind at the name.
	LiveMissing = "missing"
	// LiveMatches: DNS publishes the planned record.
	LiveMatches = "matches"
	// LiveDiffers: DNS publishes another record of the kind; Diff says
	// how it differs.
	LiveDiffers = "differs"
)

// LiveRecord is what DNS publishes where a planned record goes.
type LiveRecord struct {
	Status string `json:"status"`
	// Live are the records of the kind at the name (SPF, DMARC or DKIM).
	Live []string `json:"live,omitempty"`
	// Diff says what differs, for people: the terms or tags missing and
	// those extra, or the key that is published instead.
	Diff string `json:"diff,omitempty"`
}

// CheckPlanned compares a planned record with what DNS publishes at its
// name: the records of its kind (an SPF record with SPF records, a DMARC
// record or report authorization with DMARC records, a DKIM key with the
// TXT records of the selector). SPF terms and DMARC tags are compared
// without their order or case; DKIM keys by their decoded bytes.
func CheckPlanned(ctx context.Context, lookup func(ctx context.Context, name string) ([]string, error), rec PlannedRecord) (LiveRecord, error) {
	txts, err := lookup(ctx, rec.Name)
	if err != nil && !errors.Is(err, ErrNXDomain) { // a name that does not exist has no record
		return LiveRecord{}, err
	}
	var live []string
	for _, t := range txts {
		if plannedKind(rec.Purpose, t) {
			live = append(live, t)
		}
	}
	out := LiveRecord{Status: LiveMissing, Live: live}
	if len(live) == 0 {
		return out, nil
	}
	for _, l := range live {
		if samePlanned(rec, l) {
			out.Status = LiveMatches
			if len(live) > 1 {
				out.Status, out.Diff = LiveDiffers, "there are several records of this kind at the name; receivers then take none (or any): keep only the planned one"
			}
			return out, nil
		}
	}
	out.Status, out.Diff = LiveDiffers, describeDiff(rec, live[0])
	return out, nil
}

func plannedKind(purpose, txt string) bool {
	switch purpose {
	case PurposeSPF:
		return isSPF(txt)
	case PurposeDMARC, PurposeReportAuthorization:
		return dnsrecord.IsDMARC(txt)
	}
	return true // a selector's name holds its key record only
}

func isSPF(txt string) bool {
	l := strings.ToLower(strings.TrimSpace(txt))
	return l == "v=spf1" || strings.HasPrefix(l, "v=spf1 ")
}

// terms splits a record into what order does not change: SPF's terms
// (RFC 7208 §4.6.1 evaluates them in order, but the planned record and a
// reordered copy allow the same senders only when the "all" stays last,
// which the comparison of the last term checks), DMARC's tags.
func terms(purpose, txt string) []string {
	var out []string
	switch purpose {
	case PurposeSPF:
		out = strings.Fields(strings.ToLower(txt))
	default:
		for _, t := range strings.Split(txt, ";") {
			if t = strings.Join(strings.Fields(strings.ToLower(t)), ""); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

func samePlanned(rec PlannedRecord, live string) bool {
	if rec.Purpose == PurposeDKIM {
		want, err1 := dnsrecord.ParseKey(rec.Value)
		got, err2 := dnsrecord.ParseKey(live)
		return err1 == nil && err2 == nil && want.KeyType == got.KeyType && bytes.Equal(want.PublicKey, got.PublicKey) && want.Revoked == got.Revoked
	}
	a, b := terms(rec.Purpose, rec.Value), terms(rec.Purpose, live)
	if rec.Purpose == PurposeSPF && (len(a) == 0 || len(b) == 0 || a[len(a)-1] != b[len(b)-1]) {
		return false
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// describeDiff says what the live record lacks and has in excess.
func describeDiff(rec PlannedRecord, live string) string {
	if rec.Purpose == PurposeDKIM {
		if _, err := dnsrecord.ParseKey(live); err != nil {
			return "the published key record is unusable: " + err.Error()
		}
		return "another key is published at this selector"
	}
	want, got := terms(rec.Purpose, rec.Value), terms(rec.Purpose, live)
	var missing, extra []string
	for _, t := range want {
		if !slices.Contains(got, t) {
			missing = append(missing, t)
		}
	}
	for _, t := range got {
		if !slices.Contains(want, t) {
			extra = append(extra, t)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, " "))
	}
	if len(extra) > 0 {
		parts = append(parts, "not planned "+strings.Join(extra, " "))
	}
	if len(parts) == 0 {
		return "the same terms in another order: \"all\" must come last"
	}
	return strings.Join(parts, "; ")
}
