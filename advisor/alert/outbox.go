package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/analyze"
)

// Retry bounds of the outbox.
const (
	// InitialBackoff is the first wait after a failed post.
	InitialBackoff = 2 * time.Second
	// MaxBackoff is the longest wait between attempts; the outbox keeps
	// trying at this pace as long as the chat service fails, and waits
	// no longer than this for a rate limit either.
	MaxBackoff = 5 * time.Minute
	// ClaimLease is how long a claim on a notification holds without
	// renewal: longer than the longest wait, since the holder renews it
	// before each attempt. A flusher that died is taken over after it.
	ClaimLease = MaxBackoff + time.Minute
)

// Poster posts one notification (the Slack notifier is one).
type Poster interface {
	Post(ctx context.Context, n dmarcd.Notification) error
}

// RateLimited is the error of a Poster asked to wait: Slack's 429 with
// Retry-After.
type RateLimited struct {
	RetryAfter time.Duration
}

func (e *RateLimited) Error() string {
	return fmt.Sprintf("rate limited: retry after %s", e.RetryAfter)
}

// PermanentError is the error of a Poster that trying again cannot cure:
// the chat service refused the message or the channel for good (a revoked
// webhook, invalid blocks, a channel that is gone). Reason holds the
// service's answer.
type PermanentError struct {
	Reason string
}

func (e *PermanentError) Error() string { return e.Reason }

// Outbox delivers the queued notifications, each once and in order, also
// when several processes share the store (the daemon, a cron `dmarcd
// alerts --check`): a flusher claims a notification before it posts it,
// and stops where another holds the claim.
type Outbox struct {
	State  dmarcd.AlertStore
	Poster Poster
	Logger *slog.Logger
	Now    func() time.Time
	// Sleep waits d or until ctx ends; a test replaces it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Owner names this flusher in its claims; a random name when empty.
	Owner string
	// To is the destination this outbox posts to (Notification.To): ""
	// the instance's channel. Each destination is flushed on its own, so
	// that one that fails holds back none of the others.
	To string
}

// errNotHolder says another flusher holds the claim of a notification.
var errNotHolder = errors.New("another flusher holds the notification")

// Flush posts the pending notifications, oldest first, until the outbox is
// empty, ctx ends, or another flusher holds the next one (it posts the rest
// in order). A rate limit waits as long as the service asks (at most
// MaxBackoff); a transient error waits with exponential backoff
// (InitialBackoff to MaxBackoff) and tries the same notification again, so
// that order is kept and nothing is lost; a permanent error takes the
// notification out of the outbox as undeliverable, with the service's
// answer, tells the alert history once that the channel is broken, and goes
// on with the next. It returns the number posted.
func (o *Outbox) Flush(ctx context.Context) (int, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	owner := o.Owner
	if owner == "" {
		owner = randomOwner()
	}
	delivered := 0
	for {
		all, err := o.State.PendingNotifications(ctx)
		if err != nil {
			return delivered, err
		}
		pending := slices.DeleteFunc(all, func(n dmarcd.Notification) bool { return n.To != o.To })
		if len(pending) == 0 {
			return delivered, nil
		}
		posted, err := o.deliver(ctx, pending[0], owner, log)
		switch {
		case errors.Is(err, errNotHolder):
			log.Info("another dmarcd is posting the outbox: leaving it the rest", "notification", pending[0].ID)
			return delivered, nil
		case err != nil:
			return delivered, err
		case posted:
			delivered++
		}
	}
}

// deliver posts one notification under a claim, trying again while the
// errors are transient. It reports whether the notification was posted
// (false: undeliverable).
func (o *Outbox) deliver(ctx context.Context, n dmarcd.Notification, owner string, log *slog.Logger) (bool, error) {
	sleep := o.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	backoff := InitialBackoff
	for {
		ok, err := o.State.ClaimNotification(ctx, n.ID, owner, now(), now().Add(ClaimLease))
		if err != nil {
			return false, err
		}
		if !ok {
			return false, errNotHolder
		}
		err = o.Poster.Post(ctx, n)
		var rl *RateLimited
		var perm *PermanentError
		switch {
		case err == nil:
			if err := o.State.MarkDelivered(ctx, n.ID, now()); err != nil {
				return false, err
			}
			return true, o.channelWorks(ctx, now())
		case errors.As(err, &perm):
			log.Error("the chat service refused a notification for good: it is kept as undeliverable, and the next ones go on",
				"notification", n.ID, "kind", n.Kind, "answer", perm.Reason)
			if err := o.State.MarkUndeliverable(ctx, n.ID, now(), perm.Reason); err != nil {
				return false, err
			}
			return false, o.channelBroken(ctx, n, perm.Reason, now(), log)
		case errors.As(err, &rl):
			wait := min(rl.RetryAfter, MaxBackoff)
			log.Warn("chat service rate limit: waiting", "notification", n.ID, "retry_after", wait)
			err = sleep(ctx, wait)
		default:
			log.Warn("posting notification failed: will retry", "notification", n.ID, "err", err, "retry_in", backoff)
			err = sleep(ctx, backoff)
			backoff = min(2*backoff, MaxBackoff)
		}
		if err != nil {
			return false, err
		}
	}
}

