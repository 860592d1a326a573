package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/ingest"
	imapingest "github.com/dmarcd/dmarcd/ingest/imap"
	"github.com/dmarcd/dmarcd/internal/reportgen"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
)

// The mailbox of the tests below: an in-memory IMAP server.
const (
	flushUser     = "dmarc@example.com"
	flushPassword = "flush-secret"
	// flushBatch is the poller's batch: the messages it files together,
	// after one Flush.
	flushBatch = 10
)

// reportMails are report mails as reporters send them: aggregate reports
// attached (gzip, zip, plain XML) and failure reports.
func reportMails() [][]byte {
	g := reportgen.New(reportgen.Options{Seed: 21, Days: 4, FailureReports: 3, MessagesPerDay: 300, Sources: 8,
		Domains: []string{"example.com", "news.example.com"}})
	var out [][]byte
	for _, f := range g.Files() {
		switch {
		case strings.HasSuffix(f.Name, ".eml"):
			out = append(out, f.Data)
		case strings.HasSuffix(f.Name, ".gz"):
			out = append(out, attached(f.Name, "application/gzip", f.Data))
		case strings.HasSuffix(f.Name, ".zip"):
			out = append(out, attached(f.Name, "application/zip", f.Data))
		default:
			out = append(out, attached(f.Name, "text/xml", f.Data))
		}
	}
	return out
}

func attached(name, contentType string, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: reports@reporter.example\r\nTo: %s\r\nSubject: Report %s\r\nMessage-ID: <%s@reporter.example>\r\nMIME-Version: 1.0\r\n", flushUser, name, name)
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nA report.\r\n")
	fmt.Fprintf(&b, "--b1\r\nContent-Type: %s; name=%q\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n",
		contentType, name, name)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b1--\r\n")
	return b.Bytes()
}

// mailbox is an in-memory IMAP server holding msgs in its INBOX.
type mailbox struct {
	user *imapmemserver.User
	mb   imapingest.Mailbox
}

func newMailbox(t *testing.T, msgs [][]byte) *mailbox {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(flushUser, flushPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := user.Append("INBOX", literal{bytes.NewReader(m), int64(len(m))}, &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       quiet{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &mailbox{user: user, mb: imapingest.Mailbox{Name: "mem", Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port,
		TLS: imapingest.TLSNone, Username: flushUser, Password: flushPassword, BatchSize: flushBatch}}
}

type literal struct {
	*bytes.Reader
	size int64
}

func (l literal) Size() int64 { return l.size }

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// count returns the number of messages in a folder, 0 when it is missing.
func (m *mailbox) count(t *testing.T, folder string) int {
	t.Helper()
	st, err := m.user.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		return 0
	}
	return int(*st.NumMessages)
}

// once makes one pass of a poller over the mailbox into s.
func (m *mailbox) once(t *testing.T, s dmarcd.Store) (imapingest.Summary, error) {
	t.Helper()
	p, err := imapingest.New(m.mb, imapingest.Options{Store: s, Logger: slog.New(slog.DiscardHandler),
		Ingest: ingest.Options{Now: func() time.Time { return receivedAt }}, InitialBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p.Once(context.Background())
}

// TestCutBetweenCommitAndFlush polls a mailbox into ClickHouse through a
// proxy that cuts the connection when the poller flushes the reports of
// its second batch, after their Commit: the poller must leave the
// messages of that batch in the INBOX (the first batch, flushed, is
// archived). A retry, by the same process or by a new one that lost the
// group with the old, stores every report once and archives every
// message.
func TestCutBetweenCommitAndFlush(t *testing.T) {
	msgs := reportMails()
	if len(msgs) < 3*flushBatch {
		t.Fatalf("%d messages: want more than three batches", len(msgs))
	}
	// What the same mail gives in SQLite, stored directly.
	lite := openSQLite(t)
	in := ingester(lite)
	for i, m := range msgs {
		if _, err := in.Ingest(context.Background(), m, dmarcd.Origin{Source: fmt.Sprint("test:", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lite.(dmarcd.Flusher).Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := answers(t, lite)
	if len(want["records view"]) == 0 || len(want["failures view"]) == 0 {
		t.Fatalf("the mail gave empty views in SQLite")
	}
	// Compare all but the views that show where a report came from (the
	// source names the IMAP message here) and the quarantine (empty: SUM
	// over no rows is NULL in SQLite, 0 in ClickHouse).
	skip := func(a map[string][]string) map[string][]string {
		for _, c := range []string{"reports view", "failures view", "quarantined view", "quarantined totals"} {
			delete(a, c)
		}
		return a
	}
	want = skip(want)

	server := testserver.ClickHouse(t)
	for _, c := range []struct {
		name string
		cut  cut
	}{
		// The server never sees the records of the batch.
		{"records insert, cut before it is sent", cut{marker: "INSERT INTO aggregate_records", nth: 2, mode: cutBefore}},
		// The server stores the batch; the poller sees its connection fail.
		{"report rows, stored but unanswered", cut{marker: "INSERT INTO aggregate_reports", nth: 2, mode: cutUnanswered}},
	} {
		for _, restart := range []bool{false, true} {
			name := c.name + ", retry by the same process"
			if restart {
				name = c.name + ", retry by a new process"
			}
			t.Run(name, func(t *testing.T) {
				box := newMailbox(t, msgs)
				p := newProxy(t, server)
				p.arm(c.cut)
				dsn := p.dsn(testserver.ClickHouseDatabase(server))
				s, err := clickhouse.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				sum, err := box.once(t, s)
				if !p.fired() || imapingest.Kind(err) != imapingest.ErrStore {
					t.Fatalf("the pass with the cut: fired %v, %v", p.fired(), err)
				}
				t.Logf("cut: %v", err)
				inbox, archived := box.count(t, "INBOX"), box.count(t, imapingest.DefaultArchiveFolder)
				if archived != flushBatch || inbox != len(msgs)-flushBatch || sum.Archived != flushBatch {
					t.Errorf("after the cut: %d archived, %d in INBOX; want the first batch (%d) archived and the %d others in INBOX",
						archived, inbox, flushBatch, len(msgs)-flushBatch)
				}

				waitForInserts(t, s) // as TestCutConnection does
				if restart {
					// The process died with its group; a new one polls.
					// (The old store is closed after the test: its
					// Close would write the group.)
					t.Cleanup(func() { s.Close() })
					if s, err = clickhouse.Open(context.Background(), dsn); err != nil {
						t.Fatal(err)
					}
				}
				defer s.Close()
				sum, err = box.once(t, s)
				if err != nil {
					t.Fatalf("retry: %v", err)
				}
				t.Logf("retry: %+v", sum)
				if n := box.count(t, "INBOX"); n != 0 || box.count(t, imapingest.DefaultArchiveFolder) != len(msgs) {
					t.Errorf("after the retry: %d in INBOX, %d archived; want all %d archived", n,
						box.count(t, imapingest.DefaultArchiveFolder), len(msgs))
				}
				compare(t, "after the cut and a retry", want, skip(answers(t, s)))
				rows, err := queryRows(s, "SELECT count() FROM rollup_unsettled")
				if err != nil {
					t.Fatal(err)
				}
				if rows[0] != "0" {
					t.Errorf("unsettled report days after the retry: %s", rows[0])
				}
			})
		}
	}
}
