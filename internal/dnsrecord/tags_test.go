package dnsrecord

import (
	"fmt"
	"strings"
	"testing"
)

func TestScanTags(t *testing.T) {
	cases := []struct {
		list     string
		fold     bool
		tags     string // name=value|...
		problems string // kind@index ...
	}{
		{"a=1", false, "a=1", ""},
		{"a=1;", false, "a=1", ""},
		{" a = 1 ;\tb=x y  z\t; c=", false, "a=1|b=x y  z|c=", ""},
		{"a=1;;b=2", false, "a=1|b=2", "empty@1"},
		{";a=1", false, "a=1", "empty@0"},
		{"a=1; ", false, "a=1", ""}, // white space after the final ";": verifiers take it
		{"a=1;;", false, "a=1", "empty@1"},
		{"", false, "", "empty@0"},
		{"a=1; junk", false, "a=1", "no-value@1"},
		{"a=1; A=2", false, "a=1|A=2", ""},
		{"a=1; A=2", true, "a=1|a=2", "duplicate@1"},
		{"a=1; b=2; a=3", false, "a=1|b=2|a=3", "duplicate@2"},
		{"1a=1; _b=2; a-b=3; a_b9=4", false, "1a=1|_b=2|a-b=3|a_b9=4", "bad-name@0 bad-name@1 bad-name@2"},
		{"=1", false, "=1", "bad-name@0"},
		{"a=x\x00y; b=caf\u00e9; c=\x7f", false, "a=x\x00y|b=caf\u00e9|c=\x7f", "bad-value@0 bad-value@1 bad-value@2"},
		{"a=b=c", false, "a=b=c", ""}, // "=" is a VALCHAR
	}
	for _, c := range cases {
		tags, problems := ScanTags(c.list, TagOptions{FoldCase: c.fold})
		var ts, ps []string
		for _, tag := range tags {
			ts = append(ts, tag.Name+"="+tag.Value)
		}
		for _, p := range problems {
			ps = append(ps, fmt.Sprintf("%s@%d", p.Kind, p.Index))
		}
		if strings.Join(ts, "|") != c.tags || strings.Join(ps, " ") != c.problems {
			t.Errorf("ScanTags(%q, fold %v) = %q, %q; want %q, %q", c.list, c.fold, ts, ps, c.tags, c.problems)
		}
		if _, err := ParseTags(c.list); !c.fold && (err == nil) != (c.problems == "") {
			t.Errorf("ParseTags(%q): %v", c.list, err)
		}
	}
	if _, err := ParseTags("v=DKIM1; p=a; p=b"); err == nil || !strings.Contains(err.Error(), "RFC 6376 §3.2") {
		t.Errorf("ParseTags of a duplicate: %v; want an error citing RFC 6376 §3.2", err)
	}
}

func FuzzTags(f *testing.F) {
	for _, s := range []string{"a=1", "v=DKIM1; k=rsa; p=AAAA", ";a=1;;b", " a = 1 ; b=2 3 ;", "A=1; a=2", "1=2=3;=;;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		tags, problems := ScanTags(list, TagOptions{})
		folded, _ := ScanTags(list, TagOptions{FoldCase: true})
		if len(folded) != len(tags) {
			t.Fatalf("%q: %d tags folded, %d not", list, len(folded), len(tags))
		}
		for i, tag := range tags {
			if tag.Value != trimFWS(tag.Value) || tag.Name != trimFWS(tag.Name) || strings.Contains(tag.Name, "=") || strings.Contains(tag.Value+tag.Name, ";") {
				t.Fatalf("%q: tag %q=%q", list, tag.Name, tag.Value)
			}
			if folded[i].Name != strings.ToLower(tag.Name) {
				t.Fatalf("%q: folded %q", list, folded[i].Name)
			}
		}
		strict, err := ParseTags(list)
		if (err == nil) != (len(problems) == 0) || err == nil && len(strict) != len(tags) {
			t.Fatalf("%q: ParseTags %v, ScanTags problems %v", list, err, problems)
		}
		if err != nil {
			return
		}
		// A valid list written again is valid, with the same tags.
		var parts []string
		for _, tag := range tags {
			parts = append(parts, tag.Name+"="+tag.Value)
		}
		again, err := ParseTags(strings.Join(parts, "; "))
		if err != nil || len(again) != len(tags) {
			t.Fatalf("%q written again: %v", list, err)
		}
		for i := range again {
			if again[i].Name != tags[i].Name || again[i].Value != tags[i].Value {
				t.Fatalf("%q written again: %+v; want %+v", list, again[i], tags[i])
			}
		}
	})
}
