package main

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
)

// redactedText stands where a secret was.
const redactedText = "[redacted]"

// minSecretLength: shorter values are not redacted, so that a short
// password does not blank out every word that happens to contain it.
const minSecretLength = 6

// maxSecretFileBytes bounds a secret file read for redaction.
const maxSecretFileBytes = 4096

// secrets lists the credentials of the configuration (the Slack webhook URL
// and its path, the Slack and web tokens, the IMAP passwords, the OAuth
// client secrets), read from their files where set, so that no log line
// or error carries one. A file that cannot be read is skipped: the command
// that needs it says so.
func secrets(cfg Config) []string {
	var out []string
	add := func(value, file string) {
		if file != "" {
			if f, err := os.Open(file); err == nil {
				b, _ := io.ReadAll(io.LimitReader(f, maxSecretFileBytes))
				f.Close()
				value = strings.TrimSpace(string(b))
			}
		}
		if len(value) < minSecretLength {
			return
		}
		out = append(out, value)
		// A webhook's credential is its path: error messages may carry
		// the path without the host.
		if u, err := url.Parse(value); err == nil && u.Host != "" && len(u.Path) >= minSecretLength {
			out = append(out, u.Path)
		}
	}
	add(cfg.Slack.WebhookURL, cfg.Slack.WebhookURLFile)
	add(cfg.Slack.Token, cfg.Slack.TokenFile)
	add(cfg.Web.Token, cfg.Web.TokenFile)
	add("", cfg.Web.BasicAuthPasswordFile)
	for _, m := range cfg.Mailboxes {
		add(m.Password, m.PasswordFile)
		if m.OAuth2 != nil {
			add(m.OAuth2.ClientSecret, m.OAuth2.ClientSecretFile)
		}
	}
	// The longest first, so that a secret holding another is removed
	// whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// redactor removes secrets from text.
type redactor struct{ r *strings.Replacer }

func newRedactor(secrets []string) redactor {
	if len(secrets) == 0 {
		return redactor{}
	}
	var pairs []string
	for _, s := range secrets {
		pairs = append(pairs, s, redactedText)
	}
	return redactor{strings.NewReplacer(pairs...)}
}

func (r redactor) text(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// redactHandler is a slog.Handler that removes secrets from the message
// and every attribute before the next handler writes them.
type redactHandler struct {
	next slog.Handler
	r    redactor
}

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.text(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, x := range attrs {
			out[i] = h.attr(x)
		}
		return slog.Group(a.Key, out...)
	case slog.KindString:
		return slog.String(a.Key, h.r.text(v.String()))
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.r.text(err.Error()))
		}
		return slog.String(a.Key, h.r.text(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = h.attr(a)
	}
	return redactHandler{next: h.next.WithAttrs(out), r: h.r}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{next: h.next.WithGroup(name), r: h.r}
}
