package unpack

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/corpus"
)

// payloads walks data and returns each payload with its bytes read.
type found struct {
	kind Kind
	part string
	data []byte
}

func describeFound(fs []found) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%v at %q (%d bytes)", f.kind, f.part, len(f.data)))
	}
	return strings.Join(parts, ", ")
}

func walkAll(t testing.TB, data []byte) ([]found, error) {
	t.Helper()
	var out []found
	err := Walk(data, func(p *Payload) error {
		b, err := io.ReadAll(p.Body)
		if err != nil {
			return err
		}
		out = append(out, found{p.Kind, p.Part, b})
		return nil
	})
	return out, err
}

// TestCorpusAggregate checks that every aggregate report of the corpus is
// found at the member path EXPECTED.tsv names, and that the bytes unpacked
// are the XML the corpus's independent reader decoded (sha256_xml).
func TestCorpusAggregate(t *testing.T) {
	rows := corpus.Table(t, "EXPECTED.tsv")
	byFile := map[string][]corpus.Row{}
	var files []string
	for _, r := range rows {
		if byFile[r["file"]] == nil {
			files = append(files, r["file"])
		}
		byFile[r["file"]] = append(byFile[r["file"]], r)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			got, err := walkAll(t, corpus.Read(t, file))
			if err != nil {
				t.Fatalf("Walk: %v", err)
			}
			want := byFile[file]
			if len(got) != len(want) {
				t.Fatalf("found %d payloads, want %d: %s", len(got), len(want), describeFound(got))
			}
			for i, w := range want {
				wantPart := w["member"]
				if wantPart == "." {
					wantPart = ""
				}
				wantPart = strings.ReplaceAll(wantPart, "<EMPTY-MEMBER-NAME>", "")
				if got[i].part != wantPart {
					t.Errorf("payload %d at %q, want %q", i, got[i].part, wantPart)
				}
				if got[i].kind != Aggregate {
					t.Errorf("payload %d is %v, want aggregate", i, got[i].kind)
				}
				sum := sha256.Sum256(got[i].data)
				if hex.EncodeToString(sum[:]) != w["sha256_xml"] {
					t.Errorf("payload %d: sha256 of the unpacked XML differs from the corpus's", i)
				}
			}
		})
	}
}

func TestCorpusOtherKinds(t *testing.T) {
	for _, file := range corpus.Files(t, "forensic") {
		t.Run(file, func(t *testing.T) {
			got, err := walkAll(t, corpus.Read(t, file))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].kind != Failure || got[0].part != "" {
				t.Fatalf("got %s, want one failure report at the top", describeFound(got))
			}
		})
	}
	for _, file := range corpus.Files(t, "tls-rpt") {
		t.Run(file, func(t *testing.T) {
			got, err := walkAll(t, corpus.Read(t, file))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].kind != TLSReport {
				t.Fatalf("got %s, want one TLS report", describeFound(got))
			}
		})
	}
	for _, file := range []string{"parsedmarc/samples/empty.xml", "dmarc-report-parser/tests/fixtures/plain.txt"} {
		t.Run(file, func(t *testing.T) {
			_, err := walkAll(t, corpus.Read(t, file))
			if !errors.Is(err, ErrNoReport) {
				t.Fatalf("got %v, want ErrNoReport", err)
			}
			t.Log(err)
		})
	}
}

const report = `<?xml version="1.0"?><feedback><report_metadata><org_name>x</org_name></report_metadata></feedback>`

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func zipOf(files map[string][]byte, order ...string) []byte {
	var out bytes.Buffer
	w := zip.NewWriter(&out)
	for _, name := range order {
		f, _ := w.Create(name)
		f.Write(files[name])
	}
	w.Close()
	return out.Bytes()
}

