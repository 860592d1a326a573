package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestWebConfig(t *testing.T) {
	dir := t.TempDir()
	example, err := os.ReadFile("../../dmarcd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfigBytes(t, dir, string(example))
	if err != nil {
		t.Fatalf("the example config: %v", err)
	}
	if !reflect.DeepEqual(cfg.Web, defaultWebConfig()) || cfg.Web.Listen != "127.0.0.1:8478" {
		t.Errorf("the example's [web] differs from the defaults: %+v", cfg.Web)
	}
	for _, bad := range []string{
		"[web]\nlisten = \"8478\"",
		"[web]\nslack_webhook_prefixes = [\"https://hooks.slack.com\"]",
		"[web]\ntoken = \"0123456789abcdef\"\ntoken_file = \"/etc/dmarcd/token\"",
		"[web]\nbasic_auth_user = \"postmaster\"",
		"[web]\nbasic_auth_password_file = \"/etc/dmarcd/password\"",
		"[web]\npassword = \"x\"",
	} {
		if _, err := loadConfigBytes(t, dir, bad); err == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
	if _, err := loadConfigBytes(t, dir, "[web]\nlisten = \"\""); err != nil {
		t.Errorf("an empty listen (no page): %v", err)
	}
}

// TestWebRefusesOpenAddress: on an address other than loopback the page
// needs a secret; without one the command exits with a usage error before
// it listens.
func TestWebRefusesOpenAddress(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		code, _, errOut := runCLI(t, "--store", db, "web", "--listen", addr)
		if code != exitUsage || !strings.Contains(errOut, "not a loopback address") {
			t.Errorf("web --listen %s without a secret: exit %d: %s", addr, code, errOut)
		}
	}
	// A short token is refused too.
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("short\n"), 0o600)
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("[web]\ntoken_file = \""+tokenFile+"\"\n"), 0o644)
	if code, _, errOut := runCLI(t, "--config", cfg, "--store", db, "web", "--listen", "0.0.0.0:0"); code != exitUsage || !strings.Contains(errOut, "at least") {
		t.Errorf("a short token: exit %d: %s", code, errOut)
	}
	// A missing token file names the file.
	os.WriteFile(cfg, []byte("[web]\ntoken_file = \""+tokenFile+".missing\"\n"), 0o644)
	if code, _, errOut := runCLI(t, "--config", cfg, "--store", db, "web"); code != exitUsage || !strings.Contains(errOut, "web.token_file") {
		t.Errorf("a missing token file: exit %d: %s", code, errOut)
	}
}

// TestWebServes starts the page as dmarcd run and dmarcd web do, on every
// address with a token read from a file, over the samples.
func TestWebServes(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	if code, out, errOut := runCLI(t, "ingest", "--quiet", "--store", db, "../../samples"); code != exitOK {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out, errOut)
	}
	const token = "0123456789abcdef-web-token"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	cfg := defaultConfig()
	cfg.Store = db
	cfg.Keys.Dir = filepath.Join(dir, "keys") // none
	cfg.DNS.Resolver = "127.0.0.1:9"          // nothing answers: advice fails fast, the page still shows
	cfg.DNS.TimeoutSeconds = 1
	cfg.Web = WebConfig{Listen: net.JoinHostPort("0.0.0.0", strconv.Itoa(port)), TokenFile: tokenFile}
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := &env{ctx: ctx, cfg: cfg, log: slog.New(slog.NewTextHandler(&logs, nil)), stdout: io.Discard, stderr: io.Discard, now: testClock}
	st, err := e.openStore()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop, err := startWeb(e, st)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	url := "http://127.0.0.1:" + strconv.Itoa(port)
	fetch := func(path, bearer string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := fetch("/", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	code, body := fetch("/", token)
	if code != http.StatusOK || !strings.Contains(body, "news.example.com") || !strings.Contains(body, "16,326") {
		t.Errorf("with the token: %d\n%s", code, body)
	}
	if code, body := fetch("/domain/example.com", token); code != http.StatusOK || !strings.Contains(body, "16,246") {
		t.Errorf("domain page: %d\n%s", code, body)
	}
	if code, body := fetch("/keys", token); code != http.StatusOK || !strings.Contains(body, "No keys") {
		t.Errorf("keys page without keys: %d\n%s", code, body)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log holds the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "serving the web page") {
		t.Errorf("no log line of the page:\n%s", logs.String())
	}
}
