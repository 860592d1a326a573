package web

// The organisations' own Slack channels, for their owners and the
// administrator: the webhook (a credential: typed once, never shown
// again), whether alerts and the weekly recommendation go there, and what
// Slack said when it last refused a message.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/advisor/slack"
	"github.com/dmarcd/dmarcd/dashboards/accounts"
)

type slackPage struct {
	page
	Orgs []slackOrg
	Note string
}

// slackOrg is one organisation's channel as the page and the API show it:
// never its webhook URL, only the host.
type slackOrg struct {
	Org       accounts.Org `json:"-"`
	Set       bool         `json:"set"`
	Host      string       `json:"host,omitempty"`
	Alerts    bool         `json:"alerts"`
	Weekly    bool         `json:"weekly"`
	Updated   string       `json:"updated,omitempty"`
	UpdatedBy string       `json:"updated_by,omitempty"`
	// Problem is what Slack said when it last refused a message for
	// good, at ProblemAt.
	Problem   string `json:"problem,omitempty"`
	ProblemAt string `json:"problem_at,omitempty"`
	Error     string `json:"-"`
}

// slackOf reads org's channel for the page or the API: alerts and weekly
// are offered checked when none is set.
func (h *Handler) slackOf(ctx context.Context, org accounts.Org) (slackOrg, error) {
	so := slackOrg{Org: org, Alerts: true, Weekly: true}
	d, err := h.opts.Accounts.Slack(ctx, org.ID)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		return so, nil
	case err != nil:
		return so, err
	}
	so.Set, so.Host, so.Alerts, so.Weekly, so.UpdatedBy = true, d.Host(), d.Alerts, d.Weekly, d.UpdatedBy
	so.Updated = d.Updated.Format("2006-01-02 15:04")
	if d.Problem != "" {
		so.Problem, so.ProblemAt = d.Problem, d.ProblemAt.Format("2006-01-02 15:04")
	}
	return so, nil
}

// ownedOrgs are the organisations whose Slack channel the viewer manages:
// the ones they own, all for the administrator.
func (h *Handler) ownedOrgs(r *http.Request) ([]accounts.Org, error) {
	v := viewerOf(r)
	all, err := h.opts.Accounts.Orgs(r.Context())
	if err != nil {
		return nil, err
	}
	if v.scope.Admin {
		return all, nil
	}
	return slices.DeleteFunc(all, func(o accounts.Org) bool { return v.sess.User.Roles[o.ID] != accounts.RoleOwner }), nil
}

// slackSettings shows and changes the Slack channels of the viewer's
// organisations. A POST names one organisation (org, its id) and an action:
// save (a new webhook when one is typed, else the options), test (a test
// message) or remove.
func (h *Handler) slackSettings(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if v == nil {
		h.notFound(w, r)
		return
	}
	orgs, err := h.ownedOrgs(r)
	if err != nil {
		h.internal(w, r, "the organisations", err)
		return
	}
	if len(orgs) == 0 {
		h.fail(w, r, http.StatusForbidden, "The Slack channels are for the owners of an organisation.")
		return
	}
	p := &slackPage{page: h.page(r, "Slack", "slack"), Note: r.URL.Query().Get("note")}
	status := http.StatusOK
	failed := map[int64]string{}
	if r.Method == http.MethodPost {
		id, _ := strconv.ParseInt(r.PostFormValue("org"), 10, 64)
		i := slices.IndexFunc(orgs, func(o accounts.Org) bool { return o.ID == id })
		if i < 0 {
			h.notFound(w, r) // another's, or none: the same answer
			return
		}
		change := slackChange{Action: r.PostFormValue("action"), WebhookURL: r.PostFormValue("webhook_url"),
			Alerts: r.PostFormValue("alerts") != "", Weekly: r.PostFormValue("weekly") != ""}
		note, err := h.changeSlack(r, v, orgs[i], change)
		var bad inputErr
		switch {
		case errors.As(err, &bad):
			failed[id], status = bad.Error(), http.StatusUnprocessableEntity
		case err != nil:
			h.internal(w, r, "the Slack channel", err)
			return
		default:
			http.Redirect(w, r, "/slack?note="+url.QueryEscape(note), http.StatusSeeOther)
			return
		}
	}
	for _, o := range orgs {
		so, err := h.slackOf(r.Context(), o)
		if err != nil {
			h.internal(w, r, "the Slack channel", err)
			return
		}
		so.Error = failed[o.ID]
		p.Orgs = append(p.Orgs, so)
	}
	h.render(w, r, status, "slack", p)
}

// inputErr is a form answer that cannot be taken; its text is for the
// page.
type inputErr string

