package main

import (
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

type queryCmd struct {
	SQL    string `arg:"" help:"The SQL to run, read-only. See docs/SQL.md for the views and their columns."`
	Format string `help:"Output format: table, csv or json (one object per row, in an array)." enum:"table,csv,json" default:"table" short:"f"`
}

func (c *queryCmd) Run(e *env) error {
	st, err := e.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	rows, err := st.Query(e.ctx, c.SQL)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("query: %w", err)}
	}
	defer rows.Close()
	return writeRows(e.stdout, rows, c.Format)
}

// writeRows prints rows in a format: an aligned table, CSV with a header
// line, or a JSON array of objects.
func writeRows(w io.Writer, rows *sql.Rows, format string) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var (
		tw  *tabwriter.Writer
		cw  *csv.Writer
		enc *json.Encoder
		n   int
	)
	switch format {
	case "csv":
		cw = csv.NewWriter(w)
		cw.Write(cols)
	case "json":
		enc = json.NewEncoder(w)
		io.WriteString(w, "[")
	default:
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		switch {
		case cw != nil:
			rec := make([]string, len(vals))
			for i, v := range vals {
				rec[i] = text(v)
			}
			cw.Write(rec)
		case enc != nil:
			obj := make(map[string]any, len(cols))
			for i, c := range cols {
				obj[c] = jsonValue(vals[i])
			}
			if n > 0 {
				io.WriteString(w, ",")
			}
			io.WriteString(w, "\n")
			if err := enc.Encode(obj); err != nil {
				return err
			}
		default:
			cells := make([]string, len(vals))
			for i, v := range vals {
				cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(text(v))
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	switch {
	case cw != nil:
		cw.Flush()
		return cw.Error()
	case enc != nil:
		_, err := io.WriteString(w, "]\n")
		return err
	}
	return tw.Flush()
}

// text renders a scanned value as text: NULL as empty, bytes as a string,
// times in UTC.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05")
	}
	return fmt.Sprint(v)
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05")
	}
	return v
}
