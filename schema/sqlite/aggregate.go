package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

const insertReport = `INSERT INTO aggregate_reports (
	report_key, reporter, report_id, domain, date_begin, date_end,
	org_name, email, extra_contact_info, errors, generator, version, namespace,
	adkim, aspf, p, sp, np, pct, fo, testing, discovery_method,
	extensions, record_count, message_count, tolerations,
	source, part, message_id, received_at
) VALUES (?,?,?,?,?,?, ?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?, ?,?,?,?, ?,?,?,?)
ON CONFLICT (report_key) DO NOTHING`

// The rows of a report's records and of their DKIM results, inserted
// RowsPerInsert at a time (insert.go).
const (
	insertRecords = `INSERT INTO aggregate_records (
	report, seq, source_ip, count, disposition, dkim, spf, reasons,
	envelope_to, envelope_from, header_from,
	dkim_domains, dkim_selectors, dkim_results, dkim_human,
	spf_domains, spf_scopes, spf_results, spf_human, extensions
) VALUES`
	recordColumns = 20
	insertDKIMs   = `INSERT INTO aggregate_dkim (report, seq, idx, domain, selector, result) VALUES`
	dkimColumns   = 6
)

const finishReport = `UPDATE aggregate_reports
SET record_count = ?, message_count = ?, tolerations = ?, extensions = ?
WHERE id = ?`

// BeginAggregate starts a transaction holding the report row. The UNIQUE
// report_key refuses a report stored before, by this process or another.
func (s *Store) BeginAggregate(ctx context.Context, r *dmarcd.AggregateReport, o dmarcd.Origin) (dmarcd.RecordWriter, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("storing aggregate report: %w", err)
	}
	k := r.Key()
	var pct any
	if r.Policy.Pct != dmarcd.PctAbsent {
		pct = r.Policy.Pct
	}
	res, err := s.exec(ctx, tx, insertReport,
		k.Digest(), k.Reporter, r.Metadata.ReportID, k.Domain, k.DateBegin, k.DateEnd,
		r.Metadata.OrgName, r.Metadata.Email, r.Metadata.ExtraContactInfo, jsonArray(r.Metadata.Errors),
		r.Metadata.Generator, r.Version, r.Namespace,
		r.Policy.ADKIM, r.Policy.ASPF, r.Policy.P, r.Policy.SP, r.Policy.NP, pct, r.Policy.FO,
		r.Policy.Testing, r.Policy.DiscoveryMethod,
		jsonArray(r.Extensions), r.RecordCount, r.MessageCount, jsonArray(r.Tolerations),
		o.Source, o.Part, o.MessageID, o.ReceivedAt.Unix())
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("storing aggregate report %s: %w", k, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		tx.Rollback()
		return nil, dmarcd.ErrDuplicate
	}
	id, err := res.LastInsertId()
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("storing aggregate report %s: %w", k, err)
	}
	w := &recordWriter{s: s, tx: tx, report: id, key: k, orgName: r.Metadata.OrgName,
		day: time.Unix(k.DateBegin, 0).UTC().Format(time.DateOnly), sources: map[string]*sourceSums{}, selectors: map[[2]string]*selectorSums{},
		records: pendingRows{ins: s.inserts.records}, dkim: pendingRows{ins: s.inserts.dkim}}
	return w, nil
}

type recordWriter struct {
	s       *Store
	tx      *sql.Tx
	records pendingRows // records not inserted yet
	dkim    pendingRows // their DKIM results
	json    []byte      // the JSON arrays of a record
	report  int64
	key     dmarcd.ReportKey
	orgName string
	seq     int64
	done    bool

	// The report's contribution to the daily rollups, added at Commit;
	// the per-source sums are written into the transaction whenever they
	// reach MaxPendingSources, so that a report with a million sources
	// holds no million sums.
	day       string
	domain    domainSums
	sources   map[string]*sourceSums
	selectors map[[2]string]*selectorSums
}

// MaxPendingSources bounds the per-source rollup sums a report holds in
// memory before it adds them to rollup_sources (the additions sum, so
// writing them in parts within the transaction gives the same rows).
const MaxPendingSources = 10_000

type sourceSums struct{ messages, dmarcPass, dkimAligned, spfAligned int64 }

type domainSums struct {
	sourceSums
	quarantined, rejected int64
}

