package clickhouse

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
	"sync/atomic"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// openReadPool opens the database/sql pool of Query. A connection on which
// a query failed is closed, not pooled again: when ClickHouse 18.16 refuses
// a query before reading all of it (a syntax error, readonly), the end of
// the query the driver sent is still unread, and the server takes it for
// the next query's first packet. Without this, the next query on that
// connection fails ("Unexpected packet Data received from client"), or
// answers with the error of the one before: one user's mistyped SQL in
// `dmarcd query` or a failing page query would poison later answers.
func openReadPool(opts *ch.Options) *sql.DB {
	return sql.OpenDB(discardOnError{ch.Connector(opts)})
}

// discardOnError opens connections that leave the pool after an error.
type discardOnError struct{ driver.Connector }

func (c discardOnError) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	q, ok := conn.(interface {
		driver.QueryerContext
		driver.ExecerContext
		driver.NamedValueChecker
	})
	if !ok {
		conn.Close()
		return nil, errors.New("clickhouse driver: the connection cannot run queries with a context")
	}
	return &readConn{Conn: conn, q: q}, nil
}

// readConn is a driver connection that says it is no longer valid once a
// query on it failed.
type readConn struct {
	driver.Conn
	q interface {
		driver.QueryerContext
		driver.ExecerContext
		driver.NamedValueChecker
	}
	failed atomic.Bool
}

func (c *readConn) fail(err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		c.failed.Store(true)
	}
	return err
}

func (c *readConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.q.QueryContext(ctx, query, args)
	if err != nil {
		return nil, c.fail(err)
	}
	return &readRows{Rows: rows, conn: c}, nil
}

func (c *readConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.q.ExecContext(ctx, query, args)
	return res, c.fail(err)
}

func (c *readConn) CheckNamedValue(v *driver.NamedValue) error { return c.q.CheckNamedValue(v) }

// IsValid keeps a connection out of the pool once a query on it failed
// (database/sql asks before pooling it again).
func (c *readConn) IsValid() bool { return !c.failed.Load() }

// ResetSession refuses a connection on which a query failed, and lets the
// driver check the others.
func (c *readConn) ResetSession(ctx context.Context) error {
	if c.failed.Load() {
		return driver.ErrBadConn
	}
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// readRows marks its connection failed when reading a row fails, and
// passes on what the driver says of the columns.
type readRows struct {
	driver.Rows
	conn *readConn
}

func (r *readRows) Next(dest []driver.Value) error { return r.conn.fail(r.Rows.Next(dest)) }

func (r *readRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *readRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *readRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

var (
	_ driver.Validator                      = (*readConn)(nil)
	_ driver.SessionResetter                = (*readConn)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*readRows)(nil)
)