// chatSubject is the subject of the alert of a chat channel that refuses
// messages: "chat" for the instance's, "chat:" and the destination for
// another.
func (o *Outbox) chatSubject() string {
	if o.To == "" {
		return "chat"
	}
	return "chat:" + o.To
}

// channelBroken records, once while it lasts, that the chat service
// refuses messages. The event goes to the alert history only (the web
// page, `dmarcd alerts`, the log): a notification would go to the same
// broken channel.
func (o *Outbox) channelBroken(ctx context.Context, n dmarcd.Notification, reason string, at time.Time, log *slog.Logger) error {
	subject := o.chatSubject()
	key := dmarcd.Alert{Kind: dmarcd.AlertHealth, Subject: subject}.Key()
	if firing, err := o.firing(ctx, key); err != nil || firing {
		return err
	}
	title, fix := "The chat service refuses dmarcd's messages", "Fix the webhook, token or channel in [slack]."
	if o.To != "" {
		title, fix = "The chat service refuses the messages for "+o.To, "Its owners set a new webhook on the dashboard."
	}
	log.Error("a chat channel is broken: "+fix, "destination", subject, "answer", reason)
	return o.State.AddAlertEvent(ctx, dmarcd.AlertEvent{At: at, Key: key, Kind: dmarcd.AlertHealth, Subject: subject,
		State: dmarcd.AlertFiring, Title: title,
		Text: fmt.Sprintf("Notification %s (%s) was refused for good: %s. It is kept as undeliverable; later messages are still tried. %s",
			n.ID, n.Kind, reason, fix)})
}

// channelWorks resolves the broken-channel alert after a post went
// through.
func (o *Outbox) channelWorks(ctx context.Context, at time.Time) error {
	subject := o.chatSubject()
	key := dmarcd.Alert{Kind: dmarcd.AlertHealth, Subject: subject}.Key()
	if firing, err := o.firing(ctx, key); err != nil || !firing {
		return err
	}
	return o.State.AddAlertEvent(ctx, dmarcd.AlertEvent{At: at, Key: key, Kind: dmarcd.AlertHealth, Subject: subject,
		State: dmarcd.AlertResolved, Title: "The chat service takes dmarcd's messages again", Text: "A notification was posted."})
}

func (o *Outbox) firing(ctx context.Context, key string) (bool, error) {
	states, err := o.State.AlertStates(ctx)
	if err != nil {
		return false, err
	}
	for _, s := range states {
		if s.Key == key {
			return s.State == dmarcd.AlertFiring, nil
		}
	}
	return false, nil
}

// randomOwner names a flusher: the host and process, and a random part
// for flushers of one process.
func randomOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Weekly is the payload of the weekly recommendation.
type Weekly struct {
	// At is the time the recommendation is for (the schedule's); Late
	// says it is sent after that time, because dmarcd was not running.
	At              time.Time                 `json:"at"`
	Late            bool                      `json:"late,omitempty"`
	Recommendations []*advisor.Recommendation `json:"recommendations"`
	Keys            []advisor.KeyAdvice       `json:"keys,omitempty"`
	// TLS sums up the SMTP TLS reports of the advised domains over the
	// window of the evidence, per policy.
	TLS []analyze.TLSPolicy `json:"tls,omitempty"`
	// Failed are the domains without a recommendation this time (DNS
	// failed for them), with why: one domain's failure hides nothing of
	// the others'.
	Failed []DomainFailure `json:"failed,omitempty"`
	// To is the destination of this copy (Notification.To): "" the
	// instance's channel.
	To string `json:"-"`
}

// Only returns the part of w about the domains that keep says yes to: an
// organisation's copy of the weekly recommendation.
func (w Weekly) Only(keep func(domain string) bool) Weekly {
	out := Weekly{At: w.At, Late: w.Late}
	for _, r := range w.Recommendations {
		if keep(r.Domain) {
			out.Recommendations = append(out.Recommendations, r)
		}
	}
	for _, k := range w.Keys {
		if keep(k.Key.Domain) {
			out.Keys = append(out.Keys, k)
		}
	}
	for _, p := range w.TLS {
		if keep(p.Domain) {
			out.TLS = append(out.TLS, p)
		}
	}
	for _, f := range w.Failed {
		if keep(f.Domain) {
			out.Failed = append(out.Failed, f)
		}
	}
	return out
}

// DomainFailure is a domain the advisor could not advise on, and why.
type DomainFailure struct {
	Domain string `json:"domain"`
	Error  string `json:"error"`
}

// QueueWeekly puts the weekly recommendation in the outbox. Its id is the
// time it is for, so that a restart queues the week's message once.
func QueueWeekly(ctx context.Context, state dmarcd.AlertStore, w Weekly) error {
	payload, err := json.Marshal(w)
	if err != nil {
		return err
	}
	id := notificationID(KindWeekly, w.At.UTC().Format(time.RFC3339))
	if w.To != "" {
		id = notificationID(KindWeekly, w.At.UTC().Format(time.RFC3339), w.To)
	}
	return state.AddNotification(ctx, dmarcd.Notification{ID: id, Created: w.At, Kind: KindWeekly, Payload: payload, To: w.To})
}
