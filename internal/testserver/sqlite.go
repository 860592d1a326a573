package testserver

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// SQLite opens a throwaway embedded store in the test's temporary folder,
// closed when the test ends. It needs no server, so it never skips.
func SQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dmarcd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
