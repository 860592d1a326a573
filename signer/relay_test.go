package signer

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"net/textproto"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/testserver"
)

func startRelay(t testing.TB, cfg RelayConfig) string {
	t.Helper()
	r, err := NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(l)
	t.Cleanup(func() { r.Close() })
	return l.Addr().String()
}

func mustNetworks(t testing.TB, s ...string) []netip.Prefix {
	t.Helper()
	p, err := ParseNetworks(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testSigner(t testing.TB, policy UnsignedPolicy) (*Signer, dmarcd.Key) {
	st := newStore(t)
	k := makeKey(t, st, "football.example.com", "s1", dmarcd.AlgorithmEd25519, dmarcd.KeyCurrent)
	ring, err := NewKeyring(st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{Keys: ring, Unsigned: policy}, k
}

// TestRelayAccess: never an open relay; AUTH only after STARTTLS.
func TestRelayAccess(t *testing.T) {
	sink, got := startSink(t)
	s, key := testSigner(t, UnsignedPass)
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	cert := selfSigned(t)
	addr := startRelay(t, RelayConfig{
		Signer:     s,
		Allowed:    mustNetworks(t, "192.0.2.0/24"), // not the loopback the test comes from
		Users:      Users{"joe": {Hash: hash}},
		TLS:        &tls.Config{Certificates: []tls.Certificate{cert}},
		NextHop:    sink,
		NextHopTLS: NextHopOpportunistic, // the sink has no TLS: falls back to clear text
		Hostname:   "relay.test",
	})

	// Before TLS: no AUTH offered, AUTH refused, MAIL refused.
	tp, err := textproto.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	expect := func(cmd string, code int) string {
		t.Helper()
		if cmd != "" {
			if err := tp.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
		}
		c, msg, err := tp.ReadResponse(0)
		if c/100 != code/100 || code%100 != 0 && c != code {
			t.Fatalf("%q: got %d %s (%v), want %d", cmd, c, msg, err, code)
		}
		return msg
	}
	expect("", 220)
	ehlo := expect("EHLO client.test", 250)
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO before TLS offers:\n%s\nwant STARTTLS and no AUTH", ehlo)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00joe\x00s3cret"))
	expect("AUTH PLAIN "+plain, 500) // 523 TLS is required
	expect("MAIL FROM:<joe@football.example.com>", 530)
	expect("RCPT TO:<suzie@shopping.example.net>", 500)
	expect("QUIT", 221)

	// A client of a network that is not allowed, without AUTH, over TLS.
	dialTLS := func() *smtp.Client {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := smtp.NewClientStartTLS(conn, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dialTLS()
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN" {
		t.Fatalf("after STARTTLS: AUTH %v %q, want PLAIN", ok, mechs)
	}
	if err := c.Mail("joe@football.example.com", nil); !isCode(err, 530) {
		t.Fatalf("MAIL without AUTH over TLS: %v, want 530", err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "joe", "wrong")); !isCode(err, 535) {
		t.Fatalf("AUTH with a wrong password: %v, want 535", err)
	}
	c.Close()

	// Authenticated over TLS: relayed and signed.
	c = dialTLS()
	if err := c.Auth(sasl.NewPlainClient("", "joe", "s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("joe@football.example.com", []string{"suzie@shopping.example.net"}, strings.NewReader(testMessage)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	m := receive(t, got, 10*time.Second)
	if sels := selectors(m.Data); strings.Join(sels, ",") != "s1" {
		t.Fatalf("relayed message has signatures %v", sels)
	}
	for _, err := range goVerify(t, m.Data, recordsOf(key)) {
		if err != nil {
			t.Fatalf("relayed signature: %v", err)
		}
	}
	if len(m.To) != 1 || m.From != "joe@football.example.com" {
		t.Fatalf("envelope %q -> %q", m.From, m.To)
	}
}

func isCode(err error, code int) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code == code
}

// TestRelayLimits: the allowed network relays without AUTH; a message over
// the size bound and mail without a key under the refuse policy are refused.
func TestRelayLimits(t *testing.T) {
	sink, got := startSink(t)
	s, _ := testSigner(t, UnsignedRefuse)
	addr := startRelay(t, RelayConfig{
		Signer: s, Allowed: mustNetworks(t, "127.0.0.0/8", "::1"), NextHop: sink, NextHopTLS: NextHopNoTLS,
		MaxMessageBytes: 4096,
	})
	send := func(from, msg string) error {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c := smtp.NewClient(conn)
		defer c.Close()
		return c.SendMail(from, []string{"suzie@shopping.example.net"}, strings.NewReader(msg))
	}
	if err := send("joe@football.example.com", testMessage); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, got, 10*time.Second); len(selectors(m.Data)) != 1 {
		t.Fatal("not signed")
	}
	big := testMessage + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 80)
	if err := send("joe@football.example.com", big); !isCode(err, 552) {
		t.Fatalf("a message over the bound: %v, want 552", err)
	}
	other := strings.Replace(testMessage, "joe@football.example.com>", "joe@elsewhere.example>", 1)
	if err := send("joe@elsewhere.example", other); !isCode(err, 550) {
		t.Fatalf("no key, refuse policy: %v, want 550", err)
	}
	select {
	case m := <-got:
		t.Fatalf("the sink received a refused message: %s", m.Data)
	case <-time.After(100 * time.Millisecond):
	}
}

// swaks sends a message through an SMTP server.
func swaks(t testing.TB, server, subject string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(server)
	out, err := exec.Command(testserver.Need(t, "/usr/bin/swaks", "swaks"),
		"--server", host, "--port", port,
		"--from", "joe@football.example.com", "--to", "suzie@shopping.example.net",
		"--header", "From: Joe SixPack <joe@football.example.com>",
		"--header", "Subject: "+subject,
		"--body", "We lost the game.  Are you hungry yet?",
		"--timeout", "30").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
}

// rotationStage sets the store to one stage of a rotation and says which
// signatures delivered mail must carry.
type rotationStage struct {
	name string
	move func(t testing.TB)
	want string // selectors, in header order
}

// rotation returns the stages of an RSA rotation from s1 to s2 in st, and
// the records to verify with.
func rotation(t testing.TB, domain string) (*Keyring, []rotationStage, map[string]string) {
	st := newStore(t)
	old := makeKey(t, st, domain, "s1", dmarcd.AlgorithmRSA, dmarcd.KeyCurrent)
	next, err := st.Generate(keystoreGen(domain, "s2"))
	if err != nil {
		t.Fatal(err)
	}
	records := recordsOf(old, next)
	ring, err := NewKeyring(st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	stages := []rotationStage{
		{"one key", func(testing.TB) {}, "s1"},
		{"two keys during the rotation", func(t testing.TB) { moveTo(t, st, next, dmarcd.KeySigning) }, "s2,s1"},
		{"new key only after retiring the old", func(t testing.TB) {
			k, _ := st.Get(domain, "s2")
			moveTo(t, st, k, dmarcd.KeyCurrent)
		}, "s2"},
	}
	return ring, stages, records
}

// TestRelayRotationSwaks: swaks -> relay -> sink at each stage of a
// rotation.
func TestRelayRotationSwaks(t *testing.T) {
	testserver.Need(t, "/usr/bin/swaks", "swaks")
	needDKIMPy(t)
	sink, got := startSink(t)
	ring, stages, records := rotation(t, "football.example.com")
	addr := startRelay(t, RelayConfig{
		Signer: &Signer{Keys: ring, Unsigned: UnsignedRefuse}, Allowed: mustNetworks(t, "127.0.0.1/32"),
		NextHop: sink, NextHopTLS: NextHopNoTLS,
	})
	for _, stage := range stages {
		stage.move(t)
		swaks(t, addr, stage.name)
		m := receive(t, got, 20*time.Second)
		checkDelivered(t, stage, m.Data, records)
	}
}

// checkDelivered checks the signatures of a delivered message.
func checkDelivered(t testing.TB, stage rotationStage, msg []byte, records map[string]string) {
	t.Helper()
	if got := strings.Join(selectors(msg), ","); sortedSel(got) != sortedSel(stage.want) {
		t.Fatalf("%s: signatures %s, want %s\n%s", stage.name, got, stage.want, msg)
	}
	for i, err := range goVerify(t, msg, records) {
		if err != nil {
			t.Errorf("%s: go-msgauth: signature %d: %v", stage.name, i, err)
		}
	}
	for i, ok := range dkimpyVerify(t, msg, records) {
		if !ok {
			t.Errorf("%s: dkimpy: signature %d fails", stage.name, i)
		}
	}
}

func sortedSel(s string) string {
	parts := strings.Split(s, ",")
	if len(parts) == 2 && parts[0] > parts[1] {
		parts[0], parts[1] = parts[1], parts[0]
	}
	return strings.Join(parts, ",")
}
