package aggregate

import (
	"encoding/xml"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd"
)

// metadata reads <report_metadata>, RFC 9990 §3.1.1 (RFC 7489 Appendix C
// ReportMetadataType).
func (d *Decoder) metadata() error {
	m := &d.report.Metadata
	var hasOrg, hasEmail, hasID, hasRange bool
	for {
		el, ok, err := d.child("report_metadata")
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch local(el) {
		case "org_name":
			hasOrg = true
			m.OrgName, err = d.str(el)
		case "email":
			hasEmail = true
			m.Email, err = d.str(el)
		case "extra_contact_info":
			m.ExtraContactInfo, err = d.str(el)
		case "report_id":
			hasID = true
			m.ReportID, err = d.str(el)
		case "date_range":
			hasRange = true
			if err = d.dateRange(); err != nil {
				err = fmt.Errorf("<date_range>: %w", err)
			}
		case "error":
			err = repeated(d, &m.Errors, "error", func() (string, error) { return d.str(el) })
		case "generator": // RFC 9990
			m.Generator, err = d.str(el)
		default:
			err = d.unknown(el)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case !hasID:
		return fmt.Errorf("missing <report_id>")
	case m.ReportID == "":
		return fmt.Errorf("empty <report_id>")
	case m.OrgName == "" && m.Email == "":
		// Reporter() names the report by one or the other.
		return fmt.Errorf("neither <org_name> nor <email> names the reporter")
	case !hasRange:
		return fmt.Errorf("missing <date_range>")
	}
	if !hasOrg {
		d.tolerate("missing:org_name")
	} else if m.OrgName == "" {
		d.tolerate("empty:org_name")
	}
	if !hasEmail {
		d.tolerate("missing:email")
	} else if m.Email == "" {
		d.tolerate("empty:email")
	}
	return nil
}

// dateRange reads <date_range>: begin and end in seconds since the epoch,
// UTC (RFC 9990 §3.1.1, DateRangeType).
func (d *Decoder) dateRange() error {
	m := &d.report.Metadata
	var hasBegin, hasEnd bool
	for {
		el, ok, err := d.child("date_range")
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		var t *time.Time
		switch local(el) {
		case "begin":
			hasBegin, t = true, &m.DateBegin
		case "end":
			hasEnd, t = true, &m.DateEnd
		default:
			if err := d.unknown(el); err != nil {
				return err
			}
			continue
		}
		v, err := d.text(el)
		if err != nil {
			return err
		}
		if *t, err = d.unixTime(local(el), v); err != nil {
			return fmt.Errorf("%s: %w", local(el), err)
		}
	}
	switch {
	case !hasBegin:
		return fmt.Errorf("missing <begin>")
	case !hasEnd:
		return fmt.Errorf("missing <end>")
	case m.DateEnd.Before(m.DateBegin):
		d.tolerate("end-before-begin")
	}
	return nil
}

// policy reads <policy_published>, RFC 9990 §3.1.2 (RFC 7489 Appendix C
// PolicyPublishedType).
func (d *Decoder) policy() error {
	p := &d.report.Policy
	p.Pct = dmarcd.PctAbsent
	var hasDomain, hasP bool
	for {
		el, ok, err := d.child("policy_published")
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch local(el) {
		case "domain":
			hasDomain = true
			p.Domain, err = d.str(el)
		case "adkim":
			p.ADKIM, err = d.enum(el, alignmentModes)
		case "aspf":
			p.ASPF, err = d.enum(el, alignmentModes)
		case "p":
			hasP = true
			p.P, err = d.enum(el, policyValues)
		case "sp":
			p.SP, err = d.enum(el, policyValues)
		case "np": // RFC 9989 §4.7
			p.NP, err = d.enum(el, policyValues)
		case "pct": // RFC 7489 §6.3; gone from RFC 9989
			p.Pct, err = d.pct(el)
		case "fo":
			p.FO, err = d.str(el)
		case "testing": // RFC 9989 t= tag
			p.Testing, err = d.enum(el, testingValues)
		case "discovery_method": // RFC 9990
			p.DiscoveryMethod, err = d.enum(el, discoveryMethods)
		default:
			err = d.unknown(el)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case !hasDomain:
		return fmt.Errorf("missing <domain>")
	case p.Domain == "":
		return fmt.Errorf("empty <domain>")
	case !hasP:
		d.tolerate("missing:p")
	}
	return nil
}

// recordParts notes which parts of a record were seen.
type recordParts struct {
	row, sourceIP, count, policy, identifiers, headerFrom, auth bool
}

// parseRecord reads the children of <record>, RFC 9990 §3.1.3 (RecordType):
// row, identifiers, auth_results and extensions. It also takes the children
// of <row> and <identifiers> where a reporter left out the wrapper.
func (d *Decoder) parseRecord() (*dmarcd.Record, error) {
	rec := &dmarcd.Record{}
	var seen recordParts
	for {
		el, ok, err := d.child("record")
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch name := local(el); name {
		case "row":
			seen.row = true
			err = d.row(rec, &seen)
			if err != nil {
				err = fmt.Errorf("<row>: %w", err)
			}
		case "identifiers", "identities":
			if name == "identities" {
				d.tolerate("identities-for-identifiers")
			}
			seen.identifiers = true
			if err = d.identifiers(rec, &seen); err != nil {
				err = fmt.Errorf("<%s>: %w", name, err)
			}
		case "auth_results":
			seen.auth = true
			if err = d.authResults(rec); err != nil {
				err = fmt.Errorf("<auth_results>: %w", err)
			}
		case "source_ip", "count", "policy_evaluated":
			d.tolerate("missing:row")
			err = d.rowElement(el, rec, &seen)
		case "header_from", "envelope_from", "envelope_to":
			d.tolerate("missing:identifiers")
			err = d.identifier(el, rec, &seen)
		case "extensions":
			err = d.extensions(&rec.Extensions)
		default:
			// RFC 9990 §3 RecordType: <xs:any processContents="lax"> after
			// auth_results, an extension of the record.
			err = d.keepExtension(&rec.Extensions, el)
		}
		if err != nil {
			return nil, err
		}
	}
	if !seen.sourceIP {
		d.tolerate("missing:source_ip")
	}
	if !seen.count {
		d.tolerate("missing:count")
	}
	if !seen.policy {
		d.tolerate("missing:policy_evaluated")
	}
	if !seen.headerFrom {
		d.tolerate("missing:header_from")
	}
	if !seen.auth {
		d.tolerate("missing:auth_results")
	}
	return rec, nil
}

// row reads <row>: source_ip, count, policy_evaluated.
func (d *Decoder) row(rec *dmarcd.Record, seen *recordParts) error {
	for {
		el, ok, err := d.child("row")
		if err != nil || !ok {
			return err
		}
		switch local(el) {
		case "source_ip", "count", "policy_evaluated":
			err = d.rowElement(el, rec, seen)
		case "identifiers", "identities":
			d.tolerate("identifiers-in-row")
			seen.identifiers = true
			err = d.identifiers(rec, seen)
		default:
			err = d.unknown(el)
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) rowElement(el xml.StartElement, rec *dmarcd.Record, seen *recordParts) error {
	switch local(el) {
	case "source_ip":
		seen.sourceIP = true
		v, err := d.text(el)
		if err != nil {
			return err
		}
		rec.SourceIP = d.sourceIP(v)
		return d.account(len(rec.SourceIP))
	case "count":
		seen.count = true
		v, err := d.text(el)
		if err != nil {
			return err
		}
		if rec.Count, err = d.count(v); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		return nil
	default: // policy_evaluated
		seen.policy = true
		if err := d.policyEvaluated(rec); err != nil {
			return fmt.Errorf("<policy_evaluated>: %w", err)
		}
		return nil
	}
}

// policyEvaluated reads <policy_evaluated>: the disposition applied, the
// DMARC-aligned DKIM and SPF results, and the reasons for an override
// (RFC 9990 §3.1.3, PolicyEvaluatedType).
func (d *Decoder) policyEvaluated(rec *dmarcd.Record) error {
	for {
		el, ok, err := d.child("policy_evaluated")
		if err != nil || !ok {
			return err
		}
		switch local(el) {
		case "disposition":
			rec.Disposition, err = d.enum(el, dispositions)
			if err == nil && rec.Disposition == "" {
				d.tolerate("empty:disposition")
			}
		case "dkim":
			rec.DKIM, err = d.enum(el, alignedResults)
		case "spf":
			rec.SPF, err = d.enum(el, alignedResults)
		case "reason":
			err = repeated(d, &rec.Reasons, "reason", d.reason)
		default:
			err = d.unknown(el)
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) reason() (dmarcd.PolicyOverride, error) {
	var r dmarcd.PolicyOverride
	for {
		el, ok, err := d.child("reason")
		if err != nil || !ok {
			return r, err
		}
		switch local(el) {
		case "type":
			r.Type, err = d.enum(el, overrideTypes)
		case "comment":
			r.Comment, err = d.str(el)
		default:
			err = d.unknown(el)
		}
		if err != nil {
			return r, err
		}
	}
}

// identifiers reads <identifiers> (IdentifierType).
func (d *Decoder) identifiers(rec *dmarcd.Record, seen *recordParts) error {
	for {
		el, ok, err := d.child("identifiers")
		if err != nil || !ok {
			return err
		}
		switch local(el) {
		case "header_from", "envelope_from", "envelope_to":
			err = d.identifier(el, rec, seen)
		default:
			err = d.unknown(el)
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) identifier(el xml.StartElement, rec *dmarcd.Record, seen *recordParts) (err error) {
	switch local(el) {
	case "header_from":
		seen.headerFrom = true
		rec.HeaderFrom, err = d.str(el)
	case "envelope_from":
		rec.EnvelopeFrom, err = d.str(el)
	default:
		rec.EnvelopeTo, err = d.str(el)
	}
	return err
}

// authResults reads <auth_results>: DKIM and SPF results as the receiver
// found them, not interpreted by DMARC (RFC 9990 §3.1.3, AuthResultType).
func (d *Decoder) authResults(rec *dmarcd.Record) error {
	for {
		el, ok, err := d.child("auth_results")
		if err != nil || !ok {
			return err
		}
		switch name := local(el); name {
		case "dkim":
			err = repeated(d, &rec.DKIMResults, "dkim", d.dkimResult)
		case "spf":
			err = repeated(d, &rec.SPFResults, "spf", d.spfResult)
		default:
			err = d.unknown(el)
		}
		if err != nil {
			return err
		}
	}
}

// dkimResult reads one <dkim> of <auth_results> (DKIMAuthResultType).
func (d *Decoder) dkimResult() (dmarcd.DKIMResult, error) {
	var r dmarcd.DKIMResult
	for {
		el, ok, err := d.child("dkim")
		if err != nil || !ok {
			return r, err
		}
		switch local(el) {
		case "domain":
			r.Domain, err = d.str(el)
		case "selector":
			r.Selector, err = d.str(el)
		case "result":
			r.Result, err = d.enum(el, dkimResults)
		case "human_result":
			r.HumanResult, err = d.str(el)
		default:
			err = d.unknown(el)
		}
		if err != nil {
			return r, err
		}
	}
}

// spfResult reads one <spf> of <auth_results> (SPFAuthResultType).
func (d *Decoder) spfResult() (dmarcd.SPFResult, error) {
	var r dmarcd.SPFResult
	for {
		el, ok, err := d.child("spf")
		if err != nil || !ok {
			return r, err
		}
		switch local(el) {
		case "domain":
			r.Domain, err = d.str(el)
		case "scope":
			r.Scope, err = d.enum(el, spfScopes)
		case "result":
			r.Result, err = d.enum(el, spfResults)
		case "human_result":
			r.HumanResult, err = d.str(el)
		default:
			err = d.unknown(el)
		}
		if err != nil {
			return r, err
		}
	}
}

// repeated reads one more element of a repeatable kind (named name) with
// read and appends it to list, unless it is empty (the zero value) or the
// parent already holds MaxRepeats of them: then the element is skipped
// and the toleration "excess:<name>" noted. An error names the element.
func repeated[T comparable](d *Decoder, list *[]T, name string, read func() (T, error)) error {
	if len(*list) >= MaxRepeats {
		d.tolerate("excess:" + name)
		return d.skip()
	}
	v, err := read()
	if err != nil {
		return fmt.Errorf("<%s>: %w", name, err)
	}
	var zero T
	if v != zero {
		*list = append(*list, v)
	}
	return nil
}
