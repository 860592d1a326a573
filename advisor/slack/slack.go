// Package slack posts dmarcd's alerts and weekly recommendations to Slack,
// through an incoming webhook or a bot token and channel
// (github.com/slack-go/slack), as Block Kit messages that read well on a
// phone: the domain and what happened first, the numbers, what to do.
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/advisor/alert"
	"github.com/dmarcd/dmarcd/internal/figures"
)

// PostTimeout bounds one post to Slack.
const PostTimeout = 30 * time.Second

// maxSectionText is Slack's bound on the text of a section block.
const maxSectionText = 3000

// maxBlocks is Slack's bound on the blocks of one message.
const maxBlocks = 50

// Options say where to post: a webhook URL, or a bot token and a channel.
type Options struct {
	WebhookURL string
	Token      string
	Channel    string
	// APIURL replaces Slack's API address (for tests: slacktest).
	APIURL string
}

// Notifier posts notifications. It implements alert.Poster.
type Notifier struct {
	opts   Options
	client *slack.Client
	http   *http.Client
}

// New returns a notifier for the options.
func New(o Options) (*Notifier, error) {
	// Slack's webhooks never redirect: a redirect is not followed, so that
	// a webhook address (an organisation's, typed by a customer) reaches
	// the host it names and no other.
	n := &Notifier{opts: o, http: &http.Client{Timeout: PostTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
	switch {
	case o.WebhookURL != "" && o.Token != "":
		return nil, errors.New("slack: set either webhook_url or token and channel, not both")
	case o.WebhookURL != "":
	case o.Token != "" && o.Channel != "":
		opts := []slack.Option{slack.OptionHTTPClient(n.http)}
		if o.APIURL != "" {
			opts = append(opts, slack.OptionAPIURL(o.APIURL))
		}
		n.client = slack.New(o.Token, opts...)
	default:
		return nil, errors.New("slack: set webhook_url, or token and channel")
	}
	return n, nil
}

// Post posts one notification of the outbox.
func (n *Notifier) Post(ctx context.Context, note dmarcd.Notification) error {
	var text string
	var blocks []slack.Block
	switch note.Kind {
	case alert.KindAlert:
		var a dmarcd.Alert
		if err := json.Unmarshal(note.Payload, &a); err != nil {
			return fmt.Errorf("slack: notification %s: %w", note.ID, err)
		}
		text, blocks = AlertBlocks(a)
	case alert.KindWeekly:
		var w alert.Weekly
		if err := json.Unmarshal(note.Payload, &w); err != nil {
			return fmt.Errorf("slack: notification %s: %w", note.ID, err)
		}
		text, blocks = WeeklyBlocks(w)
	default:
		return fmt.Errorf("slack: notification %s of unknown kind %q", note.ID, note.Kind)
	}
	return n.post(ctx, text, blocks)
}

// PostText posts a message of plain text, escaped (it names an
// organisation and a user): the dashboard's test message.
func (n *Notifier) PostText(ctx context.Context, text string) error {
	return n.post(ctx, text, []slack.Block{section(escape(text))})
}

func (n *Notifier) post(ctx context.Context, text string, blocks []slack.Block) error {
	if len(blocks) > maxBlocks {
		blocks = append(blocks[:maxBlocks-1], section("…and more: see `dmarcd advise`"))
	}
	if n.client != nil {
		_, _, err := n.client.PostMessageContext(ctx, n.opts.Channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		return classify(err)
	}
	return n.postWebhook(ctx, text, blocks)
}

// maxErrorBody bounds what is kept of Slack's answer to a failed post.
const maxErrorBody = 512

// postWebhook posts to an incoming webhook. Its own request, rather than
// slack-go's, keeps Slack's answer (the body says why: "invalid_blocks",
// "no_service") and keeps the webhook URL, a credential, out of errors.
func (n *Notifier) postWebhook(ctx context.Context, text string, blocks []slack.Block) error {
	body, err := json.Marshal(&slack.WebhookMessage{Text: text, Blocks: &slack.Blocks{BlockSet: blocks}})
	if err != nil {
		return &alert.PermanentError{Reason: "encoding the message: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.opts.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return &alert.PermanentError{Reason: "the webhook URL is not valid"}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL
		}
		return fmt.Errorf("posting to the slack webhook: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	reason := fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(answer)))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests:
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &alert.RateLimited{RetryAfter: time.Duration(max(retry, 1)) * time.Second}
	case resp.StatusCode >= 500:
		return fmt.Errorf("slack webhook answered %s", reason)
	}
	// 400 invalid_blocks, 403 invalid_token, 404 no_service or
	// channel_not_found, 410 channel_is_archived: trying again cannot help.
	return &alert.PermanentError{Reason: "slack webhook answered " + reason}
}

// transientAPIErrors are the errors of Slack's Web API that trying again
// may cure; the others (invalid_auth, channel_not_found, invalid_blocks,
// not_in_channel, is_archived, msg_too_long ...) cannot be cured so.
var transientAPIErrors = []string{"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}

// classify sorts an error of Slack's Web API client: a rate limit, a
// permanent refusal, or an error to try again.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &alert.RateLimited{RetryAfter: rl.RetryAfter}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && !slices.Contains(transientAPIErrors, se.Err) {
		return &alert.PermanentError{Reason: "slack refused the message: " + se.Err}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code >= 400 && sc.Code < 500 && sc.Code != http.StatusTooManyRequests {
		return &alert.PermanentError{Reason: "slack answered " + sc.Status}
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("posting to slack: %w", err)
}

// escape makes text from reports, DNS or mail inert in Slack: "&", "<"
// and ">" as entities, so that no <!channel>, <@user> or <url|label> of a
// spoofer's PTR name or a report field comes alive. Only dmarcd's own
// markup (bold, code) stays live.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// AlertBlocks renders an alert: the fallback text (for notifications on a
// phone's lock screen) and the blocks. Everything but the labels is
// escaped: titles, texts and facts carry report and DNS data.
func AlertBlocks(a dmarcd.Alert) (string, []slack.Block) {
	icon := ":rotating_light:"
	if a.Resolved {
		icon = ":white_check_mark:"
	}
	domain := a.Domain
	if domain == "" {
		domain = "dmarcd"
	}
	title := fmt.Sprintf("%s %s", icon, escape(a.Title))
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, clip(title, 150), true, false)),
		slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			fmt.Sprintf("*%s* · %s · %s", escape(domain), a.Kind, a.At.UTC().Format("Mon 2 Jan 15:04 UTC")), false, false)),
		section(escape(a.Text)),
	}
	if len(a.Facts) > 0 {
		var fields []*slack.TextBlockObject
		for _, f := range a.Facts {
			fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType, fmt.Sprintf("*%s*\n%s", escape(f.Label), escape(f.Value)), false, false))
		}
		if len(fields) > 10 { // Slack's bound on section fields
			fields = fields[:10]
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}
	if a.Action != "" && !a.Resolved {
		blocks = append(blocks, section("*What to do:* "+escape(a.Action)))
	}
	return title, blocks
}

