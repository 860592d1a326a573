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

const insertRecord = `INSERT INTO aggregate_records (
	report, seq, source_ip, count, disposition, dkim, spf, reasons,
	envelope_to, envelope_from, header_from,
	dkim_domains, dkim_selectors, dkim_results, dkim_human,
	spf_domains, spf_scopes, spf_results, spf_human, extensions
) VALUES (?,?,?,?,?,?,?,?, ?,?,?, ?,?,?,?, ?,?,?,?,?)`

const insertDKIM = `INSERT INTO aggregate_dkim (report, seq, idx, domain, selector, result) VALUES (?,?,?,?,?,?)`

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
	res, err := tx.ExecContext(ctx, insertReport,
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
	w := &recordWriter{tx: tx, report: id, key: k, orgName: r.Metadata.OrgName,
		day: time.Unix(k.DateBegin, 0).UTC().Format(time.DateOnly), sources: map[string]*sourceSums{}, selectors: map[[2]string]*selectorSums{}}
	if w.rec, err = tx.PrepareContext(ctx, insertRecord); err == nil {
		w.dkim, err = tx.PrepareContext(ctx, insertDKIM)
	}
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("storing aggregate report %s: %w", k, err)
	}
	return w, nil
}

type recordWriter struct {
	tx      *sql.Tx
	rec     *sql.Stmt
	dkim    *sql.Stmt
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
	w.seq++
	d := rec.DKIMResults
	dkimDomains, dkimSelectors, dkimResults, dkimHuman := make([]string, len(d)), make([]string, len(d)), make([]string, len(d)), make([]string, len(d))
	for i, r := range d {
		dkimDomains[i], dkimSelectors[i], dkimResults[i], dkimHuman[i] = r.Domain, r.Selector, r.Result, r.HumanResult
	}
	p := rec.SPFResults
	spfDomains, spfScopes, spfResults, spfHuman := make([]string, len(p)), make([]string, len(p)), make([]string, len(p)), make([]string, len(p))
	for i, r := range p {
		spfDomains[i], spfScopes[i], spfResults[i], spfHuman[i] = r.Domain, r.Scope, r.Result, r.HumanResult
	}
	reasons := "[]"
	if len(rec.Reasons) > 0 {
		b, err := json.Marshal(rec.Reasons)
		if err != nil {
			return err
		}
		reasons = string(b)
	}
	_, err := w.rec.ExecContext(ctx, w.report, w.seq, rec.SourceIP, rec.Count, rec.Disposition, rec.DKIM, rec.SPF, reasons,
		rec.EnvelopeTo, rec.EnvelopeFrom, rec.HeaderFrom,
		jsonArray(dkimDomains), jsonArray(dkimSelectors), jsonArray(dkimResults), jsonArray(dkimHuman),
		jsonArray(spfDomains), jsonArray(spfScopes), jsonArray(spfResults), jsonArray(spfHuman),
		jsonArray(rec.Extensions))
	if err != nil {
		return fmt.Errorf("storing record %d of report %s: %w", w.seq, w.key, err)
	}
	for i, r := range d {
		if _, err := w.dkim.ExecContext(ctx, w.report, w.seq, i+1, r.Domain, r.Selector, r.Result); err != nil {
			return fmt.Errorf("storing DKIM result of record %d of report %s: %w", w.seq, w.key, err)
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
	upsertSource = `INSERT INTO rollup_sources (day, domain, source_ip, messages, dmarc_pass, dkim_aligned, spf_aligned)
VALUES (?,?,?,?,?,?,?) ON CONFLICT (domain, day, source_ip) DO UPDATE SET
messages = messages + excluded.messages, dmarc_pass = dmarc_pass + excluded.dmarc_pass,
dkim_aligned = dkim_aligned + excluded.dkim_aligned, spf_aligned = spf_aligned + excluded.spf_aligned`
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
	if _, err := w.tx.ExecContext(ctx, upsertDomain, d, dom, w.domain.messages, w.domain.dmarcPass,
		w.domain.dkimAligned, w.domain.spfAligned, w.domain.quarantined, w.domain.rejected); err != nil {
		return err
	}
	if _, err := w.tx.ExecContext(ctx, upsertReporter, d, dom, w.orgName, r.MessageCount); err != nil {
		return err
	}
	if err := w.spillSources(ctx); err != nil {
		return err
	}
	for k, s := range w.selectors {
		if _, err := w.tx.ExecContext(ctx, upsertSelector, d, dom, k[0], k[1], s.messages, s.passed); err != nil {
			return err
		}
	}
	return nil
}

// spillSources adds the pending per-source sums to rollup_sources, in the
// report's transaction, and forgets them.
func (w *recordWriter) spillSources(ctx context.Context) error {
	if len(w.sources) == 0 {
		return nil
	}
	src, err := w.tx.PrepareContext(ctx, upsertSource)
	if err != nil {
		return err
	}
	defer src.Close()
	for ip, s := range w.sources {
		if _, err := src.ExecContext(ctx, w.day, w.key.Domain, ip, s.messages, s.dmarcPass, s.dkimAligned, s.spfAligned); err != nil {
			return err
		}
	}
	clear(w.sources)
	return nil
}

func (w *recordWriter) Commit(ctx context.Context, r *dmarcd.AggregateReport) error {
	if w.done {
		return fmt.Errorf("report %s: commit after commit or abort", w.key)
	}
	w.done = true
	_, err := w.tx.ExecContext(ctx, finishReport, r.RecordCount, r.MessageCount,
		jsonArray(r.Tolerations), jsonArray(r.Extensions), w.report)
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
