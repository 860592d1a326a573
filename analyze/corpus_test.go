package analyze_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dmarcd/dmarcd/analyze"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

// TestInventoryCorpus classifies the senders of every domain of the real
// corpus: every message belongs to one sender; Amazon SES and Google
// Workspace are recognised by their signatures; the mailing lists that
// break a signature of stalw.art (IETF, Topicbox) are forwarders.
func TestInventoryCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	s := testserver.SQLite(t)
	var inputs []ingest.Input
	for _, kind := range []string{"aggregate", "aggregate-dmarcbis"} {
		for _, f := range corpus.Files(t, kind) {
			in, err := ingest.Expand([]string{filepath.Join(dir, f)})
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, in...)
		}
	}
	ctx := context.Background()
	if _, err := ingest.New(s, ingest.Options{}).Files(ctx, inputs, nil); err != nil {
		t.Fatal(err)
	}
	domains, err := analyze.Domains(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	all := analyze.Window{From: "1970-01-01", To: "2099-12-31"}
	classes := map[string]string{}
	for _, d := range domains {
		inv, err := (&analyze.Classifier{}).Inventory(ctx, s, d.Domain, all)
		if err != nil {
			t.Fatalf("%s: %v", d.Domain, err)
		}
		var sum int64
		for _, snd := range inv.Senders {
			sum += snd.Messages
			if snd.Class == "" || snd.Why == "" {
				t.Errorf("%s: sender %s without a class", d.Domain, snd.ID)
			}
			classes[d.Domain+" "+snd.ID] = string(snd.Class)
		}
		if sum != inv.Messages || inv.Messages != d.Messages {
			t.Errorf("%s: senders hold %d messages, the inventory %d, the domain %d", d.Domain, sum, inv.Messages, d.Messages)
		}
	}
	for key, want := range map[string]string{
		"example.com service:amazon-ses":       "authorized",
		"example.org service:google-workspace": "authorized",
		"stalw.art domain:topicbox.com":        "forwarder",
		"stalw.art domain:ietf.org":            "forwarder",
		"stalw.art service:amazon-ses":         "authorized",
	} {
		if classes[key] != want {
			t.Errorf("%s: %q, want %q", key, classes[key], want)
		}
	}
}
