package advisor

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

// keyRecordDNS answers the TXT record of one name; every other question
// has no answer.
type keyRecordDNS struct {
	name string
	txt  string
}

func (d keyRecordDNS) TXT(_ context.Context, name string) ([]string, error) {
	if name == d.name {
		return []string{d.txt}, nil
	}
	return nil, nil
}
func (keyRecordDNS) A(context.Context, string) ([]netip.Addr, error)    { return nil, nil }
func (keyRecordDNS) AAAA(context.Context, string) ([]netip.Addr, error) { return nil, nil }
func (keyRecordDNS) MX(context.Context, string) ([]MX, error)           { return nil, nil }
func (keyRecordDNS) PTR(context.Context, netip.Addr) ([]string, error)  { return nil, nil }

// The verdicts on the record at a key's name.
const (
	verdictOurs  = "ours"  // it publishes the key
	verdictOther = "other" // a key record verifiers take, of another key or revoked
	verdictNone  = "none"  // no key record verifiers take
	// verdictNotOurs: other or none, for the drift, which tells only
	// whether the key is published.
	verdictNotOurs = "not ours"
)

// keyVerdicts reads txt, published at k's name, through each public path
// that reads DKIM key records, and returns the verdict of each.
func keyVerdicts(t *testing.T, k dmarcd.Key, txt string) map[string]string {
	ctx := context.Background()
	name := k.RecordName()
	r := keyRecordDNS{name: name, txt: txt}
	v := map[string]string{}

	// dmarcd check.
	fs, err := Check(ctx, r, dmarcd.SenderDomain{Name: k.Domain}, CheckOptions{DKIM: []DKIMPublicKey{{Selector: k.Selector, Value: k.TXT()}}})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case findFinding(fs, "dkim-ok") != nil:
		v["check"] = verdictOurs
	case findFinding(fs, "dkim-mismatch") != nil:
		v["check"] = verdictOther
	case findFinding(fs, "dkim-invalid") != nil:
		v["check"] = verdictNone
	default:
		t.Fatalf("%q: check: %v", txt, findingCodes(fs))
	}

	// The key advice (dmarcd keys advise).
	lookup := func(_ context.Context, n string) ([]string, error) { txts, _ := r.TXT(ctx, n); return txts, nil }
	advice, err := (&KeyAdvisor{Lookup: lookup}).Advise(ctx, []dmarcd.Key{k})
	if err != nil || len(advice) != 1 {
		t.Fatalf("%q: advice %v, %v", txt, advice, err)
	}
	switch a := advice[0]; {
	case a.Ready:
		v["advice"] = verdictOurs
	case strings.Contains(a.Reason, "publishes another key"):
		v["advice"] = verdictOther
	default:
		v["advice"] = verdictNone
	}

	// The key store (dmarcd keys import, keys advance).
	published, err := keystore.RecordPublished(ctx, lookup, k)
	switch {
	case published:
		v["keystore"] = verdictOurs
	case errors.Is(err, keystore.ErrRecordMismatch):
		v["keystore"] = verdictOther
	case err == nil:
		v["keystore"] = verdictNone
	default:
		t.Fatalf("%q: keystore: %v", txt, err)
	}

	// The wizard's drift (dmarcd domain add, the drift alert): the key is
	// there or not.
	diffs, err := Drift(ctx, r, &Plan{Records: []PlannedRecord{{Purpose: PurposeDKIM, Name: name, Value: k.TXT()}}})
	if err != nil {
		t.Fatal(err)
	}
	v["drift"] = verdictOurs
	if len(diffs) > 0 {
		v["drift"] = verdictNotOurs
	}
	return v
}

// agree says whether the paths reached the same verdict.
func agree(v map[string]string) bool {
	drift := verdictNotOurs
	if v["check"] == verdictOurs {
		drift = verdictOurs
	}
	return v["check"] == v["advice"] && v["check"] == v["keystore"] && v["drift"] == drift
}

// TestKeyVerdicts: the records the old parsers judged differently, and
// how all paths judge them now (RFC 6376 §3.2, §3.6.1).
func TestKeyVerdicts(t *testing.T) {
	k := testKey("s1", dmarcd.KeyCreated, "2026-07-19", "2026-07-19")
	p := strings.TrimPrefix(k.TXT(), "v=DKIM1; k=rsa; p=")
	other := testKey("s2", dmarcd.KeyCreated, "2026-07-19", "2026-07-19")
	for txt, want := range map[string]string{
		k.TXT():                         verdictOurs,
		"p=" + p:                        verdictOurs,
		"v=DKIM1; p=" + p + ";":         verdictOurs,
		"v=DKIM1; k=rsa; p=":            verdictOther,
		other.TXT():                     verdictOther,
		"v=DKIM1; k=rsa; k=rsa; p=" + p: verdictNone, // a duplicated tag
		"v=DKIM1; p=; p=" + p:           verdictNone, // a duplicated tag
		"; v=DKIM1; p=" + p:             verdictNone, // an empty tag-spec
		"v=DKIM1; k=foo; p=" + p:        verdictNone, // an unknown key type
		"v=DKIM1; k=ed25519; p=" + p:    verdictNone, // not an Ed25519 key
		"v=spf1 -all":                   verdictNone,
	} {
		v := keyVerdicts(t, k, txt)
		if v["check"] != want || !agree(v) {
			t.Errorf("%.50q: %v; want %s from all", txt, v, want)
		}
	}
}

// FuzzKeyVerdicts: on any text at a key's name, `dmarcd check`, the key
// advice, the key store and the wizard's drift reach the same verdict,
// since all of them read key records with dnsrecord.ParseKey.
func FuzzKeyVerdicts(f *testing.F) {
	k := testKey("s1", dmarcd.KeyCreated, "2026-07-19", "2026-07-19")
	for _, s := range []string{
		k.TXT(), "v=DKIM1; k=rsa; p=", strings.Replace(k.TXT(), "v=DKIM1; ", "", 1), strings.Replace(k.TXT(), "; p=", "; t=y; p=", 1),
		"; " + k.TXT(), k.TXT() + ";", k.TXT() + "; ", strings.Replace(k.TXT(), "k=rsa", "k=rsa; k=rsa", 1), "v=DKIM1; p=; " + strings.TrimPrefix(k.TXT(), "v=DKIM1; k=rsa; "),
		strings.Replace(k.TXT(), "k=rsa", "k=foo", 1), strings.Replace(k.TXT(), "k=rsa", "k=ed25519", 1), "v=spf1 -all", "",
		"v=DKIM1; k=rsa; p=" + strings.Repeat("A", 40),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		v := keyVerdicts(t, k, txt)
		if !agree(v) {
			t.Fatalf("%q: the paths disagree: %v", txt, v)
		}
	})
}
