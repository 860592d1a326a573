// Package dnsrecord owns the syntax of the DNS records dmarcd reads and
// writes: DKIM key records (RFC 6376 §3.6.1, RFC 8463), DMARC policy
// records (RFC 9989 §4.7, RFC 7489 §6.3), SPF records (RFC 7208 §4.5, §12),
// the tag-lists DKIM and DMARC records are written in (RFC 6376 §3.2), and
// the character-strings of TXT records (RFC 1035 §3.3.14) with their
// zone-file form.
//
// It is the one place where these rules live: the key store, `dmarcd
// check`, the wizard and the advisor all read records through it, so no
// two of them can judge the same record differently. It says what a record
// says and what is wrong with its syntax; what to do about a record (a key
// too weak, a policy too lax for the rollout) is the advisor's business.
//
// The parsers are strict where the RFCs are: a DKIM key record whose
// tag-list is invalid is refused, as verifiers must refuse it. DMARC
// receivers differ in how they treat a malformed record, so the DMARC
// parser reads what it can and reports the rest as findings.
package dnsrecord
