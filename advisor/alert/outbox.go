package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	// trying at this pace as long as the chat service fails.
	MaxBackoff = 5 * time.Minute
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

// Outbox delivers the queued notifications in order.
type Outbox struct {
	State  dmarcd.AlertStore
	Poster Poster
	Logger *slog.Logger
	Now    func() time.Time
	// Sleep waits d or until ctx ends; a test replaces it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Flush posts every pending notification, oldest first. A rate limit waits
// as long as the service asks; another error waits with exponential backoff
// (InitialBackoff to MaxBackoff) and tries the same notification again, so
// that order is kept and nothing is lost. It returns when the outbox is
// empty or ctx ends.
func (o *Outbox) Flush(ctx context.Context) (int, error) {
	pending, err := o.State.PendingNotifications(ctx)
	if err != nil {
		return 0, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sleep := o.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	delivered := 0
	for _, n := range pending {
		backoff := InitialBackoff
		for {
			err := o.Poster.Post(ctx, n)
			if err == nil {
				break
			}
			wait := backoff
			var rl *RateLimited
			if errors.As(err, &rl) {
				wait = rl.RetryAfter
				log.Warn("chat service rate limit: waiting", "notification", n.ID, "retry_after", wait)
			} else {
				backoff = min(2*backoff, MaxBackoff)
				log.Warn("posting notification failed: will retry", "notification", n.ID, "err", err, "retry_in", wait)
			}
			if err := sleep(ctx, wait); err != nil {
				return delivered, err
			}
		}
		if err := o.State.MarkDelivered(ctx, n.ID, now()); err != nil {
			return delivered, err
		}
		delivered++
	}
	return delivered, nil
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
	At              time.Time                 `json:"at"`
	Recommendations []*advisor.Recommendation `json:"recommendations"`
	Keys            []advisor.KeyAdvice       `json:"keys,omitempty"`
	// TLS sums up the SMTP TLS reports of the advised domains over the
	// window of the evidence, per policy.
	TLS []analyze.TLSPolicy `json:"tls,omitempty"`
}

// QueueWeekly puts the weekly recommendation in the outbox. Its id is the
// time it is for, so that a restart queues the week's message once.
func QueueWeekly(ctx context.Context, state dmarcd.AlertStore, w Weekly) error {
	payload, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return state.AddNotification(ctx, dmarcd.Notification{
		ID: notificationID(KindWeekly, w.At.UTC().Format(time.RFC3339)), Created: w.At, Kind: KindWeekly, Payload: payload,
	})
}
