package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/testserver"
)

// TestFilesCancelWaitingInput: an input that never gives data (a FIFO no
// one writes to, standard input left open) does not hold up a shutdown:
// when the context ends, Files returns.
func TestFilesCancelWaitingInput(t *testing.T) {
	s := testserver.SQLite(t)
	for _, writer := range []bool{false, true} {
		name := map[bool]string{false: "no writer", true: "silent writer"}[writer]
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "reports.fifo")
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Skipf("no FIFOs here: %v", err)
			}
			if writer { // opened for writing, never written to
				w, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
			}
			inputs, err := Expand([]string{path})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			result := make(chan error, 1)
			go func() {
				_, err := New(s, Options{}).Files(ctx, inputs, nil)
				result <- err
			}()
			time.Sleep(50 * time.Millisecond)
			cancel()
			select {
			case err := <-result:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Files = %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Files still waits on the FIFO after the context ended")
			}
			// Release a reader left waiting in the background.
			if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
		})
	}
}
