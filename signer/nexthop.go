package signer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Limits of the connections to the next hop.
const (
	// NextHopDialTimeout bounds connecting to the next hop.
	NextHopDialTimeout = 30 * time.Second
	// NextHopIdleTimeout is how long an idle connection is kept for the
	// next message: shorter than the idle timeouts of common MTAs (Postfix
	// waits 300 s for a command), so the next hop does not close it first.
	NextHopIdleTimeout = 30 * time.Second
	// NextHopMaxIdle bounds the idle connections kept.
	NextHopMaxIdle = 16
	// NextHopMaxMessages is the most messages sent over one connection
	// before it is closed and a new one opened, as MTAs limit the
	// messages of one session (Postfix: 100 by default on the client side).
	NextHopMaxMessages = 100
)

// nextHop keeps connections to the next hop for the messages that follow:
// the TCP and TLS handshakes are paid once per connection, not per message.
// A connection taken from the pool is checked with RSET (RFC 5321 §4.1.1.5),
// which also clears any transaction left on it; one that fails is closed and
// another taken or dialled.
type nextHop struct {
	addr     string
	mode     NextHopTLS
	hostname string
	metrics  *Metrics

	mu     sync.Mutex
	idle   []*hopConn // the most recently used last
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// hopConn is one connection to the next hop.
type hopConn struct {
	c        *smtp.Client
	lastUsed time.Time
	messages int
}

func newNextHop(addr string, mode NextHopTLS, hostname string, m *Metrics) *nextHop {
	h := &nextHop{addr: addr, mode: mode, hostname: hostname, metrics: m, stop: make(chan struct{}), done: make(chan struct{})}
	go h.reap()
	return h
}

// get returns a connection ready for MAIL: a pooled one that answers RSET,
// else a new one.
func (h *nextHop) get() (*hopConn, error) {
	for {
		h.mu.Lock()
		n := len(h.idle)
		if n == 0 {
			h.mu.Unlock()
			break
		}
		hc := h.idle[n-1]
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		if time.Since(hc.lastUsed) < NextHopIdleTimeout && hc.c.Reset() == nil {
			h.metrics.nextHopConnection(true)
			return hc, nil
		}
		hc.c.Close()
	}
	c, err := h.dial()
	if err != nil {
		h.metrics.nextHopFailure(nextHopConnect)
		return nil, err
	}
	h.metrics.nextHopConnection(false)
	return &hopConn{c: c}, nil
}

// put returns a connection after a finished or reset transaction.
func (h *nextHop) put(hc *hopConn) {
	hc.lastUsed = time.Now()
	h.mu.Lock()
	if h.closed || len(h.idle) >= NextHopMaxIdle || hc.messages >= NextHopMaxMessages {
		h.mu.Unlock()
		quit(hc.c)
		return
	}
	h.idle = append(h.idle, hc)
	h.mu.Unlock()
}

// discard closes a connection whose state is unknown (an I/O error).
func (h *nextHop) discard(hc *hopConn) { hc.c.Close() }

// reap closes the connections idle longer than NextHopIdleTimeout.
func (h *nextHop) reap() {
	defer close(h.done)
	t := time.NewTicker(NextHopIdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		var old []*hopConn
		h.mu.Lock()
		keep := h.idle[:0]
		for _, hc := range h.idle {
			if time.Since(hc.lastUsed) >= NextHopIdleTimeout {
				old = append(old, hc)
			} else {
				keep = append(keep, hc)
			}
		}
		h.idle = keep
		h.mu.Unlock()
		for _, hc := range old {
			quit(hc.c)
		}
	}
}

// close says QUIT on the idle connections and stops keeping any.
func (h *nextHop) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	idle := h.idle
	h.idle = nil
	h.mu.Unlock()
	close(h.stop)
	<-h.done
	for _, hc := range idle {
		quit(hc.c)
	}
}

// quit ends a session politely, and closes it whatever the answer.
func quit(c *smtp.Client) {
	if err := c.Quit(); err != nil {
		c.Close()
	}
}

// dial connects to the next hop, with STARTTLS as configured.
func (h *nextHop) dial() (*smtp.Client, error) {
	dial := func() (net.Conn, error) {
		return net.DialTimeout("tcp", h.addr, NextHopDialTimeout)
	}
	client := func(c *smtp.Client) *smtp.Client {
		c.CommandTimeout, c.SubmissionTimeout = NextHopTimeout, NextHopTimeout
		return c
	}
	plain := func() (*smtp.Client, error) {
		conn, err := dial()
		if err != nil {
			return nil, err
		}
		c := client(smtp.NewClient(conn))
		if err := c.Hello(h.hostname); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if h.mode == NextHopNoTLS {
		return plain()
	}
	host, _, _ := net.SplitHostPort(h.addr)
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if h.mode == NextHopOpportunistic {
		tc.InsecureSkipVerify = true // opportunistic TLS checks no certificate (RFC 7435 §1.3)
	}
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	// go-smtp says EHLO as "localhost" before STARTTLS: its client has
	// no STARTTLS after a Hello of our own.
	c, err := smtp.NewClientStartTLS(conn, tc)
	if err != nil && h.mode == NextHopOpportunistic && strings.Contains(err.Error(), "support STARTTLS") {
		return plain() // not offered: go on in clear text
	}
	if err != nil {
		return nil, fmt.Errorf("STARTTLS with the next hop: %w", err)
	}
	return client(c), nil
}

// isSMTPReply says whether err is the next hop's answer (the connection is
// usable), not an I/O error (it is not).
func isSMTPReply(err error) (*smtp.SMTPError, bool) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se, true
	}
	return nil, false
}

// replyText is the next hop's answer for a log line.
func replyText(err error) string {
	if se, ok := isSMTPReply(err); ok {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], strings.TrimSpace(se.Message))
	}
	return err.Error()
}