func (e inputErr) Error() string { return string(e) }

// slackChange is a change of an organisation's Slack channel, from the
// page's form or the API.
type slackChange struct {
	// Action is save, test or remove.
	Action string `json:"-"`
	// WebhookURL is a new webhook; empty keeps the one set.
	WebhookURL string `json:"webhook_url"`
	Alerts     bool   `json:"alerts"`
	Weekly     bool   `json:"weekly"`
}

// changeSlack applies a change to org's channel and records it in the
// audit log, never with the webhook URL. An inputErr says what is wrong
// with the change.
func (h *Handler) changeSlack(r *http.Request, v *viewer, org accounts.Org, c slackChange) (string, error) {
	ctx := r.Context()
	alerts, weekly := c.Alerts, c.Weekly
	detail := "alerts " + strconv.FormatBool(alerts) + ", weekly " + strconv.FormatBool(weekly)
	audit := func(action, detail string) {
		h.audit(r, accounts.AuditEntry{Actor: v.sess.User.Email, Org: org.Name, Action: action, Object: org.Name, Detail: detail})
	}
	switch c.Action {
	case "remove":
		if err := h.opts.Accounts.RemoveSlack(ctx, org.ID); errors.Is(err, accounts.ErrNotFound) {
			return "", inputErr("It has no Slack channel.")
		} else if err != nil {
			return "", err
		}
		audit("slack.remove", "")
		return org.Name + "'s Slack channel is removed; its messages not yet posted are kept as undeliverable.", nil
	case "test":
		return h.testSlack(ctx, v, org, audit)
	case "save":
	default:
		return "", inputErr("Nothing to do: save, test or remove.")
	}
	hook := c.WebhookURL
	if hook == "" {
		err := h.opts.Accounts.SetSlackOptions(ctx, org.ID, alerts, weekly, v.sess.User.Email)
		if errors.Is(err, accounts.ErrNotFound) {
			return "", inputErr("Paste the webhook URL Slack gave you (Apps, Incoming Webhooks).")
		}
		if err != nil {
			return "", err
		}
		audit("slack.set", detail)
		return org.Name + "'s Slack channel is saved.", nil
	}
	if err := accounts.CheckWebhookURL(hook, h.opts.SlackWebhookPrefixes); err != nil {
		return "", inputErr(err.Error())
	}
	if err := h.opts.Accounts.SetSlack(ctx, accounts.SlackDestination{Org: org.ID, WebhookURL: hook, Alerts: alerts, Weekly: weekly,
		UpdatedBy: v.sess.User.Email}); err != nil {
		return "", err
	}
	audit("slack.set", "a new webhook; "+detail)
	return org.Name + "'s Slack channel is saved: the next alert about its domains goes there.", nil
}

// TestPostTimeout bounds the post of a test message, which the owner waits
// for.
const TestPostTimeout = 10 * time.Second

// testSlack posts a test message to org's channel, so that its owner sees
// the webhook work (or Slack's refusal) at once, rather than at the next
// alert.
func (h *Handler) testSlack(ctx context.Context, v *viewer, org accounts.Org, audit func(action, detail string)) (string, error) {
	d, err := h.opts.Accounts.Slack(ctx, org.ID)
	if errors.Is(err, accounts.ErrNotFound) {
		return "", inputErr("It has no Slack channel to test: paste a webhook URL first.")
	}
	if err != nil {
		return "", err
	}
	// The instance's prefixes may have changed since the webhook was set.
	if err := accounts.CheckWebhookURL(d.WebhookURL, h.opts.SlackWebhookPrefixes); err != nil {
		return "", inputErr(err.Error() + ": set a new webhook.")
	}
	n, err := slack.New(slack.Options{WebhookURL: d.WebhookURL})
	if err != nil {
		return "", err
	}
	var gets []string
	if d.Alerts {
		gets = append(gets, "the alerts about its domains")
	}
	if d.Weekly {
		gets = append(gets, "its weekly rollout recommendation")
	}
	what := "nothing yet (alerts and the weekly recommendation are both off)"
	if len(gets) > 0 {
		what = strings.Join(gets, " and ")
	}
	ctx, cancel := context.WithTimeout(ctx, TestPostTimeout)
	defer cancel()
	err = n.PostText(ctx, fmt.Sprintf("A test message from dmarcd, sent by %s: this channel gets %s for %s.", v.sess.User.Email, what, org.Name))
	audit("slack.test", errText(err))
	if err != nil {
		return "", inputErr("Slack did not take the test message: " + err.Error() + ".")
	}
	return "A test message went to " + org.Name + "'s Slack channel: look for it there.", nil
}

// errText is err's text, "ok" for none.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
