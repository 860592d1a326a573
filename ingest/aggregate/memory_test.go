package aggregate

import (
	"io"
	"runtime"
	"testing"
)

// TestMemoryBounded decodes a report of 200,000 records that a goroutine
// writes into a pipe, never held in memory whole, and checks that the heap
// in use stays below maxHeapInuse.
func TestMemoryBounded(t *testing.T) {
	const records = 200_000
	const maxHeapInuse = 32 << 20
	pr, pw := io.Pipe()
	written := &countingWriter{w: pw}
	go func() { pw.CloseWithError(writeReport(written, records, true)) }()
	defer pr.Close()

	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	d := NewDecoder(pr)
	n := 0
	for {
		_, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n%10_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if n != records || d.Report().RecordCount != records {
		t.Fatalf("%d records, RecordCount %d, want %d", n, d.Report().RecordCount, records)
	}
	t.Logf("%d records, %d MB of XML, peak HeapInuse %.1f MiB", n, written.n>>20, float64(peak)/(1<<20))
	if written.n < 2*maxHeapInuse {
		t.Errorf("only %d bytes decoded: the test proves nothing", written.n)
	}
	if peak > maxHeapInuse {
		t.Errorf("peak HeapInuse %d bytes, more than %d", peak, maxHeapInuse)
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
