package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsRedacted: the webhook URL (and its path alone), the Slack and
// web tokens and an IMAP password read from a file appear in no log line,
// whether in the message, an attribute or an error.
func TestSecretsRedacted(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("imap-pa55word-from-file\n"), 0o600)
	cfg := defaultConfig()
	cfg.Slack.WebhookURL = "https://hooks.slack.com/services/T0001/B0001/XyZsecretHookPart"
	cfg.Web.Token = "web-token-0123456789"
	cfg.Mailboxes = []MailboxConfig{{Host: "imap.example.com", Username: "u", PasswordFile: pw}}
	var out bytes.Buffer
	log := newLogger(LogConfig{Level: "info"}, &out, newRedactor(secrets(cfg)))
	log.Error("posting to https://hooks.slack.com/services/T0001/B0001/XyZsecretHookPart failed",
		"err", errors.New(`Post "/services/T0001/B0001/XyZsecretHookPart": dial tcp: i/o timeout`),
		"token", "web-token-0123456789", "login", "imap-pa55word-from-file refused")
	log.With("hook", cfg.Slack.WebhookURL).Info("with")
	got := out.String()
	for _, secret := range []string{"XyZsecretHookPart", "web-token-0123456789", "imap-pa55word-from-file"} {
		if strings.Contains(got, secret) {
			t.Errorf("the log holds %q:\n%s", secret, got)
		}
	}
	if strings.Count(got, redactedText) < 5 {
		t.Errorf("not redacted where expected:\n%s", got)
	}
}
