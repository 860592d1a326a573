package signer

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Front ends, the values of the frontend label.
const (
	FrontendSMTP   = "smtp"
	FrontendMilter = "milter"
)

// Kinds of next-hop failures, the values of the kind label of
// dmarcd_signer_next_hop_failures_total.
const (
	nextHopConnect  = "connect"  // no connection (refused, TLS, timeout)
	nextHopRefused  = "refused"  // a 5xx answer: to MAIL, a RCPT or the message
	nextHopDeferred = "deferred" // a 4xx answer
	nextHopIO       = "io"       // the connection broke during a transaction
)

// Metrics are the Prometheus metrics of the signer.
type Metrics struct {
	// Messages counts the messages done with, by frontend and result:
	// signed or unsigned once the next hop took them (the relay) or the
	// MTA was told to go on (the milter); refused when the signer refused
	// them (no key under unsigned = refuse, a From the client may not use).
	Messages *prometheus.CounterVec
	// Recipients counts the relay's recipients by the next hop's answer:
	// accepted, refused (5xx) or deferred (4xx, or no next hop).
	Recipients *prometheus.CounterVec
	// NextHopConnections counts the next-hop connections a transaction
	// used: reused from the pool, or dialled.
	NextHopConnections *prometheus.CounterVec
	// NextHopFailures counts what went wrong with the next hop, by kind
	// (connect, refused, deferred, io).
	NextHopFailures *prometheus.CounterVec
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
		Recipients: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dmarcd", Subsystem: "signer", Name: "recipients_total",
			Help: "Recipients of the relay, by the next hop's answer: accepted, refused (5xx) or deferred (4xx, or no next hop)."}, []string{"result"}),
		NextHopConnections: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dmarcd", Subsystem: "signer", Name: "next_hop_connections_total",
			Help: "Next-hop connections taken for a transaction: reused=\"true\" from the pool, \"false\" dialled."}, []string{"reused"}),
		NextHopFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dmarcd", Subsystem: "signer", Name: "next_hop_failures_total",
			Help: "Failures with the next hop, by kind: connect, refused (5xx), deferred (4xx), io (the connection broke)."}, []string{"kind"}),
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
	for _, r := range []string{"accepted", "refused", "deferred"} {
		m.Recipients.WithLabelValues(r)
	}
	for _, r := range []string{"true", "false"} {
		m.NextHopConnections.WithLabelValues(r)
	}
	for _, k := range []string{nextHopConnect, nextHopRefused, nextHopDeferred, nextHopIO} {
		m.NextHopFailures.WithLabelValues(k)
	}
	for _, fe := range []string{FrontendSMTP, FrontendMilter} {
		for _, r := range []string{OutcomeSigned, OutcomeUnsigned, OutcomeRefused} {
			m.Messages.WithLabelValues(fe, r)
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Messages, m.Recipients, m.NextHopConnections, m.NextHopFailures, m.Signatures, m.AuthFailures, m.KeysUsable, m.KeyUnusable, m.KeystoreReadable} {
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

func (m *Metrics) nextHopConnection(reused bool) {
	if m != nil {
		m.NextHopConnections.WithLabelValues(strconv.FormatBool(reused)).Inc()
	}
}

func (m *Metrics) nextHopFailure(kind string) {
	if m != nil {
		m.NextHopFailures.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) recipient(result string) {
	if m != nil {
		m.Recipients.WithLabelValues(result).Inc()
	}
}
