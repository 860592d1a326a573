package signer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

// needDKIMPy checks that /usr/bin/python3 has dkimpy (python3-dkim).
func needDKIMPy(t testing.TB) {
	t.Helper()
	py := testserver.Need(t, "/usr/bin/python3", "python3")
	if out, err := exec.Command(py, "-c", "import dkim").CombinedOutput(); err != nil {
		testserver.Missing(t, "dkimpy is missing (apt-get install python3-dkim): %v: %s", err, out)
	}
}

// dkimpyVerify runs dkimpy over msg with records (record name -> TXT value)
// as its DNS and returns one result per DKIM-Signature, in header order.
const dkimpyScript = `
import dkim, json, sys
msg = open(sys.argv[1], 'rb').read()
records = json.load(open(sys.argv[2]))
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    v = records.get(name.rstrip('.').lower())
    return v.encode() if v is not None else None
d = dkim.DKIM(msg)
n = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
out = []
for i in range(n):
    try:
        out.append(bool(dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)))
    except Exception as e:
        out.append(False)
print(json.dumps(out))
`

func dkimpyVerify(t testing.TB, msg []byte, records map[string]string) []bool {
	t.Helper()
	dir := t.TempDir()
	msgPath, recPath := filepath.Join(dir, "msg.eml"), filepath.Join(dir, "records.json")
	if err := os.WriteFile(msgPath, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(records)
	if err := os.WriteFile(recPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", "-c", dkimpyScript, msgPath, recPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy: %v: %s", err, stderr.String())
	}
	var res []bool
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("dkimpy output %q: %v", out, err)
	}
	return res
}

// goVerify verifies msg with go-msgauth and records as DNS; it returns one
// result per DKIM-Signature, in header order (nil: it verifies).
func goVerify(t testing.TB, msg []byte, records map[string]string) []error {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if v, ok := records[strings.ToLower(strings.TrimSuffix(name, "."))]; ok {
				return []string{v}, nil
			}
			return nil, fmt.Errorf("no record at %s", name)
		},
	})
	if err != nil {
		t.Fatalf("go-msgauth: %v", err)
	}
	out := make([]error, len(vs))
	for i, v := range vs {
		out[i] = v.Err
	}
	return out
}

// signatureTags returns the tags of each DKIM-Signature of msg, in order.
func signatureTags(msg []byte) []map[string]string {
	hdr, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	var out []map[string]string
	for _, f := range parseHeader(hdr) {
		if !strings.EqualFold(f.name, "DKIM-Signature") {
			continue
		}
		tags := map[string]string{}
		for _, part := range strings.Split(f.value, ";") {
			name, value, ok := strings.Cut(part, "=")
			if ok {
				tags[strings.TrimSpace(name)] = strings.Join(strings.Fields(value), "")
			}
		}
		out = append(out, tags)
	}
	return out
}

// selectors returns the s= tags of msg's signatures, in order.
func selectors(msg []byte) []string {
	var out []string
	for _, tags := range signatureTags(msg) {
		out = append(out, tags["s"])
	}
	return out
}

// recordsOf maps the record names of keys to their TXT values.
func recordsOf(keys ...dmarcd.Key) map[string]string {
	m := map[string]string{}
	for _, k := range keys {
		m[k.RecordName()] = k.TXT()
	}
	return m
}

// newStore makes a key store in a temporary folder.
func newStore(t testing.TB) *keystore.Store {
	t.Helper()
	s, err := keystore.Open(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// makeKey generates a key and moves it to state.
func makeKey(t testing.TB, s *keystore.Store, domain, selector, alg string, state dmarcd.KeyState) dmarcd.Key {
	t.Helper()
	k, err := s.Generate(keystore.GenerateOptions{Domain: domain, Selector: selector, Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	return moveTo(t, s, k, state)
}

func moveTo(t testing.TB, s *keystore.Store, k dmarcd.Key, state dmarcd.KeyState) dmarcd.Key {
	t.Helper()
	for k.State != state {
		next := k.State.Next()
		if state == dmarcd.KeyRetired && k.State == dmarcd.KeyPublished {
			next = dmarcd.KeyRetired
		}
		moves, err := s.Transition(k.Domain, k.Selector, next)
		if err != nil {
			t.Fatal(err)
		}
		k = moves[len(moves)-1].Key
	}
	return k
}

func keystoreGen(domain, selector string) keystore.GenerateOptions {
	return keystore.GenerateOptions{Domain: domain, Selector: selector, Algorithm: dmarcd.AlgorithmRSA}
}
