package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/advisor/alert"
	"github.com/dmarcd/dmarcd/analyze"
)

// SendingConfig lists our own outbound servers: the relays and MTAs that
// send for every sender domain. The wizard puts them into SPF, and the
// analysis counts their mail as authorized.
type SendingConfig struct {
	IPs         []string `toml:"ips"`
	SPFIncludes []string `toml:"spf_includes"`
}

// AlertsConfig sets the alert checks of the daemon.
type AlertsConfig struct {
	// CheckIntervalMinutes is how often the daemon looks for alerts.
	CheckIntervalMinutes int `toml:"check_interval_minutes"`
	// SuppressHours is the suppression window: an alert that resolved is
	// not told again if it fires within it.
	SuppressHours int `toml:"suppress_hours"`
	// QuarantinePerDay: more quarantined inputs than this in a day is an
	// ingest-health alert.
	QuarantinePerDay int64 `toml:"quarantine_per_day"`
	// Thresholds are the defaults for every domain; Domain overrides them
	// per domain: [alerts.domain."example.com"].
	Thresholds alert.Thresholds            `toml:"thresholds"`
	Domain     map[string]alert.Thresholds `toml:"domain"`
}

func defaultAlertsConfig() AlertsConfig {
	return AlertsConfig{CheckIntervalMinutes: 15, SuppressHours: int(alert.DefaultSuppress / time.Hour), QuarantinePerDay: 20,
		Thresholds: alert.DefaultThresholds}
}

// thresholds returns the thresholds of one domain: its own table over the
// defaults.
func (c AlertsConfig) thresholds(domain string) alert.Thresholds {
	t, ok := c.Domain[domain]
	if !ok {
		return c.Thresholds
	}
	return t.Over(c.Thresholds)
}

// SlackConfig says where alerts and the weekly recommendation go: an
// incoming webhook, or a bot token and a channel. The secrets may come from
// files (webhook_url_file, token_file) to keep them out of the config.
type SlackConfig struct {
	WebhookURL     string `toml:"webhook_url"`
	WebhookURLFile string `toml:"webhook_url_file"`
	Token          string `toml:"token"`
	TokenFile      string `toml:"token_file"`
	Channel        string `toml:"channel"`
}

// enabled says whether Slack is configured.
func (c SlackConfig) enabled() bool {
	return c.WebhookURL != "" || c.WebhookURLFile != "" || c.Token != "" || c.TokenFile != ""
}

// secrets returns the webhook URL and the token, read from their files
// where set.
func (c SlackConfig) secrets() (webhook, token string, err error) {
	read := func(value, file, key string) (string, error) {
		if file == "" {
			return value, nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("slack.%s: %w", key, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if webhook, err = read(c.WebhookURL, c.WebhookURLFile, "webhook_url_file"); err != nil {
		return
	}
	token, err = read(c.Token, c.TokenFile, "token_file")
	return
}

// ScheduleConfig sets when the weekly recommendation goes out.
type ScheduleConfig struct {
	// Weekly is a five-field cron spec; Monday 08:00 by default.
	Weekly string `toml:"weekly"`
	// TimeZone is an IANA zone name, e.g. "Europe/Berlin".
	TimeZone string `toml:"time_zone"`
}

// catalogue is the catalogue of sending services with the [[sender]]
// tables of the configuration.
func (c *Config) catalogue() (*analyze.Catalogue, error) {
	cat, err := analyze.DefaultCatalogue.With(c.Senders...)
	if err != nil {
		return nil, fmt.Errorf("config: [[sender]]: %w", err)
	}
	return cat, nil
}

func (c *Config) validateAdvise() error {
	if _, err := analyze.ParseNetworks(c.Sending.IPs); err != nil {
		return fmt.Errorf("config: sending.ips: %w", err)
	}
	for _, d := range c.Domains {
		if d.Name == "" {
			return errors.New("config: a [[domain]] has no name")
		}
		if _, err := analyze.ParseNetworks(d.IPs); err != nil {
			return fmt.Errorf("config: domain %s: ips: %w", d.Name, err)
		}
	}
	if _, err := c.catalogue(); err != nil {
		return err
	}
	g := c.Advisor
	if g.WindowDays < 1 || g.MinDaysPerStep < 0 || g.MinAlignedShare < 0 || g.MinAlignedShare > 1 || g.NewFailureDays < 1 ||
		g.MaxLegitimateFailing < 0 || g.MaxLegitimateFailing > 1 {
		return fmt.Errorf("config: [advisor]: window_days and new_failure_days must be at least 1, min_aligned_share and max_legitimate_failing within 0..1")
	}
	if c.Alerts.CheckIntervalMinutes < 1 {
		return fmt.Errorf("config: alerts.check_interval_minutes must be at least 1")
	}
	s := c.Slack
	if (s.WebhookURL != "" || s.WebhookURLFile != "") && (s.Token != "" || s.TokenFile != "") {
		return errors.New("config: [slack]: set a webhook (webhook_url or webhook_url_file) or a bot token and channel, not both")
	}
	if (s.Token != "" || s.TokenFile != "") && s.Channel == "" {
		return errors.New("config: [slack]: a bot token needs a channel")
	}
	if _, err := alert.ParseSchedule(c.Schedule.Weekly, c.Schedule.TimeZone); err != nil {
		return fmt.Errorf("config: [schedule]: %w", err)
	}
	return nil
}
