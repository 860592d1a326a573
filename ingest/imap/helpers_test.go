package imap

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/reportgen"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// openStore opens a SQLite store in the test's folder.
func openStore(t testing.TB) *sqlite.Store { return testserver.SQLite(t) }

// scalar runs a query that returns one integer.
func scalar(t testing.TB, s *sqlite.Store, q string, args ...any) int64 {
	t.Helper()
	rows, err := s.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	if !rows.Next() {
		t.Fatalf("%s: no row", q)
	}
	if err := rows.Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// column runs a query that returns one string column, sorted.
func column(t testing.TB, s *sqlite.Store, q string) []string {
	t.Helper()
	rows, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// storeContent is what a store holds, in a form two stores can be
// compared by: the keys of the reports and the sums of their records.
type storeContent struct {
	Aggregate   []string
	Failure     []string
	Records     int64
	Messages    int64
	Quarantined int64
}

func contentOf(t testing.TB, s *sqlite.Store) storeContent {
	t.Helper()
	return storeContent{
		Aggregate:   column(t, s, "SELECT report_key FROM aggregate_reports"),
		Failure:     column(t, s, "SELECT report_key FROM failure_reports"),
		Records:     scalar(t, s, "SELECT COUNT(*) FROM aggregate_records"),
		Messages:    scalar(t, s, "SELECT COALESCE(SUM(count), 0) FROM aggregate_records"),
		Quarantined: scalar(t, s, "SELECT COUNT(*) FROM quarantine"),
	}
}

func (c storeContent) String() string {
	return fmt.Sprintf("%d aggregate reports (%d records, %d messages), %d failure reports, %d quarantined",
		len(c.Aggregate), c.Records, c.Messages, len(c.Failure), c.Quarantined)
}

// testMessage is a mail to put in a mailbox.
type testMessage struct {
	Name string
	Data []byte
}

// generated returns report mails of every kind reportgen writes (zip and
// gzip attachments, plain XML attached, failure reports) and malformed
// ones.
func generated(seed uint64, days, failures int) []testMessage {
	g := reportgen.New(reportgen.Options{Seed: seed, Days: days, FailureReports: failures, MessagesPerDay: 200, Sources: 6,
		Domains: []string{"example.com", "news.example.com"}})
	var out []testMessage
	for _, f := range g.Files() {
		data := f.Data
		if !strings.HasSuffix(f.Name, ".eml") {
			// WEB.DE sends plain XML: attach it as it comes.
			data = attachmentMail(f.Name, "text/xml", f.Data)
		}
		out = append(out, testMessage{Name: fmt.Sprintf("gen%d/%s", seed, f.Name), Data: data})
	}
	return append(out, malformed(fmt.Sprint(seed))...)
}

// malformed returns mails that hold no parseable report, and one that
// holds a good report and a broken one.
func malformed(tag string) []testMessage {
	good := reportgen.New(reportgen.Options{Seed: 99, Days: 1})
	xmlData, _, _ := good.AggregateXML(reportgen.Reporters[0], "mixed-"+tag+".example", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 10)
	return []testMessage{
		{"no-report-" + tag + ".eml", []byte("From: someone@example.net\r\nTo: dmarc@example.com\r\nSubject: out of office " + tag + "\r\nMessage-ID: <ooo-" + tag + "@example.net>\r\n\r\nI am away.\r\n")},
		{"broken-gzip-" + tag + ".eml", attachmentMail("report-"+tag+".xml.gz", "application/gzip", []byte("\x1f\x8b\x08\x00not really gzip "+tag))},
		{"truncated-xml-" + tag + ".eml", attachmentMail("report-"+tag+".xml", "text/xml", []byte("<?xml version=\"1.0\"?>\n<feedback><report_metadata><org_name>broken "+tag+"</org_name><report_id>"))},
		{"mixed-" + tag + ".eml", multiAttachmentMail(
			[2]any{"good-" + tag + ".xml", xmlData},
			[2]any{"bad-" + tag + ".xml.gz", []byte("\x1f\x8b\x08\x00broken " + tag)})},
	}
}

func dmarcdOrigin(name string) dmarcd.Origin { return dmarcd.Origin{Source: "test:" + name} }

func attachmentMail(filename, contentType string, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: reports@reporter.example\r\nTo: dmarc@example.com\r\nSubject: Report %s\r\nMessage-ID: <%s@reporter.example>\r\nMIME-Version: 1.0\r\n", filename, filename)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nA report.\r\n")
	fmt.Fprintf(&b, "--b1\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n",
		contentType, filename, filename, wrap76(base64.StdEncoding.EncodeToString(data)))
	return b.Bytes()
}

func multiAttachmentMail(parts ...[2]any) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: reports@reporter.example\r\nTo: dmarc@example.com\r\nSubject: Two reports\r\nMessage-ID: <multi-%s@reporter.example>\r\nMIME-Version: 1.0\r\n", parts[0][0])
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n")
	for _, p := range parts {
		name, data := p[0].(string), p[1].([]byte)
		ct := "text/xml"
		if strings.HasSuffix(name, ".gz") {
			ct = "application/gzip"
		}
		fmt.Fprintf(&b, "--b1\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n",
			ct, name, name, wrap76(base64.StdEncoding.EncodeToString(data)))
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

// expectation is what a poll of messages must give: the store content of
// a direct ingest, and how many messages go to each folder.
type expectation struct {
	Content storeContent
	Archive int
	Invalid int
	invalid map[string]bool // by message name
}

// expect ingests the messages directly into a store of its own.
func expect(t testing.TB, msgs []testMessage) expectation {
	t.Helper()
	s := openStore(t)
	in := ingest.New(s, ingest.Options{})
	e := expectation{invalid: map[string]bool{}}
	for _, m := range msgs {
		out, err := in.Ingest(context.Background(), m.Data, dmarcdOrigin(m.Name))
		if err != nil {
			t.Fatal(err)
		}
		if out.Reports() == 0 {
			e.Invalid++
			e.invalid[m.Name] = true
		} else {
			e.Archive++
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Content = contentOf(t, s)
	return e
}

// appendAll puts messages into a folder over IMAP.
func appendAll(t testing.TB, addr, user, password, folder string, msgs []testMessage) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		cmd := c.Append(folder, int64(len(m.Data)), nil)
		if _, err := cmd.Write(m.Data); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("appending %s: %v", m.Name, err)
		}
	}
	c.Logout().Wait()
}

// folderCounts returns the number of messages of each folder.
func folderCounts(t testing.TB, addr, user, password string, folders ...string) map[string]int {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range folders {
		st, err := c.Status(f, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			out[f] = -1 // missing
			continue
		}
		out[f] = int(*st.NumMessages)
	}
	c.Logout().Wait()
	return out
}

// folderMessages returns the messages of a folder, each normalised to LF
// line ends, sorted: a folder's content in comparable form.
func folderMessages(t testing.TB, addr, user, password, folder string) []string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if sel.NumMessages > 0 {
		var all imap.SeqSet
		all.AddRange(1, 0)
		msgs, err := c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			for _, s := range m.BodySection {
				out = append(out, normalise(s.Bytes))
			}
		}
	}
	c.Logout().Wait()
	slices.Sort(out)
	return out
}

func normalise(b []byte) string {
	return strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
}

func messageTexts(msgs []testMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, normalise(m.Data))
	}
	slices.Sort(out)
	return out
}

// counterValue reads a counter or gauge of the metrics.
func counterValue(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// logBuffer collects log lines for assertions, safe for concurrent use.
type logBuffer = testserver.Output

func newLogger(t testing.TB) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	w := io.Writer(lb)
	if testing.Verbose() {
		w = io.MultiWriter(lb, testWriter{t})
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
