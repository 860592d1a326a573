package dmarcd

import (
	"context"
	"time"
)

// AlertKind names what an alert is about.
type AlertKind string

// The kinds of alerts.
const (
	// AlertFailingSource: a source not seen before sends mail as the
	// domain that fails DMARC, above a threshold.
	AlertFailingSource AlertKind = "failing-source"
	// AlertPassRate: the domain's DMARC pass rate over a rolling window
	// fell below its threshold.
	AlertPassRate AlertKind = "pass-rate"
	// AlertReporterSilent: a large reporter that sent reports for the
	// domain stopped.
	AlertReporterSilent AlertKind = "reporter-silent"
	// AlertKeyDue: a DKIM key is due for rotation, or a rotation step is.
	AlertKeyDue AlertKind = "key-due"
	// AlertKeyUnusable: a DKIM key that should sign cannot: its private
	// key file or metadata is broken, so the signer leaves it out.
	AlertKeyUnusable AlertKind = "key-unusable"
	// AlertDNSDrift: a published record is no longer what dmarcd
	// recommended.
	AlertDNSDrift AlertKind = "dns-drift"
	// AlertIngest: ingest is unhealthy (a mailbox login fails, the
	// quarantine grows).
	AlertIngest AlertKind = "ingest-health"
	// AlertTLS: the SMTP TLS reports (RFC 8460) of the domain show too
	// many sessions that failed to set up TLS with its MX hosts.
	AlertTLS AlertKind = "tls-failures"
	// AlertHealth: dmarcd itself cannot do its work: an alert check
	// fails, the chat service refuses its messages.
	AlertHealth AlertKind = "dmarcd-health"
)

// Alert is one condition worth telling a person about. An alert is
// identified by (Domain, Kind, Subject): it is told once when it starts and
// once when it resolves.
type Alert struct {
	Domain  string    `json:"domain"`
	Kind    AlertKind `json:"kind"`
	Subject string    `json:"subject"` // the source IP, the reporter, the selector, the mailbox ...
	// Title is one line; Text says what happened with the numbers;
	// Action what to do.
	Title  string `json:"title"`
	Text   string `json:"text"`
	Facts  []Fact `json:"facts,omitempty"`
	Action string `json:"action,omitempty"`
	// Onset says the condition is new enough to start an alert; an alert
	// already firing stays firing while its condition is seen at all.
	Onset bool `json:"-"`
	// Clear says the condition was checked and does not hold: Title,
	// Text and Facts give today's figures, which the resolution of a
	// firing alert of this key carries.
	Clear bool `json:"-"`
	// Resolved marks the follow-up telling that the condition is gone.
	Resolved bool      `json:"resolved,omitempty"`
	At       time.Time `json:"at"`
}

// Fact is a labelled figure of an alert.
type Fact struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Key identifies the alert across checks.
func (a Alert) Key() string { return a.Domain + "|" + string(a.Kind) + "|" + a.Subject }

// AlertEvent is one change in the life of an alert, kept in the store as
// its history: firing, then resolved.
type AlertEvent struct {
	At      time.Time
	Key     string
	Domain  string
	Kind    AlertKind
	Subject string
	State   string // AlertFiring or AlertResolved
	Title   string
	Text    string
}

// Alert event states.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Notification is a message waiting to be posted (an alert, its follow-up,
// a weekly recommendation). It is kept until delivered, so that an outage
// of the chat service delays it and loses nothing.
type Notification struct {
	ID      string
	Created time.Time
	Kind    string // "alert" or "weekly"
	Payload []byte // JSON
	// To is where it goes: "" for the instance's chat channel ([slack]),
	// else a destination the dashboard names ("org:ID", an organisation's
	// own Slack channel). Each destination has its own copy, delivered on
	// its own.
	To string
}

// AlertStore keeps alert history and the notification outbox. Both are
// append-only, so that every store engine keeps them the same way.
type AlertStore interface {
	AddAlertEvent(ctx context.Context, e AlertEvent) error
	// AlertStates returns the latest event of each alert.
	AlertStates(ctx context.Context) ([]AlertEvent, error)
	AddNotification(ctx context.Context, n Notification) error
	// PendingNotifications returns the notifications neither delivered
	// nor undeliverable, oldest first.
	PendingNotifications(ctx context.Context) ([]Notification, error)
	MarkDelivered(ctx context.Context, id string, at time.Time) error
	// ClaimNotification claims the notification for delivery by owner
	// until until: true when owner holds it, because nobody else held a
	// claim that lasts past now. A holder renews its claim by claiming
	// again. Processes sharing a store claim before they post, so that
	// each notification is posted once.
	ClaimNotification(ctx context.Context, id, owner string, now, until time.Time) (bool, error)
	// MarkUndeliverable takes a notification the chat service refused
	// for good out of the outbox, with the service's answer.
	MarkUndeliverable(ctx context.Context, id string, at time.Time, reason string) error
}