func mailWith(contentType, cte, body string) []byte {
	boundary := fmt.Sprintf("b%d", len(body))
	return []byte("From: reporter@example.net\r\nTo: rua@example.com\r\nSubject: Report Domain: example.com\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n--" + boundary + "\r\nContent-Type: text/plain\r\n\r\nReport-ID: 12\r\nSubmitter: x\r\n\r\n" +
		"--" + boundary + "\r\nContent-Type: text/html\r\n\r\n<div>This is a DMARC report.</div>\r\n--" + boundary + "\r\n" +
		"Content-Type: " + contentType + "\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + body + "\r\n--" + boundary + "--\r\n")
}

func b64(b []byte) string {
	var out strings.Builder
	s := base64.StdEncoding.EncodeToString(b)
	for len(s) > 60 {
		out.WriteString(s[:60] + "\r\n")
		s = s[60:]
	}
	out.WriteString(s)
	return out.String()
}

func TestContainers(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		parts []string
	}{
		{"xml", []byte(report), []string{""}},
		{"bom xml", append([]byte{0xef, 0xbb, 0xbf}, report...), []string{""}},
		{"gzip", gz([]byte(report)), []string{">gunzip"}},
		{"gzip gzip", gz(gz([]byte(report))), []string{">gunzip>gunzip"}},
		{"zip", zipOf(map[string][]byte{"r.xml": []byte(report)}, "r.xml"), []string{">zip:r.xml"}},
		{"zip of gzip", zipOf(map[string][]byte{"r.xml.gz": gz([]byte(report))}, "r.xml.gz"), []string{">zip:r.xml.gz>gunzip"}},
		{"zip with junk", zipOf(map[string][]byte{"__MACOSX/._r.xml": []byte("junk"), "r.xml": []byte(report)}, "__MACOSX/._r.xml", "r.xml"), []string{">zip:r.xml"}},
		{"mail gzip as octet-stream", mailWith("application/octet-stream", "base64", b64(gz([]byte(report)))), []string{">mime.3[application/octet-stream]>gunzip"}},
		{"mail zip mislabelled as gzip", mailWith("application/gzip", "base64", b64(zipOf(map[string][]byte{"a.xml": []byte(report)}, "a.xml"))), []string{">mime.3[application/gzip]>zip:a.xml"}},
		{"mail xml as text/plain quoted-printable", mailWith("text/plain", "quoted-printable", strings.ReplaceAll(report, "=", "=3D")), []string{">mime.3[text/plain]"}},
		{"mail forwarded", mailWith("message/rfc822", "7bit", string(mailWith("application/gzip", "base64", b64(gz([]byte(report)))))), []string{">mime.3[message/rfc822]>mime.3[application/gzip]>gunzip"}},
		{"mail whole body", []byte("From: a@example.net\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(gz([]byte(report))) + "\r\n"), []string{">mime[application/gzip]>gunzip"}},
		{"mbox From line", append([]byte("From reporter@example.net Mon Nov  2 08:00:00 2026\n"), mailWith("application/zip", "base64", b64(zipOf(map[string][]byte{"a.xml": []byte(report)}, "a.xml")))...), []string{">mime.3[application/zip]>zip:a.xml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := walkAll(t, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, f := range got {
				parts = append(parts, f.part)
				if f.kind != Aggregate || !bytes.Contains(f.data, []byte("<feedback>")) {
					t.Errorf("payload at %q: kind %v, %d bytes", f.part, f.kind, len(f.data))
				}
			}
			if fmt.Sprint(parts) != fmt.Sprint(tc.parts) {
				t.Errorf("parts %q, want %q", parts, tc.parts)
			}
		})
	}
}

func TestBounds(t *testing.T) {
	t.Run("nesting", func(t *testing.T) {
		data := []byte(report)
		for range MaxNestingDepth + 2 {
			data = gz(data)
		}
		_, err := walkAll(t, data)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxNestingDepth") {
			t.Fatalf("got %v, want the nesting bound", err)
		}
	})
	t.Run("zip members", func(t *testing.T) {
		files := map[string][]byte{}
		var names []string
		for i := range MaxZipMembers + 1 {
			name := fmt.Sprintf("r%d.xml", i)
			files[name] = []byte(report)
			names = append(names, name)
		}
		_, err := walkAll(t, zipOf(files, names...))
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxZipMembers") {
			t.Fatalf("got %v, want the zip member bound", err)
		}
	})
	t.Run("message size", func(t *testing.T) {
		err := Walk(make([]byte, MaxMessageBytes+1), func(*Payload) error { return nil })
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
	})
	t.Run("gzip bomb", func(t *testing.T) {
		if testing.Short() {
			t.Skip("decompresses 1 GiB")
		}
		// Gzip members concatenate (RFC 1952 §2.2): a report's start and 17
		// members of 64 MiB of blanks are 1.06 GiB decompressed, about 1 MB
		// compressed.
		bomb := gz([]byte("<?xml version=\"1.0\"?><feedback>"))
		member := gz(bytes.Repeat([]byte(" "), 64<<20))
		for range 17 {
			bomb = append(bomb, member...)
		}
		var n int64
		err := Walk(bomb, func(p *Payload) error {
			var err error
			n, err = io.Copy(io.Discard, p.Body)
			return err
		})
		if !errors.Is(err, ErrTooLarge) || n > MaxReportBytes {
			t.Fatalf("got %v after %d bytes, want ErrTooLarge at MaxReportBytes", err, n)
		}
	})
}

func FuzzWalk(f *testing.F) {
	for _, kind := range []string{"aggregate", "aggregate-dmarcbis", "forensic", "malformed", "tls-rpt"} {
		for _, file := range corpus.Files(f, kind) {
			f.Add(corpus.Read(f, file))
		}
	}
	f.Add(gz(gz([]byte(report))))
	f.Add(mailWith("application/gzip", "base64", b64(gz([]byte(report)))))
	f.Fuzz(func(t *testing.T, data []byte) {
		Walk(data, func(p *Payload) error {
			_, err := io.Copy(io.Discard, p.Body)
			return err
		})
	})
}