type selectorSums struct{ messages, passed int64 }

// add counts a record into the rollup sums, as the daily_* views define
// them: DMARC passes when aligned DKIM or aligned SPF passes.
func (w *recordWriter) add(rec *dmarcd.Record) {
	n := rec.Count
	s := w.sources[rec.SourceIP]
	if s == nil {
		s = &sourceSums{}
		w.sources[rec.SourceIP] = s
	}
	for _, sum := range []*sourceSums{s, &w.domain.sourceSums} {
		sum.messages += n
		if rec.DKIM == "pass" || rec.SPF == "pass" {
			sum.dmarcPass += n
		}
		if rec.DKIM == "pass" {
			sum.dkimAligned += n
		}
		if rec.SPF == "pass" {
			sum.spfAligned += n
		}
	}
	switch rec.Disposition {
	case "quarantine":
		w.domain.quarantined += n
	case "reject":
		w.domain.rejected += n
	}
	for _, d := range rec.DKIMResults {
		k := [2]string{d.Domain, d.Selector}
		sel := w.selectors[k]
		if sel == nil {
			sel = &selectorSums{}
			w.selectors[k] = sel
		}
		sel.messages += n
		if d.Result == "pass" {
			sel.passed += n
		}
	}
}

func (w *recordWriter) Write(ctx context.Context, rec *dmarcd.Record) error {
	if w.done {
		return fmt.Errorf("report %s: write after commit or abort", w.key)
	}
	w.seq++
	reasons := "[]"
	if len(rec.Reasons) > 0 {
		b, err := json.Marshal(rec.Reasons)
		if err != nil {
			return err
		}
		reasons = string(b)
	}
	// The JSON arrays, built in one buffer and cut into strings.
	d, p := rec.DKIMResults, rec.SPFResults
	b := w.json[:0]
	var ends [9]int
	b = jsonField(b, d, func(r *dmarcd.DKIMResult) string { return r.Domain })
	ends[0] = len(b)
	b = jsonField(b, d, func(r *dmarcd.DKIMResult) string { return r.Selector })
	ends[1] = len(b)
	b = jsonField(b, d, func(r *dmarcd.DKIMResult) string { return r.Result })
	ends[2] = len(b)
	b = jsonField(b, d, func(r *dmarcd.DKIMResult) string { return r.HumanResult })
	ends[3] = len(b)
	b = jsonField(b, p, func(r *dmarcd.SPFResult) string { return r.Domain })
	ends[4] = len(b)
	b = jsonField(b, p, func(r *dmarcd.SPFResult) string { return r.Scope })
	ends[5] = len(b)
	b = jsonField(b, p, func(r *dmarcd.SPFResult) string { return r.Result })
	ends[6] = len(b)
	b = jsonField(b, p, func(r *dmarcd.SPFResult) string { return r.HumanResult })
	ends[7] = len(b)
	b = jsonField(b, rec.Extensions, func(e *string) string { return *e })
	ends[8] = len(b)
	w.json = b
	all := string(b)
	field := func(i int) string {
		if i == 0 {
			return all[:ends[0]]
		}
		return all[ends[i-1]:ends[i]]
	}
	err := w.records.add(ctx, w.tx, w.report, w.seq, rec.SourceIP, rec.Count, rec.Disposition, rec.DKIM, rec.SPF, reasons,
		rec.EnvelopeTo, rec.EnvelopeFrom, rec.HeaderFrom,
		field(0), field(1), field(2), field(3), field(4), field(5), field(6), field(7), field(8))
	if err != nil {
		return fmt.Errorf("storing records up to %d of report %s: %w", w.seq, w.key, err)
	}
	for i, r := range d {
		if err := w.dkim.add(ctx, w.tx, w.report, w.seq, i+1, r.Domain, r.Selector, r.Result); err != nil {
			return fmt.Errorf("storing DKIM results up to record %d of report %s: %w", w.seq, w.key, err)
		}
	}
	w.add(rec)
	if len(w.sources) >= MaxPendingSources {
		if err := w.spillSources(ctx); err != nil {
			return fmt.Errorf("storing the rollups of report %s: %w", w.key, err)
		}
	}
	return nil
}

