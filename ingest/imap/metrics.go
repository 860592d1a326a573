package imap

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Error kinds, the values of the kind label of dmarcd_imap_errors_total.
const (
	ErrConnect     = "connect"     // dialling, the TLS handshake, greeting, or the connection dropped
	ErrTLS         = "tls"         // the server's certificate is refused: trying again cannot help
	ErrAuth        = "auth"        // the server refused the login
	ErrCredentials = "credentials" // no password or OAuth 2.0 token could be read or refreshed
	ErrIMAP        = "imap"        // the server refused a command
	ErrStore       = "store"       // the store failed; the message stays to be retried
)

var errorKinds = []string{ErrConnect, ErrTLS, ErrAuth, ErrCredentials, ErrIMAP, ErrStore}

// Destinations of a message, the values of the to label of
// dmarcd_imap_messages_moved_total.
const (
	MovedArchive = "archive"
	MovedInvalid = "invalid"
	MovedDeleted = "deleted"
)

// Metrics are the Prometheus metrics of the pollers, labelled by mailbox.
// One Metrics serves every Poller of a process.
type Metrics struct {
	MessagesSeen    *prometheus.CounterVec // mailbox
	ReportsStored   *prometheus.CounterVec // mailbox, kind (aggregate, failure, tls)
	ReportsSkipped  *prometheus.CounterVec // mailbox: reports dmarcd does not keep (SMTP TLS)
	Duplicates      *prometheus.CounterVec // mailbox
	Quarantined     *prometheus.CounterVec // mailbox: messages quarantined whole or in part
	MessagesMoved   *prometheus.CounterVec // mailbox, to (archive, invalid, deleted)
	Errors          *prometheus.CounterVec // mailbox, kind (connect, auth, credentials, imap, store)
	LastSuccessTime *prometheus.GaugeVec   // mailbox: Unix seconds of the end of the last complete pass
}

// NewMetrics creates the metrics and registers them with reg (not the
// global registry, so that tests and embedders keep theirs apart). A nil reg
// registers nothing.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dmarcd", Subsystem: "imap", Name: name, Help: help}, labels)
	}
	m := &Metrics{
		MessagesSeen:   counter("messages_seen_total", "Mail messages read from the mailbox.", "mailbox"),
		ReportsStored:  counter("reports_stored_total", "Reports stored, by kind (aggregate, failure, tls).", "mailbox", "kind"),
		ReportsSkipped: counter("reports_skipped_total", "Reports of kinds dmarcd does not keep (SMTP TLS reports).", "mailbox"),
		Duplicates:     counter("reports_duplicate_total", "Reports that were stored before.", "mailbox"),
		Quarantined:    counter("messages_quarantined_total", "Messages that held input that could not be parsed, kept in the quarantine.", "mailbox"),
		MessagesMoved:  counter("messages_moved_total", "Messages moved to the archive or invalid folder, or deleted.", "mailbox", "to"),
		Errors:         counter("errors_total", "Errors, by kind (connect, auth, credentials, imap, store).", "mailbox", "kind"),
		LastSuccessTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "dmarcd", Subsystem: "imap", Name: "last_success_timestamp_seconds",
			Help: "When the last complete pass over the mailbox's folders ended, in Unix seconds."}, []string{"mailbox"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.MessagesSeen, m.ReportsStored, m.ReportsSkipped, m.Duplicates, m.Quarantined, m.MessagesMoved, m.Errors, m.LastSuccessTime} {
			if err := reg.Register(c); err != nil {
				return nil, errors.Join(errors.New("registering the IMAP metrics"), err)
			}
		}
	}
	return m, nil
}

// init creates every series of a mailbox at zero, so that alerts on rates
// and absences work from the start.
func (m *Metrics) init(mailbox string) {
	m.MessagesSeen.WithLabelValues(mailbox)
	m.ReportsStored.WithLabelValues(mailbox, "aggregate")
	m.ReportsStored.WithLabelValues(mailbox, "failure")
	m.ReportsStored.WithLabelValues(mailbox, "tls")
	m.ReportsSkipped.WithLabelValues(mailbox)
	m.Duplicates.WithLabelValues(mailbox)
	m.Quarantined.WithLabelValues(mailbox)
	for _, to := range []string{MovedArchive, MovedInvalid, MovedDeleted} {
		m.MessagesMoved.WithLabelValues(mailbox, to)
	}
	for _, k := range errorKinds {
		m.Errors.WithLabelValues(mailbox, k)
	}
}

func (m *Metrics) success(mailbox string, at time.Time) {
	m.LastSuccessTime.WithLabelValues(mailbox).Set(float64(at.Unix()))
}
