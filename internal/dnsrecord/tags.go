package dnsrecord

import (
	"fmt"
	"strings"
)

// A tag-list is the syntax of DKIM key records and signatures, and of
// DMARC records (RFC 6376 §3.2, taken over by RFC 7489 §6.4 and RFC 9989
// §4.7):
//
//	tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
//	tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//	tag-name  = ALPHA *ALNUMPUNC
//	tag-value = [ tval *( 1*(WSP / FWS) tval ) ]
//	tval      = 1*VALCHAR
//	VALCHAR   = %x21-3A / %x3C-7E   ; visible ASCII but ";"
//	ALNUMPUNC = ALPHA / DIGIT / "_"
//
// So a list starts with a tag-spec: a leading ";" is an empty tag-spec and
// makes the list invalid, as does ";;" inside it; one ";" may end it.
// White space after that final ";" is taken, though the grammar has no
// place for it: verifiers take it (dkimpy strips the list before it
// splits it, OpenDKIM skips it), and publishers write "p=KEY; " often
// enough that refusing it would call working keys broken. Folding white space
// (FWS) is read as any run of space, tab, CR and LF: a TXT record holds
// no line breaks in practice.

// Tag is one tag-spec of a tag-list.
type Tag struct {
	// Index is the position of the tag-spec in the list, from 0.
	Index int
	// Name is the tag-name; in lower case when the list is read with
	// TagOptions.FoldCase.
	Name string
	// Value is the tag-value without the white space around it; white
	// space inside is kept (RFC 6376 §3.2: a tag's description says when
	// it does not count).
	Value string
}

// TagProblemKind says what is wrong with a tag-spec.
type TagProblemKind string

// The kinds of TagProblem.
const (
	// TagEmpty: a tag-spec with nothing in it (a leading ";" or ";;").
	TagEmpty TagProblemKind = "empty"
	// TagNoValue: a tag-spec without "=".
	TagNoValue TagProblemKind = "no-value"
	// TagBadName: the tag-name is not ALPHA *ALNUMPUNC.
	TagBadName TagProblemKind = "bad-name"
	// TagBadValue: the tag-value holds an octet that is not VALCHAR or
	// white space.
	TagBadValue TagProblemKind = "bad-value"
	// TagDuplicate: the tag-name appeared before; RFC 6376 §3.2 makes the
	// whole tag-list invalid.
	TagDuplicate TagProblemKind = "duplicate"
)

// TagProblem is a tag-spec that breaks the syntax of RFC 6376 §3.2. As an
// error it says what is wrong and cites the rule.
type TagProblem struct {
	Kind TagProblemKind
	// Index is the position of the tag-spec in the list, from 0.
	Index int
	// Text is the tag-spec as written, without the white space around it.
	Text string
	// Name is the tag-name, "" for TagEmpty and TagNoValue.
	Name string
}

func (p TagProblem) Error() string {
	switch p.Kind {
	case TagEmpty:
		return fmt.Sprintf("tag-spec %d is empty (a leading \";\" or \";;\"): a tag-list is tag-spec *(\";\" tag-spec) [\";\"] (RFC 6376 §3.2)", p.Index+1)
	case TagNoValue:
		return fmt.Sprintf("%q is not a tag=value pair (RFC 6376 §3.2)", p.Text)
	case TagBadName:
		return fmt.Sprintf("%q is not a tag name: a letter, then letters, digits or \"_\" (RFC 6376 §3.2)", p.Name)
	case TagBadValue:
		return fmt.Sprintf("the value of %s= holds a character a tag value may not hold: visible ASCII but \";\", with white space only between (RFC 6376 §3.2)", p.Name)
	case TagDuplicate:
		return fmt.Sprintf("the tag %s appears twice, which makes the record invalid (RFC 6376 §3.2)", p.Name)
	}
	return fmt.Sprintf("tag-spec %q: %s", p.Text, p.Kind)
}

// TagOptions say how a tag-list is read.
type TagOptions struct {
	// FoldCase compares tag names without case and returns them in lower
	// case. DKIM tags are case-sensitive (RFC 6376 §3.2); DMARC's are
	// quoted strings of its ABNF, which match any case (RFC 5234 §2.3,
	// RFC 7489 §6.4).
	FoldCase bool
}

// ScanTags reads a tag-list and reports what breaks RFC 6376 §3.2 instead
// of stopping at it: the tags are all the tag-specs with "=", in list
// order, duplicates and bad names or values included; the problems are in
// list order too. A DMARC reader turns the problems into findings, since
// receivers differ in how they take them.
func ScanTags(list string, opts TagOptions) ([]Tag, []TagProblem) {
	var tags []Tag
	var problems []TagProblem
	seen := map[string]bool{}
	parts := strings.Split(list, ";")
	for i, part := range parts {
		if i == len(parts)-1 && i > 0 && trimFWS(part) == "" {
			break // the optional ";" at the end, and white space after it
		}
		text := trimFWS(part)
		if text == "" {
			problems = append(problems, TagProblem{Kind: TagEmpty, Index: i})
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		if !ok {
			problems = append(problems, TagProblem{Kind: TagNoValue, Index: i, Text: text})
			continue
		}
		name, value = trimFWS(name), trimFWS(value)
		if opts.FoldCase {
			name = strings.ToLower(name)
		}
		if !validTagName(name) {
			problems = append(problems, TagProblem{Kind: TagBadName, Index: i, Text: text, Name: name})
		}
		if !validTagValue(value) {
			problems = append(problems, TagProblem{Kind: TagBadValue, Index: i, Text: text, Name: name})
		}
		if seen[name] {
			problems = append(problems, TagProblem{Kind: TagDuplicate, Index: i, Text: text, Name: name})
		}
		seen[name] = true
		tags = append(tags, Tag{Index: i, Name: name, Value: value})
	}
	return tags, problems
}

// ParseTags reads a tag-list as DKIM does: case-sensitive names, and any
// problem, the first of which it returns, makes the whole list invalid
// (RFC 6376 §3.2).
func ParseTags(list string) ([]Tag, error) {
	tags, problems := ScanTags(list, TagOptions{})
	if len(problems) > 0 {
		return nil, problems[0]
	}
	return tags, nil
}

// isFWS reports whether c is folding white space (see the syntax above).
func isFWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func trimFWS(s string) string { return strings.Trim(s, " \t\r\n") }

// removeFWS drops all white space, for the values whose syntax allows it
// anywhere (the base64 of p=, RFC 6376 §3.6.1) or around their separators
// (the colon-separated lists of h=, s= and t=).
func removeFWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && isFWS(byte(r)) {
			return -1
		}
		return r
	}, s)
}

// validTagName: ALPHA *ALNUMPUNC (RFC 6376 §3.2).
func validTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlpha(s[i]) && !isDigit(s[i]) && s[i] != '_' {
			return false
		}
	}
	return true
}

// validTagValue: VALCHAR runs with white space between (RFC 6376 §3.2);
// the white space around is already trimmed.
func validTagValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isFWS(c) && (c < 0x21 || c > 0x7e || c == ';') {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
