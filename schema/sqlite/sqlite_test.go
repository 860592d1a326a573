package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/storetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dmarcd.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// TestContract runs the store contract (internal/storetest) on SQLite.
func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Engine{
		Location: func(t testing.TB) string { return filepath.Join(t.TempDir(), "dmarcd.db") },
		Open: func(ctx context.Context, path string) (storetest.SchemaStore, error) {
			s, err := Open(ctx, path)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		OpenReadOnly: func(ctx context.Context, path string) (storetest.SchemaStore, error) {
			s, err := OpenReadOnly(ctx, path)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		SetSchemaVersion: func(t testing.TB, s storetest.SchemaStore, v int) {
			if _, err := s.(*Store).db.Exec(fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestOpenReadOnly: a path without a store is refused (a mistyped --store
// creates nothing); an existing store reads, and writes fail.
func TestOpenReadOnly(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo.db")
	if _, err := OpenReadOnly(context.Background(), missing); !errors.Is(err, ErrNoStore) {
		t.Errorf("missing store: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("OpenReadOnly created the file")
	}
	s, path := openTemp(t)
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var n int
	if err := ro.ro.QueryRow("SELECT COUNT(*) FROM reports").Scan(&n); err != nil || n != 1 {
		t.Errorf("reading: %d, %v", n, err)
	}
	if err := ro.Quarantine(context.Background(), dmarcd.Quarantined{Raw: []byte("x")}); err == nil {
		t.Error("a read-only store took a write")
	}
}

// TestFlushSyncs: after Flush every committed frame of the WAL is in the
// database file (the checkpoint syncs the WAL first).
func TestFlushSyncs(t *testing.T) {
	s, _ := openTemp(t)
	if err := storetest.Store(t, s, storetest.Report("r1"), storetest.Records()); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var busy, frames, done int
	if err := s.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done); err != nil || busy != 0 || frames != done {
		t.Errorf("after Flush: busy %d, %d frames, %d checkpointed, %v", busy, frames, done, err)
	}
}

// BenchmarkFlush is the cost of making a report durable before its mail
// is moved: a report of 10 records stored, then Flush, against the same
// without Flush (the IMAP poller flushes once per batch of messages).
func BenchmarkFlush(b *testing.B) {
	for _, flush := range []bool{false, true} {
		b.Run(fmt.Sprintf("flush=%v", flush), func(b *testing.B) {
			s, _ := openTemp(b)
			for i := range b.N {
				if err := storetest.Store(b, s, storetest.Report(fmt.Sprint("r", i)), storetest.Records()); err != nil {
					b.Fatal(err)
				}
				if flush {
					if err := s.Flush(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
