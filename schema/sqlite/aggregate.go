package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

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
	w := &recordWriter{tx: tx, report: id, key: k}
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
	tx     *sql.Tx
	rec    *sql.Stmt
	dkim   *sql.Stmt
	report int64
	key    dmarcd.ReportKey
	seq    int64
	done   bool
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
