package imap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"golang.org/x/oauth2"
)

// TokenCommandTimeout bounds a token_command run.
const TokenCommandTimeout = 30 * time.Second

// TokenRequestTimeout bounds one request to an OAuth 2.0 token endpoint.
const TokenRequestTimeout = 30 * time.Second

// MaxSecretBytes bounds a password, token or secret read from a file or a
// command.
const MaxSecretBytes = 64 << 10

// credentials produce what a login needs, read afresh at each login so that
// a rotated password or token needs no restart.
type credentials struct {
	mb Mailbox

	mu     sync.Mutex
	tokens oauth2.TokenSource // for [mailbox.oauth2]
	// refresh is the refresh token last written to or read from the file.
	refresh string
}

// password returns the password of auth "password".
func (c *credentials) password() (string, error) {
	if c.mb.PasswordFile == "" {
		return c.mb.Password, nil
	}
	return readSecret(c.mb.PasswordFile, "password_file")
}

// token returns an OAuth 2.0 access token.
func (c *credentials) token(ctx context.Context) (string, error) {
	switch {
	case c.mb.TokenFile != "":
		return readSecret(c.mb.TokenFile, "token_file")
	case len(c.mb.TokenCommand) > 0:
		return runTokenCommand(ctx, c.mb.TokenCommand)
	case c.mb.OAuth2 != nil:
		return c.oauth2Token()
	}
	return "", errors.New("no token source configured")
}

// oauth2Token refreshes the access token when it expired (x/oauth2 keeps
// it until then) and keeps a rotated refresh token.
func (c *credentials) oauth2Token() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.mb.OAuth2
	if c.tokens == nil {
		refresh, err := readSecret(o.RefreshTokenFile, "oauth2.refresh_token_file")
		if err != nil {
			return "", err
		}
		secret := o.ClientSecret
		if o.ClientSecretFile != "" {
			if secret, err = readSecret(o.ClientSecretFile, "oauth2.client_secret_file"); err != nil {
				return "", err
			}
		}
		conf := &oauth2.Config{
			ClientID:     o.ClientID,
			ClientSecret: secret,
			// In the form, as Microsoft and Google take it, also from
			// public clients that have no secret for HTTP Basic.
			Endpoint: oauth2.Endpoint{TokenURL: o.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
			Scopes:   o.Scopes,
		}
		// The token source keeps this context for every later refresh, so
		// it must not be a request's.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: TokenRequestTimeout})
		c.tokens = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh})
		c.refresh = refresh
	}
	tok, err := c.tokens.Token()
	if err != nil {
		// Start again from the file next time: an operator may have
		// written a new refresh token.
		c.tokens = nil
		return "", fmt.Errorf("refreshing the OAuth 2.0 token at %s: %w", o.TokenURL, err)
	}
	if tok.RefreshToken != "" && tok.RefreshToken != c.refresh {
		if err := writeSecret(o.RefreshTokenFile, tok.RefreshToken); err != nil {
			return "", fmt.Errorf("keeping the rotated refresh token in oauth2.refresh_token_file: %w", err)
		}
		c.refresh = tok.RefreshToken
	}
	return tok.AccessToken, nil
}

// refused forgets the access token the server refused (it was revoked
// before its expiry), so that the next login refreshes it.
func (c *credentials) refused() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens = nil
}

// saslClient returns the SASL client of an OAuth 2.0 login.
func (c *credentials) saslClient(ctx context.Context) (sasl.Client, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	if tok == "" {
		return nil, errors.New("the token source gave an empty token")
	}
	if c.mb.Auth == AuthOAuthBearer {
		return &oauthBearerClient{Client: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: c.mb.Username, Token: tok, Host: c.mb.Host, Port: c.mb.Port})}, nil
	}
	return &xoauth2Client{username: c.mb.Username, token: tok}, nil
}

// oauthStatus is the error a server sends as a SASL challenge when it
// refuses a token (RFC 7628 §3.2.2; Google's and Microsoft's XOAUTH2 send
// the same JSON).
type oauthStatus struct {
	Status string `json:"status"`
	Scope  string `json:"scope"`
}

func (s *oauthStatus) read(challenge []byte) {
	json.Unmarshal(challenge, s)
}

// refusal describes the server's error challenge, if any, for the log.
func refusal(c sasl.Client) string {
	var s *oauthStatus
	switch c := c.(type) {
	case *xoauth2Client:
		s = &c.status
	case *oauthBearerClient:
		s = &c.status
	}
	if s == nil || s.Status == "" {
		return ""
	}
	return fmt.Sprintf(" (token status %q, scope %q)", s.Status, s.Scope)
}

// oauthBearerClient is go-sasl's OAUTHBEARER client, except that it answers
// the server's error challenge with the %x01 that RFC 7628 §3.2.3 asks for,
// so that the server ends the exchange with a NO instead of waiting.
type oauthBearerClient struct {
	sasl.Client
	status oauthStatus
}

func (c *oauthBearerClient) Next(challenge []byte) ([]byte, error) {
	c.status.read(challenge)
	return []byte{0x01}, nil
}

// readSecret reads a one-line secret from a file, without its trailing
// newline.
func readSecret(path, key string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, MaxSecretBytes+1)); err != nil {
		return "", fmt.Errorf("reading %s %s: %w", key, path, err)
	}
	if b.Len() > MaxSecretBytes {
		return "", fmt.Errorf("%s %s is larger than MaxSecretBytes (%d)", key, path, MaxSecretBytes)
	}
	s := strings.TrimRight(b.String(), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", key, path)
	}
	return s, nil
}

// writeSecret replaces a secret file atomically, keeping it private.
func writeSecret(path, secret string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// runTokenCommand runs the command (no shell) and returns the first line
// it prints.
func runTokenCommand(ctx context.Context, argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, TokenCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &stdout, n: MaxSecretBytes}
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4 << 10}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("token_command %s: %w: %s", argv[0], err, strings.TrimSpace(stderr.String()))
	}
	line, _, _ := strings.Cut(stdout.String(), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("token_command %s printed no token", argv[0])
	}
	return line, nil
}

// xoauth2Client is the SASL XOAUTH2 mechanism of Google and Microsoft
// (https://developers.google.com/gmail/imap/xoauth2-protocol), which
// go-sasl no longer ships.
type xoauth2Client struct {
	username, token string
	status          oauthStatus
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + c.username + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next answers the server's error challenge (a JSON status) with an empty
// response, after which the server fails the command with the reason.
func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	c.status.read(challenge)
	return []byte{}, nil
}

// limitedWriter keeps the first n bytes and drops the rest, so that a
// chatty command cannot fill the memory.
type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
