package signer

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"

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
