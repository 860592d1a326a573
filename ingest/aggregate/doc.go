// Package aggregate decodes DMARC aggregate feedback reports: the XML
// documents that receivers send to the rua= addresses of a DMARC record
// (RFC 7489 §7.2 and Appendix C; RFC 9990 §3 with namespace
// urn:ietf:params:xml:ns:dmarc-2.0; the drafts' http://dmarc.org/dmarc-xml/
// namespaces; no namespace at all).
//
// The input is the XML itself; mail, zip and gzip are unpacked elsewhere.
// A Decoder streams: Header reads the report up to its first <record>, and
// Next returns one record at a time, so that memory stays bounded whatever
// the number of records. Every size is limited by a named constant (see
// MaxRecordsPerReport and those after it).
//
// The XML is read by a scanner of the package's own, which takes the
// regular XML that reports are made of about five times as fast as
// encoding/xml; from anything else on (a DOCTYPE, a converted charset, XML
// that is not well-formed) encoding/xml reads the rest, with the same
// results: Fallbacks counts how often (see scanner.go).
//
// # Leniency
//
// The decoder is lenient where real reporters break the schema and a careful
// reader can still tell what they meant. Each deviation it accepts is
// recorded once in AggregateReport.Tolerations as a short code, so that a
// user can see which reporter sends what:
//
//   - The bytes: "bom" (a UTF-8 byte-order mark), "charset:<name>" (a
//     declared windows-1252, iso-8859-1, ... or UTF-16 document, converted),
//     "charset-mismatch:<name>" (UTF-8 text declared as an 8-bit charset,
//     read as UTF-8), "charset-ignored" (a declaration not at the start,
//     or naming UTF-16 without being UTF-16), "invalid-utf8"
//     and "invalid-xml-char" (replaced by U+FFFD), "bare-ampersand" (an '&'
//     that starts no reference, kept as text), "html-entity" (&nbsp; and
//     the like, decoded). A document without an XML declaration is normal.
//   - The structure: "wrapper:<element>" (<feedback> inside another
//     element), "unclosed:<element>" (the document ends, after complete
//     records, before the element's end tag), "truncated" (it ends within
//     a tag between records), "trailing-data" (after </feedback>, not
//     read), "text-in:<element>" and "child-in:<element>" (stray text or
//     elements, ignored), "unknown:<element>" (skipped),
//     "unknown-namespace", "duplicate:report_metadata" and
//     "duplicate:policy_published" (the second skipped),
//     "records-before-header", "excess:<element>" (beyond MaxRepeats,
//     skipped), "oversized:extension" (beyond MaxExtensionBytes, skipped).
//   - The parts: "missing:<element>" for org_name, email, p, row,
//     identifiers, source_ip, count, policy_evaluated, header_from,
//     auth_results, record; "empty:<element>" for org_name, email, pct,
//     count, source_ip, disposition; "identities-for-identifiers";
//     "identifiers-in-row".
//   - The values: "ws-in:<element>" (whitespace around a value, removed),
//     "uppercase-values" (enumerated values such as PASS or Reject, taken
//     in lower case), "unknown-value:<element>" (a value outside the
//     schema's enumeration, kept in lower case), "fraction-in:begin" and
//     "rfc3339-in:begin" (and for end), "end-before-begin", "invalid:pct"
//     (taken as absent), "invalid-ip" (a source IP kept as written),
//     "ipv4-mapped" (::ffff:192.0.2.1 taken as 192.0.2.1).
//   - "more-tolerations" ends a list of MaxTolerations codes.
//
// What cannot be read with confidence is an error: a document that is not
// an aggregate report (ErrNotAggregateReport), a report without a
// report_id, reporter (org_name or email), date range or policy domain, a
// date or a count that is not a number, malformed XML before or within the
// records, and a limit exceeded.
package aggregate
