package signer

import (
	"crypto/tls"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/bcrypt"
)

// dialRelay opens a client session to the relay.
func dialRelay(t testing.TB, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// send runs one transaction and returns the answers to each RCPT and to
// the message.
func send(t testing.TB, c *smtp.Client, from string, to []string, msg string) ([]error, error) {
	t.Helper()
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	var rcpts []error
	accepted := 0
	for _, r := range to {
		err := c.Rcpt(r, nil)
		rcpts = append(rcpts, err)
		if err == nil {
			accepted++
		}
	}
	if accepted == 0 {
		c.Reset()
		return rcpts, nil
	}
	w, err := c.Data()
	if err != nil {
		return rcpts, err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return rcpts, err
	}
	return rcpts, w.Close()
}

// TestRelayRecipientRefused: the next hop refuses the second of two
// recipients; the client hears that at RCPT, for that recipient alone, and
// the message reaches the first.
func TestRelayRecipientRefused(t *testing.T) {
	sink, got, _ := startSinkWith(t, func(to string) error {
		if strings.HasPrefix(to, "gone@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		}
		if strings.HasPrefix(to, "full@") {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
		}
		return nil
	})
	s, _ := testSigner(t, UnsignedPass)
	m, _ := NewMetrics(nil)
	addr := startRelay(t, RelayConfig{Signer: s, Allowed: mustNetworks(t, "127.0.0.1/32"), NextHop: sink, NextHopTLS: NextHopNoTLS, Metrics: m, Hostname: "relay.test"})
	c := dialRelay(t, addr)
	rcpts, err := send(t, c, "joe@football.example.com",
		[]string{"suzie@shopping.example.net", "gone@shopping.example.net", "full@shopping.example.net"}, testMessage)
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if rcpts[0] != nil || !isCode(rcpts[1], 550) || !isCode(rcpts[2], 452) {
		t.Fatalf("RCPT answers: %v", rcpts)
	}
	if se := rcpts[1].(*smtp.SMTPError); !strings.Contains(se.Message, "No such user") || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Errorf("the next hop's answer is not passed on: %v", se)
	}
	msg := receive(t, got, 10*time.Second)
	if len(msg.To) != 1 || msg.To[0] != "suzie@shopping.example.net" {
		t.Fatalf("delivered to %v", msg.To)
	}
	if !strings.HasPrefix(string(msg.Data), "Received: from client.test ([127.0.0.1])\r\n\tby relay.test (dmarcd signer) with ESMTP id ") {
		t.Errorf("no Received field first:\n%.300s", msg.Data)
	}
	if !strings.Contains(string(msg.Data), "\tfor <suzie@shopping.example.net>;") {
		t.Errorf("Received names not the recipient:\n%.300s", msg.Data)
	}
	for _, c := range []struct {
		got  float64
		want float64
		name string
	}{
		{counterValue(t, m.Recipients.WithLabelValues("accepted")), 1, "accepted"},
		{counterValue(t, m.Recipients.WithLabelValues("refused")), 1, "refused"},
		{counterValue(t, m.Recipients.WithLabelValues("deferred")), 1, "deferred"},
		{counterValue(t, m.Messages.WithLabelValues(FrontendSMTP, OutcomeSigned)), 1, "signed"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestRelayReusesNextHop: messages of several client sessions go over one
// next-hop connection, reset between messages.
func TestRelayReusesNextHop(t *testing.T) {
	sink, got, stats := startSinkWith(t, nil)
	s, _ := testSigner(t, UnsignedPass)
	m, _ := NewMetrics(nil)
	addr := startRelay(t, RelayConfig{Signer: s, Allowed: mustNetworks(t, "127.0.0.1/32"), NextHop: sink, NextHopTLS: NextHopNoTLS, Metrics: m})
	const messages = 5
	for i := range messages {
		c := dialRelay(t, addr)
		if i == 2 {
			// A transaction the client abandons leaves nothing behind.
			c.Mail("joe@football.example.com", nil)
			c.Rcpt("abandoned@shopping.example.net", nil)
			c.Reset()
		}
		if _, err := send(t, c, "joe@football.example.com", []string{"suzie@shopping.example.net"}, testMessage); err != nil {
			t.Fatal(err)
		}
		c.Quit()
		if m := receive(t, got, 10*time.Second); len(m.To) != 1 {
			t.Fatalf("message %d to %v", i, m.To)
		}
	}
	if n := stats.connections.Load(); n != 1 {
		t.Errorf("the next hop saw %d connections for %d messages, want 1", n, messages)
	}
	if n := counterValue(t, m.NextHopConnections.WithLabelValues("true")); n < messages-1 {
		t.Errorf("reused connections: %v", n)
	}
}

// TestRelayBareCR: a message whose end is written with a bare CR or LF gets
// a clear 550 within moments, not a wait until the timeout, and the
// session goes on; bare line ends inside a message that ends properly are
// made CRLF and the message relayed.
func TestRelayBareCR(t *testing.T) {
	sink, got := startSink(t)
	s, _ := testSigner(t, UnsignedPass)
	addr := startRelay(t, RelayConfig{Signer: s, Allowed: mustNetworks(t, "127.0.0.1/32"), NextHop: sink, NextHopTLS: NextHopNoTLS})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tp := textproto.NewConn(conn)
	expect := func(code int) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(MalformedEndWait + 10*time.Second))
		c, msg, err := tp.ReadResponse(code)
		if err != nil {
			t.Fatalf("want %d: got %d %s: %v", code, c, msg, err)
		}
		return msg
	}
	cmd := func(line string, code int) {
		t.Helper()
		if err := tp.PrintfLine("%s", line); err != nil {
			t.Fatal(err)
		}
		expect(code)
	}
	expect(220)
	cmd("EHLO client.test", 250)
	for _, end := range []string{"\r.\r\n", "\n.\n", "\r\n.\n"} {
		cmd("MAIL FROM:<joe@football.example.com>", 250)
		cmd("RCPT TO:<suzie@shopping.example.net>", 250)
		cmd("DATA", 354)
		start := time.Now()
		if _, err := conn.Write([]byte("From: joe@football.example.com\r\nSubject: x\r\n\r\nbody" + end)); err != nil {
			t.Fatal(err)
		}
		msg := expect(550)
		if !strings.Contains(msg, "bare CR or LF") {
			t.Errorf("end %q: %s", end, msg)
		}
		t.Logf("end %q answered in %s", end, time.Since(start).Round(time.Millisecond))
	}
	// The session goes on: a message with bare line ends inside that ends
	// properly is relayed, with CRLF line ends.
	cmd("MAIL FROM:<joe@football.example.com>", 250)
	cmd("RCPT TO:<suzie@shopping.example.net>", 250)
	cmd("DATA", 354)
	if _, err := conn.Write([]byte("From: joe@football.example.com\r\nSubject: x\r\n\r\none\ntwo\rthree\r\n.\r\n")); err != nil {
		t.Fatal(err)
	}
	expect(250)
	m := receive(t, got, 10*time.Second)
	if !strings.HasSuffix(string(m.Data), "\r\n\r\none\r\ntwo\rthree\r\n") {
		t.Errorf("relayed body: %q", m.Data[len(m.Data)-30:])
	}
}

// TestRelayDomainLimits: a user or a network limited to some domains may
// send mail from those (and their subdomains) only.
func TestRelayDomainLimits(t *testing.T) {
	sink, got := startSink(t)
	s, _ := testSigner(t, UnsignedPass)
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	addr := startRelay(t, RelayConfig{
		Signer:     s,
		AllowedFor: []NetworkDomains{{Network: mustNetworks(t, "127.0.0.1/32")[0], Domains: []string{"shop.example"}}},
		Users:      Users{"joe": {Hash: hash, Domains: []string{"example.com"}}},
		TLS:        &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}},
		NextHop:    sink, NextHopTLS: NextHopNoTLS,
	})
	from := func(domain string) string {
		return strings.Replace(testMessage, "joe@football.example.com", "joe@"+domain, 1)
	}
	// The network: shop.example only.
	c := dialRelay(t, addr)
	if _, err := send(t, c, "joe@football.example.com", []string{"suzie@shopping.example.net"}, testMessage); !isCode(err, 550) {
		t.Errorf("network, football.example.com: %v, want 550", err)
	}
	if _, err := send(t, c, "a@shop.example", []string{"suzie@shopping.example.net"}, from("news.shop.example")); err != nil {
		t.Errorf("network, news.shop.example: %v", err)
	}
	receive(t, got, 10*time.Second)
	// The user: example.com and its subdomains, whatever the network.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := smtp.NewClientStartTLS(conn, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if err := uc.Auth(sasl.NewPlainClient("", "joe", "s3cret")); err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, uc, "joe@football.example.com", []string{"suzie@shopping.example.net"}, testMessage); err != nil {
		t.Errorf("user, football.example.com: %v", err)
	}
	receive(t, got, 10*time.Second)
	if _, err := send(t, uc, "a@shop.example", []string{"suzie@shopping.example.net"}, from("shop.example")); !isCode(err, 550) {
		t.Errorf("user, shop.example: %v, want 550", err)
	}
}

// counterValue reads a counter.
func counterValue(t testing.TB, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
