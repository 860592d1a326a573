package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/reportgen"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

// mboxOf writes msgs as an mbox file, as mail clients export them: a "From "
// line before each, ">From " for a body line that starts with "From ", an
// empty line after each.
func mboxOf(msgs [][]byte, crlf bool) []byte {
	nl := "\n"
	if crlf {
		nl = "\r\n"
	}
	var b bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&b, "From dmarc-reports@example.com Sat Nov 28 10:00:00 +0000 2026%s", nl)
		for _, line := range strings.SplitAfter(string(m), "\n") {
			if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
				b.WriteString(">")
			}
			b.WriteString(line)
		}
		if !bytes.HasSuffix(m, []byte("\n")) {
			b.WriteString(nl)
		}
		b.WriteString(nl)
	}
	return b.Bytes()
}

func readAll(t *testing.T, m *mboxReader) (msgs [][]byte, truncated []bool) {
	t.Helper()
	for {
		msg, tr, err := m.next()
		if errors.Is(err, io.EOF) {
			return msgs, truncated
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, append([]byte(nil), msg...))
		truncated = append(truncated, tr)
	}
}

func TestMboxSplit(t *testing.T) {
	msgs := [][]byte{
		[]byte("Subject: one\n\nbody one\n"),
		[]byte("Subject: two\n\nFrom the start of a line, quoted in the mbox\n>From quoted once already\nFrom nowhere\n"),
		[]byte("Subject: three\n\n\nFrom someone who wrote a line like a separator\n"),
		[]byte("Subject: four\n\nno final line end"),
	}
	got, _ := readAll(t, newMboxReader(bytes.NewReader(mboxOf(msgs, false)), 1<<20))
	want := []string{
		"Subject: one\n\nbody one\n",
		"Subject: two\n\nFrom the start of a line, quoted in the mbox\n>From quoted once already\nFrom nowhere\n",
		"Subject: three\n\n\nFrom someone who wrote a line like a separator\n",
		"Subject: four\n\nno final line end\n",
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("message %d:\n got %q\nwant %q", i+1, got[i], want[i])
		}
	}

	// CRLF line ends, as some exports write them.
	got, _ = readAll(t, newMboxReader(bytes.NewReader(mboxOf([][]byte{[]byte("A: 1\r\n\r\nx\r\n"), []byte("A: 2\r\n\r\ny\r\n")}, true)), 1<<20))
	if len(got) != 2 || string(got[0]) != "A: 1\r\n\r\nx\r\n" || string(got[1]) != "A: 2\r\n\r\ny\r\n" {
		t.Errorf("CRLF: %q", got)
	}
}

func TestMboxTruncates(t *testing.T) {
	big := []byte("Subject: big\n\n" + strings.Repeat("0123456789abcdef\n", 100) + strings.Repeat("x", 200_000) + "\n")
	got, truncated := readAll(t, newMboxReader(bytes.NewReader(mboxOf([][]byte{big, []byte("Subject: small\n\nok\n")}, false)), 1000))
	if len(got) != 2 || len(got[0]) != 1000 || !truncated[0] || truncated[1] || string(got[1]) != "Subject: small\n\nok\n" {
		t.Errorf("got %d messages, truncated %v, sizes %d", len(got), truncated, len(got[0]))
	}
}

func TestIsMboxSeparator(t *testing.T) {
	for line, want := range map[string]bool{
		"From - Sat Nov 28 10:00:00 2026":                             true, // Thunderbird
		"From 1818263929485639@xxx Sat Nov 28 10:00:00 +0000 2026":    true, // Google Takeout
		"From dmarc-noreply@linkedin.com Tue Apr 30 02:09:16 2019":    true,
		"From: reporter@example.com":                                  false,
		"From the start of a line":                                    false,
		"From someone who wrote a line like a separator in 26 places": false,
	} {
		if got := isMboxSeparator([]byte(line)); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}

// TestIngestMbox: an mbox of report mails, as Google Takeout or a mail
// client exports a mailbox, stores each report once; a message that holds
// no report is quarantined alone, with its place in the file.
func TestIngestMbox(t *testing.T) {
	g := reportgen.New(reportgen.Options{Seed: 7, Domains: []string{"example.com", "example.org"}, Days: 3, FailureReports: 2})
	var msgs [][]byte
	var reports int
	for _, f := range g.Files() {
		if strings.HasSuffix(f.Name, ".eml") {
			msgs = append(msgs, f.Data)
			reports += f.Reports
			continue
		}
		// Wrap a bare report file in a mail, as reporters send them.
		msgs = append(msgs, g.AggregateMail(reportgen.Reporters[0], "example.net", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, len(msgs)), 100).Data)
		reports++
	}
	msgs = append(msgs, []byte("Subject: not a report\n\nhello\n"))
	path := filepath.Join(t.TempDir(), "Takeout.mbox")
	if err := os.WriteFile(path, mboxOf(msgs, false), 0o644); err != nil {
		t.Fatal(err)
	}
	s := testserver.SQLite(t)
	inputs, err := Expand([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	var last Summary
	sum, err := New(s, Options{}).Files(context.Background(), inputs, func(s Summary) { last = s })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Inputs != len(msgs) || sum.Total != len(msgs) || last.Inputs != len(msgs) {
		t.Errorf("inputs %d of %d (progress %d), want %d messages", sum.Inputs, sum.Total, last.Inputs, len(msgs))
	}
	if got := sum.Aggregate + sum.Failure; got != reports || sum.Quarantined != 1 {
		t.Errorf("%d reports stored, %d quarantined; want %d and 1: %+v", got, sum.Quarantined, reports, sum)
	}
	want := fmt.Sprintf("file:%s;message=%d", path, len(msgs))
	rows, err := s.Query(context.Background(), "SELECT source FROM quarantined")
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for rows.Next() {
		var src string
		if err := rows.Scan(&src); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, src)
	}
	rows.Close()
	if len(sources) != 1 || sources[0] != want {
		t.Errorf("quarantined sources %q, want %q", sources, want)
	}
	again, err := New(s, Options{}).Files(context.Background(), inputs, nil)
	if err != nil || again.Aggregate+again.Failure != 0 || again.Duplicates != reports {
		t.Errorf("second pass: %+v, %v", again, err)
	}
}

// FuzzMbox: any bytes split into messages without a crash, none longer
// than the bound, and a well-formed mbox gives back its messages.
func FuzzMbox(f *testing.F) {
	f.Add(mboxOf([][]byte{[]byte("A: 1\n\nx\n"), []byte("A: 2\n\nFrom y\n")}, false))
	f.Add(mboxOf([][]byte{[]byte("A: 1\r\n\r\nx\r\n")}, true))
	f.Add([]byte("From - Sat Nov 28 10:00:00 2026\n"))
	f.Add([]byte("From x 2026\n\n\nFrom y 2026\n>>From z\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newMboxReader(bytes.NewReader(data), 256)
		for range len(data) + 2 {
			msg, _, err := m.next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(msg) > 256 {
				t.Fatalf("a message of %d bytes, bound 256", len(msg))
			}
		}
		t.Fatal("more messages than bytes")
	})
}
