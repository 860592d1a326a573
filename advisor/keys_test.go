package advisor

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// keysNow is the time of the key advice tests.
var keysNow = time.Date(2026, 7, 20, 12, 0, 0, 0, time.UTC)

// keyReports stores aggregate reports: per day, per reporter, the
// signatures of the selectors of example.com.
type keyReport struct {
	day, org, selector, result string
	count                      int64
}

func keyStore(t *testing.T, reports []keyReport) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i, r := range reports {
		d, _ := time.Parse(time.DateOnly, r.day)
		rep := &dmarcd.AggregateReport{
			Metadata: dmarcd.ReportMetadata{OrgName: r.org, ReportID: fmt.Sprint("k", i), DateBegin: d, DateEnd: d.Add(24*time.Hour - time.Second)},
			Policy:   dmarcd.PolicyPublished{Domain: "example.com", P: "none", Pct: dmarcd.PctAbsent},
		}
		w, err := s.BeginAggregate(ctx, rep, dmarcd.Origin{Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		rec := &dmarcd.Record{SourceIP: "192.0.2.1", Count: r.count, Disposition: "none", DKIM: r.result, SPF: "pass",
			HeaderFrom: "example.com", DKIMResults: []dmarcd.DKIMResult{{Domain: "Example.com", Selector: r.selector, Result: r.result}}}
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx, rep); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func testKey(sel string, state dmarcd.KeyState, created, since string) dmarcd.Key {
	c, _ := time.Parse(time.DateOnly, created)
	s, _ := time.Parse(time.DateOnly, since)
	return dmarcd.Key{Domain: "example.com", Selector: sel, Algorithm: dmarcd.AlgorithmRSA, Bits: 2048,
		Created: c, State: state, StateSince: s, PublicKey: testRSAPublicKey(sel)}
}

// testRSAPublicKey is a distinct RSA public key per name, DER as in p=: a
// 2048-bit modulus made from the name, which a key record may publish (no
// factors are needed to parse it) and which generates in no time.
func testRSAPublicKey(name string) []byte {
	sum := sha256.Sum256([]byte(name))
	n := new(big.Int).Lsh(big.NewInt(1), 2047)
	n.Or(n, new(big.Int).SetBytes(sum[:]))
	n.SetBit(n, 0, 1)
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		panic(err)
	}
	return der
}

func TestKeyAdvice(t *testing.T) {
	published := map[string]dmarcd.Key{}
	lookup := func(_ context.Context, name string) ([]string, error) {
		if k, ok := published[name]; ok {
			return []string{"v=spf1 -all", k.TXT()}, nil
		}
		return nil, nil
	}
	cases := []struct {
		name    string
		key     dmarcd.Key
		others  []dmarcd.Key
		dns     bool // the key's record is published
		reports []keyReport
		next    dmarcd.KeyState
		ready   bool
		due     bool
		reason  string
	}{
		{name: "created, not in DNS", key: testKey("new", dmarcd.KeyCreated, "2026-07-19", "2026-07-19"),
			next: dmarcd.KeyPublished, reason: "publish its record: new._domainkey.example.com. IN TXT \"v=DKIM1; k=rsa; p="},
		{name: "created, in DNS", key: testKey("new", dmarcd.KeyCreated, "2026-07-19", "2026-07-19"), dns: true,
			next: dmarcd.KeyPublished, ready: true, reason: "in DNS"},
		{name: "published a day ago", key: testKey("new", dmarcd.KeyPublished, "2026-07-18", "2026-07-19"), dns: true,
			next: dmarcd.KeySigning, reason: "sign from 2026-07-21 on"},
		{name: "published three days ago", key: testKey("new", dmarcd.KeyPublished, "2026-07-10", "2026-07-17"), dns: true,
			next: dmarcd.KeySigning, ready: true, reason: "longer than the published wait of 2 days"},
		{name: "published, record gone", key: testKey("new", dmarcd.KeyPublished, "2026-07-10", "2026-07-17"),
			next: dmarcd.KeySigning, reason: "no longer in DNS"},
		{name: "signing, the only key", key: testKey("new", dmarcd.KeySigning, "2026-07-10", "2026-07-17"), dns: true,
			next: dmarcd.KeyCurrent, ready: true, reason: "only signing key"},
		{name: "signing, no reports yet", key: testKey("new", dmarcd.KeySigning, "2026-07-10", "2026-07-17"), dns: true,
			others: []dmarcd.Key{testKey("old", dmarcd.KeyCurrent, "2026-01-01", "2026-01-05")},
			next:   dmarcd.KeyCurrent, reason: "no aggregate report"},
		{name: "signing, one large reporter has not seen it", key: testKey("new", dmarcd.KeySigning, "2026-07-10", "2026-07-17"), dns: true,
			others: []dmarcd.Key{testKey("old", dmarcd.KeyCurrent, "2026-01-01", "2026-01-05")},
			reports: []keyReport{
				{"2026-07-18", "google.com", "new", "pass", 500}, {"2026-07-18", "google.com", "old", "pass", 500},
				{"2026-07-18", "Outlook.com", "old", "pass", 400},
				{"2026-07-16", "Outlook.com", "new", "pass", 400}, // before it signed: not evidence
			},
			next: dmarcd.KeyCurrent, reason: "no report from Outlook.com shows it yet"},
		{name: "signing, fails at a large reporter", key: testKey("new", dmarcd.KeySigning, "2026-07-10", "2026-07-17"), dns: true,
			others: []dmarcd.Key{testKey("old", dmarcd.KeyCurrent, "2026-01-01", "2026-01-05")},
			reports: []keyReport{
				{"2026-07-18", "google.com", "new", "pass", 500}, {"2026-07-18", "Outlook.com", "new", "fail", 400},
			},
			next: dmarcd.KeyCurrent, reason: "fails at Outlook.com (0 of 400 pass)"},
		{name: "signing, passes at the large reporters", key: testKey("new", dmarcd.KeySigning, "2026-07-10", "2026-07-17"), dns: true,
			others: []dmarcd.Key{testKey("old", dmarcd.KeyCurrent, "2026-01-01", "2026-01-05")},
			reports: []keyReport{
				{"2026-07-18", "google.com", "new", "pass", 500}, {"2026-07-19", "Outlook.com", "new", "pass", 400},
				{"2026-07-19", "tiny.example", "old", "pass", 3}, // small: not waited for
			},
			next: dmarcd.KeyCurrent, ready: true, reason: "passes at the large reporters since 2026-07-17: google.com (500 of 500), Outlook.com (400 of 400)"},
		{name: "current, young", key: testKey("cur", dmarcd.KeyCurrent, "2026-05-01", "2026-05-05"), dns: true,
			reason: "rotate it from 2026-10-28 on"},
		{name: "current, older than the rotation period", key: testKey("cur", dmarcd.KeyCurrent, "2026-01-01", "2026-01-05"), dns: true,
			due: true, reason: "older than the rotation period of 180 days"},
		{name: "current, rotation under way", key: testKey("cur", dmarcd.KeyCurrent, "2026-01-01", "2026-01-05"), dns: true,
			others: []dmarcd.Key{testKey("new", dmarcd.KeyPublished, "2026-07-18", "2026-07-19")},
			reason: "new is published"},
		{name: "retired, in the grace period", key: testKey("old", dmarcd.KeyRetired, "2026-01-01", "2026-07-15"), dns: true,
			next: dmarcd.KeyRevoked, reason: "until 2026-07-22"},
		{name: "retired, traffic still seen", key: testKey("old", dmarcd.KeyRetired, "2026-01-01", "2026-07-01"), dns: true,
			reports: []keyReport{{"2026-07-02", "google.com", "old", "pass", 50}, {"2026-07-10", "google.com", "old", "pass", 7}},
			next:    dmarcd.KeyRevoked, reason: "still show 7 messages signed with old after 2026-07-02 (the last on 2026-07-10)"},
		{name: "retired, traffic gone", key: testKey("old", dmarcd.KeyRetired, "2026-01-01", "2026-07-01"), dns: true,
			reports: []keyReport{{"2026-07-02", "google.com", "old", "pass", 50}, {"2026-07-10", "google.com", "new", "pass", 70}},
			next:    dmarcd.KeyRevoked, ready: true, reason: "no report shows the selector after 2026-07-02"},
		{name: "revoked, record still has the key", key: testKey("old", dmarcd.KeyRevoked, "2026-01-01", "2026-07-10"),
			others: []dmarcd.Key{testKey("old", dmarcd.KeyRetired, "2026-01-01", "2026-07-01")}, // what DNS still shows
			next:   dmarcd.KeyDeleted, reason: "still publishes the key"},
		{name: "revoked, record revoked", key: testKey("old", dmarcd.KeyRevoked, "2026-01-01", "2026-07-10"), dns: true,
			next: dmarcd.KeyDeleted, ready: true, reason: "can go"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clear(published)
			if c.dns {
				published[c.key.RecordName()] = c.key
			}
			for _, o := range c.others {
				if o.State == dmarcd.KeyRetired && o.Selector == c.key.Selector {
					published[o.RecordName()] = o
				}
			}
			a := &KeyAdvisor{Policy: dmarcd.DefaultRotationPolicy, Lookup: lookup, Store: keyStore(t, c.reports),
				Now: func() time.Time { return keysNow }}
			keys := append([]dmarcd.Key{c.key}, c.others...)
			advice, err := a.Advise(context.Background(), keys)
			if err != nil {
				t.Fatal(err)
			}
			adv := advice[0]
			if adv.Next != c.next || adv.Ready != c.ready || adv.RotationDue != c.due || !strings.Contains(adv.Reason, c.reason) {
				t.Errorf("got next=%q ready=%v due=%v\n  %s\nwant next=%q ready=%v due=%v, reason with %q", adv.Next, adv.Ready, adv.RotationDue, adv.Reason, c.next, c.ready, c.due, c.reason)
			}
		})
	}
}
