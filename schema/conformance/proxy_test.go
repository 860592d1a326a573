package conformance

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// cutMode says where, around the insert it watches for, the proxy cuts.
type cutMode int

const (
	// cutBefore closes the connection instead of passing the INSERT query
	// on: the server never sees it.
	cutBefore cutMode = iota
	// cutMidData passes the query on, then half of the next data the
	// client sends (the rows of the insert), then closes: the server has
	// a truncated block and stores none of it.
	cutMidData
	// cutUnanswered passes everything the client sends, but nothing the
	// server answers once the rows of the insert went through, and closes
	// after unansweredDelay: the server stored the rows, the client saw
	// its connection fail.
	cutUnanswered
)

// unansweredDelay is how long cutUnanswered leaves the server to store an
// insert it received whole.
const unansweredDelay = 300 * time.Millisecond

// minDataBytes tells the rows of an insert from the empty block that ends a
// query packet: the smallest insert of one record is larger.
const minDataBytes = 64

// cut is one planned cut: at the nth query holding marker.
type cut struct {
	marker string
	nth    int
	mode   cutMode
}

// proxy forwards TCP connections from the driver to a ClickHouse server
// and cuts one of them as planned. The native protocol sends the SQL of a
// query as plain text, so the proxy finds an insert by its text.
type proxy struct {
	t      testing.TB
	l      net.Listener
	target string

	mu    sync.Mutex
	plan  *cut
	seen  int
	done  bool
	conns []net.Conn
}

// newProxy listens on a loopback port and forwards to the server of dsn
// (clickhouse://user:pass@host:port/db).
func newProxy(t testing.TB, dsn string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rest := strings.TrimPrefix(dsn, "clickhouse://")
	rest = rest[strings.IndexByte(rest, '@')+1:]
	p := &proxy{t: t, l: l, target: rest[:strings.IndexByte(rest, '/')]}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// dsn returns the DSN dsn with the proxy as its host.
func (p *proxy) dsn(dsn string) string {
	head, rest, _ := strings.Cut(dsn, "@")
	_, db, _ := strings.Cut(rest, "/")
	return head + "@" + p.l.Addr().String() + "/" + db
}

func (p *proxy) arm(c cut) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan, p.seen, p.done = &c, 0, false
}

func (p *proxy) fired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *proxy) serve() {
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		c := &proxyConn{p: p, client: client, server: server}
		go c.upstream()
		go c.downstream()
	}
}

// proxyConn is one proxied connection.
type proxyConn struct {
	p              *proxy
	client, server net.Conn

	mu      sync.Mutex
	mute    bool // cutUnanswered: drop what the server answers
	pending *cut // the marker was seen; cut at the rows that follow
	tail    []byte
}

func (c *proxyConn) shut() {
	c.client.Close()
	c.server.Close()
}

// upstream copies client to server, watching for the planned insert.
func (c *proxyConn) upstream() {
	defer c.shut()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if c.pending != nil && n >= minDataBytes {
				switch c.pending.mode {
				case cutMidData:
					c.server.Write(chunk[:n/2])
					time.Sleep(50 * time.Millisecond) // let the server read it
					return
				case cutUnanswered:
					// The rows go through; what the server says
					// about them does not.
					c.mu.Lock()
					c.mute = true
					c.mu.Unlock()
					c.pending = nil
					go func() {
						time.Sleep(unansweredDelay)
						c.shut()
					}()
				}
			}
			if plan := c.watch(chunk); plan != nil {
				switch plan.mode {
				case cutBefore:
					return
				case cutMidData, cutUnanswered:
					c.pending = plan
				}
			}
			if _, err := c.server.Write(chunk); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// watch counts the planned marker in what the client sends (across
// reads) and returns the plan when this chunk holds its nth occurrence.
func (c *proxyConn) watch(chunk []byte) *cut {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plan == nil || p.done {
		return nil
	}
	marker := []byte(p.plan.marker)
	window := append(c.tail, chunk...)
	found := bytes.Count(window, marker)
	if keep := len(marker) - 1; len(window) > keep {
		c.tail = append([]byte(nil), window[len(window)-keep:]...)
	} else {
		c.tail = window
	}
	if found == 0 {
		return nil
	}
	p.seen += found
	if p.seen < p.plan.nth {
		return nil
	}
	p.done = true
	return p.plan
}

// downstream copies server to client, unless muted.
func (c *proxyConn) downstream() {
	defer c.shut()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			c.mu.Lock()
			mute := c.mute
			c.mu.Unlock()
			if !mute {
				if _, err := c.client.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}
