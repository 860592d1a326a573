package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// RowsPerInsert is how many rows the writer puts in one INSERT of records,
// DKIM results and per-source rollup sums. Each statement costs
// database/sql and SQLite a fixed overhead (locking, binding, the virtual
// machine's start and reset) larger than a record's own insert: a profile
// of the writer one row per statement spent 40% of its time there
// (BENCHMARKS.md, "The writers against their engines"). 32 rows of 20
// columns bind 640 parameters, far below SQLite's limit of 32,766.
const RowsPerInsert = 32

// multiInsert is an INSERT of any number of rows, run as statements of
// RowsPerInsert rows, and of the sizes below it that the rest needs:
// 16, 8, then 1 to 7 (31 rows are 16 + 8 + 7). They are prepared when the
// store opens: the store's one connection is held by a report's
// transaction whenever the writer runs, so database/sql could not prepare
// on it then.
type multiInsert struct {
	stmts map[int]*sql.Stmt
}

// insertSizes are the numbers of rows of multiInsert's statements.
var insertSizes = []int{RowsPerInsert, 16, 8, 7, 6, 5, 4, 3, 2, 1}

func prepareMultiInsert(ctx context.Context, db *sql.DB, head string, columns int, tail string) (*multiInsert, error) {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", columns), ",") + ")"
	m := &multiInsert{stmts: map[int]*sql.Stmt{}}
	for _, n := range insertSizes {
		st, err := db.PrepareContext(ctx, head+" "+strings.TrimSuffix(strings.Repeat(row+",", n), ",")+" "+tail)
		if err != nil {
			m.close()
			return nil, err
		}
		m.stmts[n] = st
	}
	return m, nil
}

// exec inserts the rows whose values args holds, in tx; rows is their
// number, and args holds the same number of values for each.
func (m *multiInsert) exec(ctx context.Context, tx *sql.Tx, rows int, args []any) error {
	columns := len(args) / rows
	for rows > 0 {
		n := rows
		if n > 8 {
			n = 8
			for _, size := range insertSizes[:2] {
				if rows >= size {
					n = size
					break
				}
			}
		}
		txs := tx.StmtContext(ctx, m.stmts[n])
		_, err := txs.ExecContext(ctx, args[:n*columns]...)
		txs.Close()
		if err != nil {
			return err
		}
		args, rows = args[n*columns:], rows-n
	}
	return nil
}

// close closes the prepared statements.
func (m *multiInsert) close() {
	for _, st := range m.stmts {
		st.Close()
	}
}

// pendingRows are rows of one multiInsert waiting to be inserted.
type pendingRows struct {
	ins  *multiInsert
	args []any
	rows int
}

// add appends a row's values, and inserts the pending rows when there are
// RowsPerInsert of them.
func (p *pendingRows) add(ctx context.Context, tx *sql.Tx, values ...any) error {
	p.args = append(p.args, values...)
	p.rows++
	if p.rows < RowsPerInsert {
		return nil
	}
	return p.flush(ctx, tx)
}

// flush inserts the pending rows.
func (p *pendingRows) flush(ctx context.Context, tx *sql.Tx) error {
	if p.rows == 0 {
		return nil
	}
	err := p.ins.exec(ctx, tx, p.rows, p.args)
	clear(p.args)
	p.args, p.rows = p.args[:0], 0
	return err
}

// appendJSONString appends s as encoding/json writes it (its escapes
// included, so that the stored text is the same as json.Marshal's): plain
// ASCII is copied, anything else is left to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always marshals
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonField appends the JSON array of one field of each element of list
// ("[]" for none), as jsonArray would of the field's values.
func jsonField[T any](b []byte, list []T, field func(*T) string) []byte {
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, field(&list[i]))
	}
	return append(b, ']')
}

// statements are a store's prepared statements: the multi-row inserts of
// the writer, and the statements it runs once per report (SQLite compiles
// a query each time it is run unprepared, which costs more than a small
// report's rows).
type statements struct {
	records, dkim                          *multiInsert
	domains, sources, reporters, selectors *multiInsert // rollup.go
	bySQL                                  map[string]*sql.Stmt
}

// perReport are the statements the writer runs once per report.
var perReport = []string{insertReport, finishReport, deleteReport, spillSavepoint, releaseSpill, rollbackToSpill, insertFailure}

func prepareStatements(ctx context.Context, db *sql.DB) (*statements, error) {
	st := &statements{bySQL: map[string]*sql.Stmt{}}
	var err error
	if st.records, err = prepareMultiInsert(ctx, db, insertRecords, recordColumns, ""); err != nil {
		return nil, err
	}
	if st.dkim, err = prepareMultiInsert(ctx, db, insertDKIMs, dkimColumns, ""); err != nil {
		st.close()
		return nil, err
	}
	for _, m := range []struct {
		to         **multiInsert
		head, tail string
		columns    int
	}{
		{&st.domains, upsertDomains, upsertDomainsTail, domainColumns},
		{&st.sources, upsertSources, upsertSourcesTail, sourceColumns},
		{&st.reporters, upsertReporters, upsertReportersTail, reporterColumns},
		{&st.selectors, upsertSelectors, upsertSelectorsTail, selectorColumns},
	} {
		if *m.to, err = prepareMultiInsert(ctx, db, m.head, m.columns, m.tail); err != nil {
			st.close()
			return nil, err
		}
	}
	for _, q := range perReport {
		p, err := db.PrepareContext(ctx, q)
		if err != nil {
			st.close()
			return nil, err
		}
		st.bySQL[q] = p
	}
	return st, nil
}

// exec runs query, one of perReport, in tx.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	txs := tx.StmtContext(ctx, s.inserts.bySQL[query])
	defer txs.Close()
	return txs.ExecContext(ctx, args...)
}

// close closes the prepared statements.
func (st *statements) close() {
	for _, m := range []*multiInsert{st.records, st.dkim, st.domains, st.sources, st.reporters, st.selectors} {
		if m != nil {
			m.close()
		}
	}
	for _, p := range st.bySQL {
		p.Close()
	}
}
