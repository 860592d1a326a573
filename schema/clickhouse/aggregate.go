package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dmarcd/dmarcd"
)

// Inserts name their columns: the driver needs the list on 18.16.
const insertReport = `INSERT INTO aggregate_reports (
	report_key, reporter, report_id, domain, day, date_begin, date_end,
	org_name, email, extra_contact_info, errors, generator, version, namespace,
	adkim, aspf, p, sp, np, pct, fo, testing, discovery_method,
	extensions, record_count, message_count, stored_records, tolerations,
	source, part, message_id, received_at)`

const insertRecords = `INSERT INTO aggregate_records (
	report_key, domain, day, org_name, report_id, date_begin, date_end, p, pct,
	seq, source_ip, count, disposition, dkim, spf, reasons,
	envelope_to, envelope_from, header_from,
	dkim_domains, dkim_selectors, dkim_results, dkim_human,
	spf_domains, spf_scopes, spf_results, spf_human, extensions)`

// reportHeader is what every record row repeats of its report.
type reportHeader struct {
	key       dmarcd.ReportKey
	digest    string
	day       time.Time
	begin     time.Time
	end       time.Time
	orgName   string
	reportID  string
	p         string
	pct       *int16
	reportStr string // key.String(), for errors
}

func newHeader(r *dmarcd.AggregateReport) reportHeader {
	k := r.Key()
	begin := time.Unix(k.DateBegin, 0).UTC()
	h := reportHeader{
		key: k, digest: k.Digest(),
		day:   time.Date(begin.Year(), begin.Month(), begin.Day(), 0, 0, 0, 0, time.UTC),
		begin: begin, end: time.Unix(k.DateEnd, 0).UTC(),
		orgName: r.Metadata.OrgName, reportID: r.Metadata.ReportID, p: r.Policy.P,
		reportStr: k.String(),
	}
	if r.Policy.Pct != dmarcd.PctAbsent {
		pct := int16(r.Policy.Pct)
		h.pct = &pct
	}
	return h
}

// listReportKeys lists the keys of a policy domain's reports of a month
// (known.go).
const listReportKeys = `SELECT report_key FROM aggregate_reports WHERE domain = ? AND day >= toDate(?) AND day < toDate(?)`

// partition is where the report's rows are, for known.go.
func (h *reportHeader) partition() partition {
	return partitionOf("aggregate_reports", h.key.Domain, h.day)
}

// exists says whether a report row with the key is stored. It reads
// without FINAL: any copy is enough.
func (s *Store) exists(ctx context.Context, h reportHeader) (bool, error) {
	var n uint64
	err := s.conn.QueryRow(ctx,
		"SELECT count() FROM aggregate_reports WHERE domain = ? AND day = toDate(?) AND report_key = ?",
		h.key.Domain, h.day.Format(time.DateOnly), h.digest).Scan(&n)
	return n > 0, err
}

// BeginAggregate refuses a report stored before, or committed and waiting
// in the group (dmarcd.ErrDuplicate; known.go says how it knows without a
// query for each report), and returns a writer that buffers its
// records (inserting them in batches of Options.BatchRecords while a large
// report is read) and adds it to the group at Commit. Two writers racing
// with the same report in two processes both store it; the views count it
// once (see migrations/0001_reports.sql).
func (s *Store) BeginAggregate(ctx context.Context, r *dmarcd.AggregateReport, o dmarcd.Origin) (dmarcd.RecordWriter, error) {
	h := newHeader(r)
	if s.group.pending(h.digest) {
		return nil, dmarcd.ErrDuplicate
	}
	dup, err := s.maybeStored(ctx, h.partition(), h.digest, func(ctx context.Context) ([]string, error) {
		return s.listKeys(ctx, listReportKeys, h.key.Domain, h.day)
	})
	if err == nil && dup {
		dup, err = s.exists(ctx, h)
	}
	if err != nil {
		return nil, fmt.Errorf("looking for aggregate report %s: %w", h.reportStr, err)
	}
	if dup {
		return nil, dmarcd.ErrDuplicate
	}
	hdr := *r
	return &recordWriter{s: s, h: h, report: &hdr, origin: o}, nil
}

// recordRow is one buffered record, in the column order of insertRecords
// after the report's columns.
type recordRow struct {
	seq                                                uint32
	sourceIP                                           string
	count                                              uint64
	disposition, dkim, spf, reasons                    string
	envelopeTo, envelopeFrom, headerFrom               string
	dkimDomains, dkimSelectors, dkimResults, dkimHuman []string
	spfDomains, spfScopes, spfResults, spfHuman        []string
	extensions                                         []string
}

type recordWriter struct {
	s      *Store
	h      reportHeader
	report *dmarcd.AggregateReport
	origin dmarcd.Origin
	buf    []recordRow
	seq    uint32
	done   bool
}

