package signer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/dmarcd/dmarcd"
)

// benchMessage is a 4 KiB message, about the median of outbound mail.
var benchMessage = []byte(testMessage + strings.Repeat(strings.Repeat("lorem ipsum ", 6)+"\r\n", 56))

// BenchmarkSign measures whole messages signed per second with one and two
// keys (a rotation), beside BenchmarkBareSign, the signature operation
// alone, in the same run.
func BenchmarkSign(b *testing.B) {
	for _, c := range []struct {
		name string
		algs []string
	}{
		{"rsa2048/1sig", []string{dmarcd.AlgorithmRSA}},
		{"rsa2048/2sig", []string{dmarcd.AlgorithmRSA, dmarcd.AlgorithmRSA}},
		{"ed25519/1sig", []string{dmarcd.AlgorithmEd25519}},
		{"ed25519/2sig", []string{dmarcd.AlgorithmEd25519, dmarcd.AlgorithmEd25519}},
		{"rsa2048+ed25519", []string{dmarcd.AlgorithmRSA, dmarcd.AlgorithmEd25519}},
	} {
		b.Run(c.name, func(b *testing.B) {
			st := newStore(b)
			for i, alg := range c.algs {
				state := dmarcd.KeyCurrent
				if i > 0 && alg == c.algs[0] {
					state = dmarcd.KeySigning
				}
				makeKey(b, st, "football.example.com", string(rune('a'+i)), alg, state)
			}
			ring, err := NewKeyring(st, DefaultReloadInterval, nil)
			if err != nil {
				b.Fatal(err)
			}
			s := &Signer{Keys: ring}
			b.SetBytes(int64(len(benchMessage)))
			b.ResetTimer()
			for b.Loop() {
				res, err := s.Sign(benchMessage)
				if err != nil || len(res.Signatures) != len(c.algs) {
					b.Fatal(err, res.Reason)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func BenchmarkBareSign(b *testing.B) {
	digest := sha256.Sum256(benchMessage)
	b.Run("rsa2048/SignPKCS1v15", func(b *testing.B) {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		for b.Loop() {
			if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
	})
	b.Run("ed25519/Sign", func(b *testing.B) {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		for b.Loop() {
			ed25519.Sign(k, digest[:])
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
	})
}

// relayClients is the number of client connections BenchmarkRelay sends
// over at once.
const relayClients = 8

// BenchmarkRelay measures messages/s end to end: SMTP clients on
// relayClients connections -> the relay (signing with one or two RSA-2048
// keys) -> a sink that reads and drops each message, all on loopback; and,
// in the same run, BenchmarkSignParallel signs in-process on as many
// goroutines, the rate the relay would reach if SMTP cost nothing.
func BenchmarkRelay(b *testing.B) {
	for _, keys := range []int{1, 2} {
		b.Run(fmt.Sprintf("rsa2048/%dsig", keys), func(b *testing.B) {
			s := benchSigner(b, keys)
			sink := startDiscardSink(b)
			addr := startRelay(b, RelayConfig{Signer: s, Allowed: mustNetworks(b, "127.0.0.1/32"), NextHop: sink, NextHopTLS: NextHopNoTLS})
			b.SetBytes(int64(len(benchMessage)))
			b.SetParallelism((relayClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := smtp.Dial(addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				for pb.Next() {
					if err := c.SendMail("joe@football.example.com", []string{"suzie@shopping.example.net"}, bytes.NewReader(benchMessage)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSignParallel is BenchmarkSign/rsa2048 on as many goroutines as
// BenchmarkRelay has clients.
func BenchmarkSignParallel(b *testing.B) {
	for _, keys := range []int{1, 2} {
		b.Run(fmt.Sprintf("rsa2048/%dsig", keys), func(b *testing.B) {
			s := benchSigner(b, keys)
			b.SetBytes(int64(len(benchMessage)))
			b.SetParallelism((relayClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if res, err := s.Sign(benchMessage); err != nil || len(res.Signatures) != keys {
						b.Error(err, res.Reason)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// benchSigner signs football.example.com mail with n RSA-2048 keys.
func benchSigner(b *testing.B, n int) *Signer {
	st := newStore(b)
	for i := range n {
		state := dmarcd.KeyCurrent
		if i > 0 {
			state = dmarcd.KeySigning
		}
		makeKey(b, st, "football.example.com", string(rune('a'+i)), dmarcd.AlgorithmRSA, state)
	}
	ring, err := NewKeyring(st, DefaultReloadInterval, nil)
	if err != nil {
		b.Fatal(err)
	}
	return &Signer{Keys: ring}
}

// startDiscardSink runs an SMTP server on loopback that reads each message
// and drops it.
func startDiscardSink(b *testing.B) string {
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return discardSession{}, nil }))
	s.Domain = "sink.test"
	s.MaxMessageBytes = 64 << 20
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(l)
	b.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

type discardSession struct{}

func (discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (discardSession) Reset()        {}
func (discardSession) Logout() error { return nil }
