package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sinkMessage is a message the sink received.
type sinkMessage struct {
	From string
	To   []string
	Data []byte
}

// startSink runs an SMTP server on loopback that keeps what it receives:
// the next hop of the relay and of Postfix in the tests.
func startSink(t testing.TB) (string, <-chan sinkMessage) {
	t.Helper()
	addr, ch, _ := startSinkWith(t, nil)
	return addr, ch
}

// sinkStats counts what a sink saw.
type sinkStats struct{ connections atomic.Int64 }

// startSinkWith is startSink whose RCPT answers refuse(to) (nil: accept);
// it also counts the connections it takes.
func startSinkWith(t testing.TB, refuse func(to string) error) (string, <-chan sinkMessage, *sinkStats) {
	t.Helper()
	ch := make(chan sinkMessage, 64)
	stats := &sinkStats{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		stats.connections.Add(1)
		return &sinkSession{ch: ch, refuse: refuse}, nil
	}))
	s.Domain = "sink.test"
	s.AllowInsecureAuth = true
	s.MaxMessageBytes = 64 << 20
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String(), ch, stats
}

type sinkSession struct {
	ch     chan sinkMessage
	refuse func(to string) error
	msg    sinkMessage
}

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.msg = sinkMessage{From: from}
	return nil
}
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.refuse != nil {
		if err := s.refuse(to); err != nil {
			return err
		}
	}
	s.msg.To = append(s.msg.To, to)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.Data = b
	s.ch <- s.msg
	return nil
}
func (s *sinkSession) Reset()        {}
func (s *sinkSession) Logout() error { return nil }

// receive waits for the sink's next message.
func receive(t testing.TB, ch <-chan sinkMessage, within time.Duration) sinkMessage {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(within):
		t.Fatalf("the sink received nothing within %s", within)
	}
	return sinkMessage{}
}

// selfSigned makes a TLS certificate for localhost.
func selfSigned(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
