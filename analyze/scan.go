package analyze

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The dialect scanners: the views of both stores have the same columns
// and meanings (docs/SQL.md), but their drivers hand some values over in
// different types. Every query of the project scans those values with the
// types below, so that one query runs on both stores.

// DayText scans a day of the views as YYYY-MM-DD from either store: SQLite
// gives text, ClickHouse a Date, which its driver gives as a time.Time.
// (ClickHouse 18.16 renders the Date 1970-01-01 as "0000-00-00" in SQL,
// so the conversion is done here rather than with a CAST.)
type DayText string

// Scan implements sql.Scanner.
func (d *DayText) Scan(v any) error {
	switch v := v.(type) {
	case string:
		*d = DayText(v)
	case []byte:
		*d = DayText(v)
	case time.Time:
		*d = DayText(v.UTC().Format(time.DateOnly))
	case nil:
		*d = ""
	default:
		return fmt.Errorf("reading a day: unexpected %T", v)
	}
	return nil
}

// TimeText scans a time as "YYYY-MM-DD HH:MM:SS" UTC: text in SQLite, a
// DateTime in ClickHouse; empty for NULL and for the zero time.
type TimeText string

// Scan implements sql.Scanner.
func (t *TimeText) Scan(v any) error {
	switch v := v.(type) {
	case string:
		*t = TimeText(v)
	case []byte:
		*t = TimeText(v)
	case time.Time:
		if v.IsZero() || v.Unix() == 0 {
			*t = ""
		} else {
			*t = TimeText(v.UTC().Format(time.DateTime))
		}
	case *time.Time:
		if v == nil {
			*t = ""
			return nil
		}
		return t.Scan(*v)
	case nil:
		*t = ""
	default:
		return fmt.Errorf("reading a time: unexpected %T", v)
	}
	return nil
}

// TextList scans a list: JSON array text in SQLite, Array(String) in
// ClickHouse.
type TextList []string

// Scan implements sql.Scanner.
func (l *TextList) Scan(v any) error {
	switch v := v.(type) {
	case []string:
		*l = v
	case string:
		return l.parse([]byte(v))
	case []byte:
		return l.parse(v)
	case nil:
		*l = nil
	default:
		return fmt.Errorf("reading a list: unexpected %T", v)
	}
	return nil
}

func (l *TextList) parse(b []byte) error {
	if len(b) == 0 {
		*l = nil
		return nil
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("reading a list: %w", err)
	}
	*l = out
	return nil
}

// Count scans a figure: INTEGER in SQLite, UInt64 or Int64 in ClickHouse,
// NULL (a SUM over no rows) as 0.
type Count int64

// Scan implements sql.Scanner.
func (c *Count) Scan(v any) error {
	switch v := v.(type) {
	case int64:
		*c = Count(v)
	case uint64:
		*c = Count(v)
	case int32:
		*c = Count(v)
	case uint32:
		*c = Count(v)
	case int:
		*c = Count(v)
	case float64:
		*c = Count(v)
	case []byte:
		n, err := strconv.ParseInt(string(v), 10, 64)
		*c = Count(n)
		return err
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		*c = Count(n)
		return err
	case nil:
		*c = 0
	default:
		return fmt.Errorf("reading a number: unexpected %T", v)
	}
	return nil
}

// ID scans an id as its decimal text: an INTEGER in SQLite, a UInt64 hash
// in ClickHouse that may not fit an int64.
type ID string

// Scan implements sql.Scanner.
func (c *ID) Scan(v any) error {
	switch v := v.(type) {
	case int64:
		*c = ID(strconv.FormatInt(v, 10))
	case uint64:
		*c = ID(strconv.FormatUint(v, 10))
	case []byte:
		*c = ID(v)
	case string:
		*c = ID(v)
	default:
		return fmt.Errorf("reading an id: unexpected %T", v)
	}
	return nil
}
