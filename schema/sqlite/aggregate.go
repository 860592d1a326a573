package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
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

// BeginAggregate starts the report in the open group (group.go), with its
// row. The UNIQUE report_key refuses a report stored before, by this
// process or another, or waiting in the group.
func (s *Store) BeginAggregate(ctx context.Context, r *dmarcd.AggregateReport, o dmarcd.Origin) (dmarcd.RecordWriter, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("storing aggregate report: %w", err)
	}
	sqlctx := context.WithoutCancel(ctx)
	k := r.Key()
	digest := k.Digest()
	var pct any
	if r.Policy.Pct != dmarcd.PctAbsent {
		pct = r.Policy.Pct
	}
	res, err := s.exec(sqlctx, tx, insertReport,
		digest, k.Reporter, r.Metadata.ReportID, k.Domain, k.DateBegin, k.DateEnd,
		r.Metadata.OrgName, r.Metadata.Email, r.Metadata.ExtraContactInfo, jsonArray(r.Metadata.Errors),
		r.Metadata.Generator, r.Version, r.Namespace,
		r.Policy.ADKIM, r.Policy.ASPF, r.Policy.P, r.Policy.SP, r.Policy.NP, pct, r.Policy.FO,
		r.Policy.Testing, r.Policy.DiscoveryMethod,
		jsonArray(r.Extensions), r.RecordCount, r.MessageCount, jsonArray(r.Tolerations),
		o.Source, o.Part, o.MessageID, o.ReceivedAt.Unix())
	if err != nil {
		return nil, fmt.Errorf("storing aggregate report %s: %w", k, s.lose(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		s.found(digest)
		s.end(digest, 0, false)
		return nil, dmarcd.ErrDuplicate
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, fmt.Errorf("storing aggregate report %s: %w", k, s.lose(err))
	}
	w := &recordWriter{s: s, tx: tx, ctx: sqlctx, report: id, key: k, digest: digest, orgName: r.Metadata.OrgName,
		day: time.Unix(k.DateBegin, 0).UTC().Format(time.DateOnly), sums: newRollups(),
		records: pendingRows{ins: s.inserts.records}, dkim: pendingRows{ins: s.inserts.dkim}}
	return w, nil
}

// recordWriter writes one report into its group's transaction, which it
// holds from BeginAggregate to Commit or Abort, or to its first error
// (after which Abort is a no-op).
type recordWriter struct {
	s       *Store
	tx      *sql.Tx
	ctx     context.Context // of the statements: see Store.begin
	records pendingRows     // records not inserted yet
	dkim    pendingRows     // their DKIM results
	json    []byte          // the JSON arrays of a record
	report  int64
	key     dmarcd.ReportKey
	digest  string
	orgName string
	seq     int64
	done    bool
	// spilled: sums were written into the rollups before Commit, after
	// the savepoint spillSavepoint.
	spilled bool

	// The report's sums for the daily rollups (rollup.go), added to its
	// group's at Commit; written into the transaction before, after the
	// savepoint spillSavepoint, whenever they reach MaxPendingSums.
	day  string
	sums rollups
}

func (w *recordWriter) Write(ctx context.Context, rec *dmarcd.Record) error {
	if w.done {
		return fmt.Errorf("report %s: write after commit or abort", w.key)
	}
	if err := ctx.Err(); err != nil {
		return errors.Join(err, w.Abort())
	}
	if err := w.write(rec); err != nil {
		w.done = true
		return w.s.lose(err)
	}
	return nil
}

func (w *recordWriter) write(rec *dmarcd.Record) error {
	ctx := w.ctx
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
	w.sums.addRecord(w.day, w.key.Domain, rec)
	if w.sums.size() >= MaxPendingSums {
		if !w.spilled {
			if _, err := w.s.exec(ctx, w.tx, spillSavepoint); err != nil {
				return fmt.Errorf("storing the rollups of report %s: %w", w.key, err)
			}
			w.spilled = true
		}
		if err := w.sums.write(ctx, w.tx, w.s.inserts); err != nil {
			return fmt.Errorf("storing the rollups of report %s: %w", w.key, err)
		}
	}
	return nil
}

func (w *recordWriter) Commit(ctx context.Context, r *dmarcd.AggregateReport) error {
	if w.done {
		return fmt.Errorf("report %s: commit after commit or abort", w.key)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("committing report %s: %w", w.key, errors.Join(err, w.Abort()))
	}
	w.done = true
	ctx = w.ctx
	err := w.records.flush(ctx, w.tx)
	if err == nil {
		err = w.dkim.flush(ctx, w.tx)
	}
	if err == nil {
		_, err = w.s.exec(ctx, w.tx, finishReport, r.RecordCount, r.MessageCount,
			jsonArray(r.Tolerations), jsonArray(r.Extensions), w.report)
	}
	if err == nil && w.spilled {
		_, err = w.s.exec(ctx, w.tx, releaseSpill)
	}
	if err == nil {
		w.sums.addReport(w.day, w.key.Domain, w.orgName, r.MessageCount)
		err = w.s.addSums(ctx, &w.sums)
	}
	if err != nil {
		return fmt.Errorf("committing report %s: %w", w.key, w.s.lose(err))
	}
	if err := w.s.end(w.digest, int(w.seq), true); err != nil {
		return fmt.Errorf("committing report %s: %w", w.key, err)
	}
	return nil
}

// Abort undoes the report in its group: the sums it wrote into the rollups
// before Commit, if any, then its row, which takes its records and their
// DKIM results along (ON DELETE CASCADE).
func (w *recordWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	var err error
	if w.spilled {
		if _, err = w.s.exec(w.ctx, w.tx, rollbackToSpill); err == nil {
			_, err = w.s.exec(w.ctx, w.tx, releaseSpill)
		}
	}
	if err == nil {
		_, err = w.s.exec(w.ctx, w.tx, deleteReport, w.report)
	}
	if err != nil {
		return fmt.Errorf("aborting report %s: %w", w.key, w.s.lose(err))
	}
	return w.s.end(w.digest, 0, false)
}

// The statements that undo a report (Abort).
const (
	deleteReport    = `DELETE FROM aggregate_reports WHERE id = ?`
	spillSavepoint  = `SAVEPOINT spill`
	releaseSpill    = `RELEASE spill`
	rollbackToSpill = `ROLLBACK TO spill`
)

// jsonArray renders strings as a JSON array ("[]" for none), the form the
// embedded store uses where ClickHouse has Array(String).
func jsonArray(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(s) // a []string always marshals
	return string(b)
}