func (w *recordWriter) Write(ctx context.Context, rec *dmarcd.Record) error {
	if w.done {
		return fmt.Errorf("report %s: write after commit or abort", w.h.reportStr)
	}
	w.seq++
	row := recordRow{
		seq: w.seq, sourceIP: rec.SourceIP, count: uint64(max(rec.Count, 0)),
		disposition: rec.Disposition, dkim: rec.DKIM, spf: rec.SPF, reasons: "[]",
		envelopeTo: rec.EnvelopeTo, envelopeFrom: rec.EnvelopeFrom, headerFrom: rec.HeaderFrom,
		extensions: nonNil(rec.Extensions),
	}
	if len(rec.Reasons) > 0 {
		b, err := json.Marshal(rec.Reasons)
		if err != nil {
			return fmt.Errorf("storing record %d of report %s: %w", w.seq, w.h.reportStr, err)
		}
		row.reasons = string(b)
	}
	// The eight arrays share one allocation: a group holds 20,000 records
	// (DefaultGroupRecords), and the collector goes through each object.
	n, m := len(rec.DKIMResults), len(rec.SPFResults)
	a := make([]string, 4*n+4*m)
	next := func(k int) []string {
		s := a[:k:k]
		a = a[k:]
		return s
	}
	row.dkimDomains, row.dkimSelectors, row.dkimResults, row.dkimHuman = next(n), next(n), next(n), next(n)
	for i, d := range rec.DKIMResults {
		row.dkimDomains[i], row.dkimSelectors[i], row.dkimResults[i], row.dkimHuman[i] = d.Domain, d.Selector, d.Result, d.HumanResult
	}
	row.spfDomains, row.spfScopes, row.spfResults, row.spfHuman = next(m), next(m), next(m), next(m)
	for i, p := range rec.SPFResults {
		row.spfDomains[i], row.spfScopes[i], row.spfResults[i], row.spfHuman[i] = p.Domain, p.Scope, p.Result, p.HumanResult
	}
	w.buf = append(w.buf, row)
	if len(w.buf) >= w.s.opts.BatchRecords {
		return w.flush(ctx)
	}
	return nil
}

// flush inserts the buffered records in one batch, while a large report
// is read. They stay invisible until the report row is written.
func (w *recordWriter) flush(ctx context.Context) error {
	if len(w.buf) == 0 {
		return nil
	}
	first, last := w.buf[0].seq, w.buf[len(w.buf)-1].seq
	b, err := w.s.conn.PrepareBatch(ctx, insertRecords)
	if err != nil {
		return fmt.Errorf("storing records %d-%d of report %s: %w", first, last, w.h.reportStr, err)
	}
	for i := range w.buf {
		if err := appendRecord(b, &w.h, &w.buf[i]); err != nil {
			b.Abort()
			return fmt.Errorf("storing record %d of report %s: %w", w.buf[i].seq, w.h.reportStr, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("storing records %d-%d of report %s: %w", first, last, w.h.reportStr, err)
	}
	w.buf = w.buf[:0]
	return nil
}

// appendRecord adds one record row to a batch of insertRecords.
func appendRecord(b driver.Batch, h *reportHeader, r *recordRow) error {
	return b.Append(h.digest, h.key.Domain, h.day, h.orgName, h.reportID, h.begin, h.end, h.p, h.pct,
		r.seq, r.sourceIP, r.count, r.disposition, r.dkim, r.spf, r.reasons,
		r.envelopeTo, r.envelopeFrom, r.headerFrom,
		r.dkimDomains, r.dkimSelectors, r.dkimResults, r.dkimHuman,
		r.spfDomains, r.spfScopes, r.spfResults, r.spfHuman, r.extensions)
}

// Commit adds the report, its row and the records not inserted yet, to
// the store's group, which writes the records first and the row last (the
// row makes the report visible): at once when the group is full, else at
// Flush (the store is a dmarcd.Flusher). When a write fails the group is
// kept and written again by the next Flush; a report the server stored
// without saying so is found by BeginAggregate on a retry (ErrDuplicate).
func (w *recordWriter) Commit(ctx context.Context, r *dmarcd.AggregateReport) error {
	if w.done {
		return fmt.Errorf("report %s: commit after commit or abort", w.h.reportStr)
	}
	w.done = true
	return w.s.commit(ctx, w.pending(r))
}

// pending is the committed report, for the group.
func (w *recordWriter) pending(r *dmarcd.AggregateReport) *pendingReport {
	h, o := w.h, w.origin
	row := []any{h.digest, h.key.Reporter, r.Metadata.ReportID, h.key.Domain, h.day, h.begin, h.end,
		r.Metadata.OrgName, r.Metadata.Email, r.Metadata.ExtraContactInfo, nonNil(r.Metadata.Errors),
		r.Metadata.Generator, r.Version, r.Namespace,
		r.Policy.ADKIM, r.Policy.ASPF, r.Policy.P, r.Policy.SP, r.Policy.NP, h.pct, r.Policy.FO,
		r.Policy.Testing, r.Policy.DiscoveryMethod,
		nonNil(r.Extensions), uint64(max(r.RecordCount, 0)), uint64(max(r.MessageCount, 0)), uint64(w.seq),
		nonNil(r.Tolerations), o.Source, o.Part, o.MessageID, o.ReceivedAt.UTC()}
	p := &pendingReport{h: h, row: row, records: w.buf}
	w.buf = nil
	return p
}

// Abort drops the buffered records. Batches inserted already stay, without
// a report row: no view counts them, and a later attempt at the same report
// writes the same (report_key, seq) rows, which FINAL collapses.
func (w *recordWriter) Abort() error {
	w.done = true
	w.buf = nil
	return nil
}

// nonNil gives an empty slice for nil: the driver wants a slice for an
// Array column.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
