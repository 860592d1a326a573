package accounts

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCheckWebhookURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://hooks.slack.com/services/T0/B0/xyz":              true,
		" https://hooks.slack.com/services/T0/B0/xyz\n":           true,
		"https://hooks.slack.com.evil.example/services/T0":        false,
		"https://user:pw@hooks.slack.com/services/T0":             false,
		"http://hooks.slack.com/services/T0":                      false,
		"https://169.254.169.254/latest/meta-data":                false,
		"hooks.slack.com/services/T0":                             false,
		"https://hooks.slack.com/services/T0#x":                   false,
		"https://hooks.slack.com/" + string(make([]byte, 600)):    false,
		"https://HOOKS.slack.com/services/T0/B0/xyz":              false,
		"https://hooks.slack.com/../../internal":                  true, // the path is Slack's to judge: the host is fixed
		"https://hooks.slack.com:8443/services/T0":                false,
		"https://hooks.slack.com%2f@internal.example/services/T0": false,
	} {
		if err := CheckWebhookURL(raw, nil); (err == nil) != ok {
			t.Errorf("%q: %v, want ok %v", raw, err, ok)
		}
	}
}

func TestSlackDestinations(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	acme, _ := s.AddOrg(ctx, "Acme")
	s.AddDomain(ctx, acme.ID, "acme.example")
	if _, err := s.Slack(ctx, acme.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no destination yet: %v", err)
	}
	if err := s.SetSlack(ctx, SlackDestination{Org: acme.ID, WebhookURL: "https://hooks.slack.com/services/T/B/1", Alerts: true, UpdatedBy: "ann"}); err != nil {
		t.Fatal(err)
	}
	ds, err := s.SlackFor(ctx, "news.acme.example")
	if err != nil || len(ds) != 1 || ds[0].Destination() != OrgDestination(acme.ID) || ds[0].Host() != "hooks.slack.com" {
		t.Fatalf("SlackFor a subdomain: %+v %v", ds, err)
	}
	if org, ok := ParseDestination(ds[0].Destination()); !ok || org != acme.ID {
		t.Errorf("ParseDestination: %d %v", org, ok)
	}
	if ds, _ := s.SlackFor(ctx, "other.example"); len(ds) != 0 {
		t.Errorf("a domain of no organisation has a destination: %+v", ds)
	}
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	s.SlackDelivered(ctx, acme.ID, "404 Not Found: no_service", at)
	if d, _ := s.Slack(ctx, acme.ID); d.Problem == "" || !d.ProblemAt.Equal(at) {
		t.Errorf("the refusal is not kept: %+v", d)
	}
	// Without alerts, SlackFor names none; a new webhook clears the problem.
	s.SetSlackOptions(ctx, acme.ID, false, true, "ann")
	if ds, _ := s.SlackFor(ctx, "acme.example"); len(ds) != 0 {
		t.Errorf("alerts off, still routed: %+v", ds)
	}
	s.SetSlack(ctx, SlackDestination{Org: acme.ID, WebhookURL: "https://hooks.slack.com/services/T/B/2", Weekly: true, UpdatedBy: "ann"})
	if d, _ := s.Slack(ctx, acme.ID); d.Problem != "" || d.WebhookURL != "https://hooks.slack.com/services/T/B/2" {
		t.Errorf("after a new webhook: %+v", d)
	}
	if err := s.RemoveSlack(ctx, acme.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveSlack(ctx, acme.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing twice: %v", err)
	}
}
