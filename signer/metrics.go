package signer

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Front ends, the values of the frontend label.
const (
	FrontendSMTP   = "smtp"
	FrontendMilter = "milter"
)

// Metrics are the Prometheus metrics of the signer.
type Metrics struct {
	// Messages counts messages by frontend and result (signed, unsigned,
	// refused).
	Messages *prometheus.CounterVec
	// Signatures counts DKIM signatures made, by signing domain.
	Signatures *prometheus.CounterVec
	// AuthFailures counts refused AUTH attempts of the SMTP relay.
	AuthFailures prometheus.Counter
	// KeysUsable is the number of keys that sign; KeyUnusable is 1 for
	// each key that should sign and cannot (its file is broken), by key;
	// KeystoreReadable is 0 while the key store cannot be read (nothing
	// is signed then).
	KeysUsable       prometheus.Gauge
	KeyUnusable      *prometheus.GaugeVec
	KeystoreReadable prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg; a nil reg
// registers nothing.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dmarcd", Subsystem: "signer", Name: "messages_total",
			Help: "Messages handled, by front end (smtp, milter) and result (signed, unsigned, refused)."}, []string{"frontend", "result"}),
		Signatures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dmarcd", Subsystem: "signer", Name: "signatures_total",
			Help: "DKIM signatures made, by signing domain."}, []string{"domain"}),
		AuthFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dmarcd", Subsystem: "signer", Name: "auth_failures_total",
			Help: "AUTH attempts the SMTP relay refused."}),
		KeysUsable: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dmarcd", Subsystem: "signer", Name: "keys_usable",
			Help: "Keys that sign (state signing or current, with a private key file that loads)."}),
		KeyUnusable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "dmarcd", Subsystem: "signer", Name: "key_unusable",
			Help: "1 for each key that should sign and cannot (its metadata or private key file is broken), by key (SELECTOR._domainkey.DOMAIN)."}, []string{"key"}),
		KeystoreReadable: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "dmarcd", Subsystem: "signer", Name: "keystore_readable",
			Help: "0 while the key store cannot be read: nothing is signed then, and mail is deferred."}),
	}
	for _, fe := range []string{FrontendSMTP, FrontendMilter} {
		for _, r := range []string{OutcomeSigned, OutcomeUnsigned, OutcomeRefused} {
			m.Messages.WithLabelValues(fe, r)
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Messages, m.Signatures, m.AuthFailures, m.KeysUsable, m.KeyUnusable, m.KeystoreReadable} {
			if err := reg.Register(c); err != nil {
				return nil, errors.Join(errors.New("registering the signer metrics"), err)
			}
		}
	}
	return m, nil
}

func (m *Metrics) count(frontend string, r Result) {
	if m == nil {
		return
	}
	m.Messages.WithLabelValues(frontend, r.Outcome).Inc()
	if len(r.Signatures) > 0 {
		m.Signatures.WithLabelValues(r.Domain).Add(float64(len(r.Signatures)))
	}
}