const (
	upsertDomain = `INSERT INTO rollup_domains (day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected)
VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (domain, day) DO UPDATE SET
messages = messages + excluded.messages, dmarc_pass = dmarc_pass + excluded.dmarc_pass,
dkim_aligned = dkim_aligned + excluded.dkim_aligned, spf_aligned = spf_aligned + excluded.spf_aligned,
quarantined = quarantined + excluded.quarantined, rejected = rejected + excluded.rejected`
	// upsertSources is the head and the tail of a multiInsert.
	upsertSources     = `INSERT INTO rollup_sources (day, domain, source_ip, messages, dmarc_pass, dkim_aligned, spf_aligned) VALUES`
	upsertSourcesTail = `ON CONFLICT (domain, day, source_ip) DO UPDATE SET
messages = messages + excluded.messages, dmarc_pass = dmarc_pass + excluded.dmarc_pass,
dkim_aligned = dkim_aligned + excluded.dkim_aligned, spf_aligned = spf_aligned + excluded.spf_aligned`
	sourceColumns  = 7
	upsertReporter = `INSERT INTO rollup_reporters (day, domain, org_name, reports, messages)
VALUES (?,?,?,1,?) ON CONFLICT (domain, day, org_name) DO UPDATE SET
reports = reports + 1, messages = messages + excluded.messages`
	upsertSelector = `INSERT INTO rollup_selectors (day, domain, dkim_domain, selector, messages, passed)
VALUES (?,?,?,?,?,?) ON CONFLICT (domain, day, dkim_domain, selector) DO UPDATE SET
messages = messages + excluded.messages, passed = passed + excluded.passed`
)

// rollup adds the report to the daily rollups, in its transaction.
func (w *recordWriter) rollup(ctx context.Context, r *dmarcd.AggregateReport) error {
	d, dom := w.day, w.key.Domain
	if _, err := w.s.exec(ctx, w.tx, upsertDomain, d, dom, w.domain.messages, w.domain.dmarcPass,
		w.domain.dkimAligned, w.domain.spfAligned, w.domain.quarantined, w.domain.rejected); err != nil {
		return err
	}
	if _, err := w.s.exec(ctx, w.tx, upsertReporter, d, dom, w.orgName, r.MessageCount); err != nil {
		return err
	}
	if err := w.spillSources(ctx); err != nil {
		return err
	}
	for k, s := range w.selectors {
		if _, err := w.s.exec(ctx, w.tx, upsertSelector, d, dom, k[0], k[1], s.messages, s.passed); err != nil {
			return err
		}
	}
	return nil
}

// spillSources adds the pending per-source sums to rollup_sources, in the
// report's transaction, RowsPerInsert sources a statement, and forgets
// them.
func (w *recordWriter) spillSources(ctx context.Context) error {
	if len(w.sources) == 0 {
		return nil
	}
	rows := pendingRows{ins: w.s.inserts.sources}
	for ip, s := range w.sources {
		if err := rows.add(ctx, w.tx, w.day, w.key.Domain, ip, s.messages, s.dmarcPass, s.dkimAligned, s.spfAligned); err != nil {
			return err
		}
	}
	if err := rows.flush(ctx, w.tx); err != nil {
		return err
	}
	clear(w.sources)
	return nil
}

func (w *recordWriter) Commit(ctx context.Context, r *dmarcd.AggregateReport) error {
	if w.done {
		return fmt.Errorf("report %s: commit after commit or abort", w.key)
	}
	w.done = true
	err := w.records.flush(ctx, w.tx)
	if err == nil {
		err = w.dkim.flush(ctx, w.tx)
	}
	if err == nil {
		_, err = w.s.exec(ctx, w.tx, finishReport, r.RecordCount, r.MessageCount,
			jsonArray(r.Tolerations), jsonArray(r.Extensions), w.report)
	}
	if err == nil {
		err = w.rollup(ctx, r)
	}
	if err == nil {
		err = w.tx.Commit()
	}
	if err != nil {
		w.tx.Rollback()
		return fmt.Errorf("committing report %s: %w", w.key, err)
	}
	return nil
}

func (w *recordWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.tx.Rollback()
}

// jsonArray renders strings as a JSON array ("[]" for none), the form the
// embedded store uses where ClickHouse has Array(String).
func jsonArray(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(s) // a []string always marshals
	return string(b)
}
