package main

import (
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dmarcd/dmarcd/analyze"
)

type queryCmd struct {
	SQL    string `arg:"" help:"The SQL to run, read-only. See docs/SQL.md for the views and their columns."`
	Format string `help:"Output format: table, csv or json (one object per row, in an array)." enum:"table,csv,json" default:"table" short:"f"`
}

func (c *queryCmd) Run(e *env) error {
	st, err := e.openStoreReadOnly()
	if err != nil {
		return err
	}
	defer st.Close()
	if n := statements(c.SQL); n > 1 {
		return &exitError{code: exitUsage, err: fmt.Errorf("query: %d statements: run one at a time (the drivers would run the first and print only one result)", n)}
	}
	rows, err := st.Query(e.ctx, c.SQL)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("query: %w", err)}
	}
	defer rows.Close()
	return writeRows(e.stdout, rows, c.Format)
}

// writeRows prints rows in a format: an aligned table, CSV with a header
// line, or a JSON array of objects. Values print alike from either store
// (see cell).
func writeRows(w io.Writer, rows *sql.Rows, format string) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	types, err := rows.ColumnTypes()
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
		for i, v := range vals {
			vals[i] = cell(v, types[i].DatabaseTypeName())
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
				obj[c] = vals[i]
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

// cell turns a value scanned from a column of the database type typ (as
// rows.ColumnTypes names it; SQLite's views give text, so typ matters for
// ClickHouse) into what dmarcd prints, the same in every format: NULL as
// nil; bytes as a string; a Date as YYYY-MM-DD, a DateTime as YYYY-MM-DD
// HH:MM:SS in UTC (the text SQLite's views hold), both as analyze's
// scanners read them (so the zero time prints empty, as an absent time);
// an Array as a list of cells, which prints as a JSON array. Other values
// stay as scanned.
func cell(v any, typ string) any {
	typ = unwrapType(unwrapType(typ, "Nullable("), "LowCardinality(")
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		// Text, unless the column is an Array(UInt8) of numbers.
		if !strings.HasPrefix(typ, "Array(") {
			return string(x)
		}
	case time.Time:
		// Days and times as analyze's dialect scanners read them, so that
		// dmarcd query prints what the pages and the commands show (a
		// time.Time always scans). A DateTime64, which no view has, keeps
		// its fraction of a second.
		switch {
		case typ == "Date" || typ == "Date32":
			var d analyze.DayText
			_ = d.Scan(x)
			return string(d)
		case strings.HasPrefix(typ, "DateTime64"):
			return x.UTC().Format("2006-01-02 15:04:05.999999999")
		}
		var t analyze.TimeText
		_ = t.Scan(x)
		return string(t)
	case fmt.Stringer:
		// An IP address, a UUID: a slice or an array that is one value.
		if k := reflect.TypeOf(v).Kind(); k == reflect.Slice || k == reflect.Array {
			return x.String()
		}
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
		return cell(rv.Elem().Interface(), typ)
	case reflect.Slice, reflect.Array:
		elem := unwrapType(typ, "Array(")
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = cell(rv.Index(i).Interface(), elem)
		}
		return out
	}
	return v
}

// unwrapType returns the type inside wrapper, "Nullable(Date)" gives
// "Date", or typ when it is not wrapped so.
func unwrapType(typ, wrapper string) string {
	if strings.HasPrefix(typ, wrapper) && strings.HasSuffix(typ, ")") {
		return typ[len(wrapper) : len(typ)-1]
	}
	return typ
}

// text renders a cell as text: NULL as empty, lists and maps as JSON.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	if k := reflect.ValueOf(v).Kind(); k == reflect.Slice || k == reflect.Map {
		b, err := json.Marshal(v)
		if err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}

// statements counts the SQL statements of text: the runs of anything but
// blanks and comments between the semicolons outside strings, quoted
// names and comments.
func statements(text string) int {
	n := 0
	inStatement := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				return n + 1 // an open comment: the driver says what is wrong
			}
			i += end + 3
		case c == ';':
			inStatement = false
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			if !inStatement {
				inStatement = true
				n++
			}
			if c == '\'' || c == '"' || c == '`' {
				// A string or a quoted name: to its closing quote; a
				// doubled quote or a backslash escapes it.
				for i++; i < len(text); i++ {
					if text[i] == '\\' {
						i++
						continue
					}
					if text[i] == c {
						if i+1 < len(text) && text[i+1] == c {
							i++
							continue
						}
						break
					}
				}
			}
		}
	}
	return n
}
