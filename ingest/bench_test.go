package ingest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/reportgen"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// benchMails are report mails as a mailbox of reports holds them, and as
// internal/bench's backfill writes them: aggregate reports of
// reportgen.RealisticSizes (about 60 records on average) in every
// reporter's dialect and container, and every 20th a failure report.
func benchMails(n int) [][]byte {
	domains := []string{"example.com", "example.net", "shop.example", "news.example.org", "mail.example"}
	g := reportgen.New(reportgen.Options{Seed: 21, Domains: domains, Sizes: reportgen.RealisticSizes, FailureKinds: reportgen.FailureMix})
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reps := reportgen.Reporters
	out := make([][]byte, n)
	a := 0
	for i := range out {
		if i%20 == 19 {
			out[i] = g.Failure(domains[i%len(domains)], start.Add(time.Duration(i)*time.Minute)).Data
			continue
		}
		rep, domain := reps[a%len(reps)], domains[(a/len(reps))%len(domains)]
		out[i] = g.AggregateMail(rep, domain, start.AddDate(0, 0, a/(len(reps)*len(domains))), 2000).Data
		a++
	}
	return out
}

// BenchmarkIngestMail ingests report mails into a fresh SQLite store, as
// `dmarcd ingest` and the IMAP poller do: unpack, decode, store and the
// ingester's bookkeeping, then a Flush. It reports the time per mail; with
// -cpuprofile it shows where that time goes (BENCHMARKS.md, "Per message").
//
//	go test -run '^$' -bench IngestMail -benchtime 3000x ./ingest
func BenchmarkIngestMail(b *testing.B) {
	mails := benchMails(1000)
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "dmarcd.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	in := New(s, Options{Now: func() time.Time { return now }})
	b.ResetTimer()
	for i := range b.N {
		// Past the first thousand mails, the same mails again under
		// another report id would be duplicates: a fresh store instead.
		if i > 0 && i%len(mails) == 0 {
			b.StopTimer()
			s.Close()
			if s, err = sqlite.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprint("dmarcd-", i, ".db"))); err != nil {
				b.Fatal(err)
			}
			in = New(s, Options{Now: func() time.Time { return now }})
			b.StartTimer()
		}
		out, err := in.Ingest(ctx, mails[i%len(mails)], dmarcd.Origin{Source: fmt.Sprint("mail-", i)})
		if err != nil {
			b.Fatal(err)
		}
		if out.Quarantined || out.Duplicates > 0 {
			b.Fatalf("mail %d: %+v", i, out)
		}
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}