// WeeklyBlocks renders the weekly recommendation: per domain the current
// step, the decision with its reasons, the record to publish, the senders
// that hold the rollout with their fixes, and the keys due.
func WeeklyBlocks(w alert.Weekly) (string, []slack.Block) {
	title := fmt.Sprintf("DMARC rollout: week of %s", w.At.UTC().Format("2 Jan 2006"))
	blocks := []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, title, false, false))}
	if w.Late {
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			fmt.Sprintf("Late: due %s; dmarcd was not running then.", w.At.UTC().Format("Mon 2 Jan 15:04 UTC")), false, false)))
	}
	for _, r := range w.Recommendations {
		var b strings.Builder
		fmt.Fprintf(&b, "*%s*: %s (%s → %s)\n", escape(r.Domain), strings.ToUpper(string(r.Action)), r.CurrentText(), advisor.StepText(r.Next, r.NextTesting))
		for _, reason := range r.Reasons {
			fmt.Fprintf(&b, "• %s\n", escape(reason))
		}
		e := r.Evidence
		fmt.Fprintf(&b, "_%s messages, %.1f%% pass DMARC, %.1f%% of authorized mail passes, %d days at this step_",
			figures.Count(e.Messages), 100*e.DMARCPassRate, 100*e.AuthorizedPassRate, e.DaysAtStep)
		blocks = append(blocks, slack.NewDividerBlock(), section(b.String()))
		if r.Record != "" {
			blocks = append(blocks, section(fmt.Sprintf("Publish `%s` TXT:\n```%s```", escape(r.RecordName), escape(r.Record))))
		}
		if len(e.Blocking) > 0 {
			var s strings.Builder
			s.WriteString("*Senders to fix*\n")
			for _, bl := range e.Blocking {
				fmt.Fprintf(&s, "• *%s* (%s): %s of %s messages fail, %s of the domain's mail\n", escape(bl.Name), bl.Class, figures.Count(bl.Failing), figures.Count(bl.Messages), figures.Share(bl.FailingShare))
				for _, f := range bl.Fixes {
					fmt.Fprintf(&s, "    ◦ %s\n", escape(f.Text))
					if f.Record != "" {
						fmt.Fprintf(&s, "```%s```\n", escape(f.Record))
					}
				}
			}
			blocks = append(blocks, section(s.String()))
		}
	}
	if len(w.Failed) > 0 {
		var b strings.Builder
		b.WriteString("*No recommendation this time*\n")
		for _, f := range w.Failed {
			fmt.Fprintf(&b, "• *%s*: %s\n", escape(f.Domain), escape(f.Error))
		}
		blocks = append(blocks, slack.NewDividerBlock(), section(b.String()))
	}
	var keys strings.Builder
	for _, k := range w.Keys {
		if k.RotationDue || k.Ready {
			fmt.Fprintf(&keys, "• *%s* selector `%s` (%s): %s\n", escape(k.Key.Domain), escape(k.Key.Selector), k.Key.State, escape(k.Reason))
		}
	}
	if keys.Len() > 0 {
		blocks = append(blocks, slack.NewDividerBlock(), section("*DKIM keys due*\n"+keys.String()))
	}
	if len(w.TLS) > 0 {
		var b strings.Builder
		for _, p := range w.TLS {
			fmt.Fprintf(&b, "• *%s* %s: %s sessions, %.2f%% failed\n", escape(p.Domain), p.Type, figures.Count(p.Successful+p.Failed), 100*p.FailureRate())
		}
		blocks = append(blocks, slack.NewDividerBlock(), section("*SMTP TLS* (what sending servers saw of your MX hosts)\n"+b.String()))
	}
	return title, blocks
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, clip(text, maxSectionText), false, false), nil, nil)
}

// clip bounds s to n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
