package sqlite

import (
	"context"
	"database/sql"

	"github.com/dmarcd/dmarcd"
)

// The daily rollups (migrations/0003_rollups.sql) are tables the writer
// keeps in the transaction that stores the reports, so that a report
// counts in them once, exactly. A report's sums are held in memory until
// its Commit, then added to its group's (group.go), and the group's are
// added to the tables when the group commits, in its transaction: once per
// day, domain and source for the whole group. The reports of one domain
// and day come from several reporters and share most of their sources, and
// a small report's rollup rows cost more statements than its records
// (BENCHMARKS.md). An aborted report's sums are never added.

// MaxPendingSums bounds the rollup rows a report, or a group, holds in
// memory before it adds them to the tables, in its transaction (the
// additions sum, so writing them in parts gives the same rows): a report
// with a million sources holds no million sums.
const MaxPendingSums = 10_000

// The rollups' upserts, the heads and tails of multiInserts.
const (
	upsertDomains     = `INSERT INTO rollup_domains (day, domain, messages, dmarc_pass, dkim_aligned, spf_aligned, quarantined, rejected) VALUES`
	upsertDomainsTail = `ON CONFLICT (domain, day) DO UPDATE SET
messages = messages + excluded.messages, dmarc_pass = dmarc_pass + excluded.dmarc_pass,
dkim_aligned = dkim_aligned + excluded.dkim_aligned, spf_aligned = spf_aligned + excluded.spf_aligned,
quarantined = quarantined + excluded.quarantined, rejected = rejected + excluded.rejected`
	domainColumns = 8

	upsertSources     = `INSERT INTO rollup_sources (day, domain, source_ip, messages, dmarc_pass, dkim_aligned, spf_aligned) VALUES`
	upsertSourcesTail = `ON CONFLICT (domain, day, source_ip) DO UPDATE SET
messages = messages + excluded.messages, dmarc_pass = dmarc_pass + excluded.dmarc_pass,
dkim_aligned = dkim_aligned + excluded.dkim_aligned, spf_aligned = spf_aligned + excluded.spf_aligned`
	sourceColumns = 7

	upsertReporters     = `INSERT INTO rollup_reporters (day, domain, org_name, reports, messages) VALUES`
	upsertReportersTail = `ON CONFLICT (domain, day, org_name) DO UPDATE SET
reports = reports + excluded.reports, messages = messages + excluded.messages`
	reporterColumns = 5

	upsertSelectors     = `INSERT INTO rollup_selectors (day, domain, dkim_domain, selector, messages, passed) VALUES`
	upsertSelectorsTail = `ON CONFLICT (domain, day, dkim_domain, selector) DO UPDATE SET
messages = messages + excluded.messages, passed = passed + excluded.passed`
	selectorColumns = 6
)

// The keys of the rollups' rows.
type (
	dayDomain   struct{ day, domain string }
	sourceKey   struct{ day, domain, ip string }
	reporterKey struct{ day, domain, org string }
	selectorKey struct{ day, domain, dkimDomain, selector string }
)

type sourceSums struct{ messages, dmarcPass, dkimAligned, spfAligned int64 }

type domainSums struct {
	sourceSums
	quarantined, rejected int64
}

type reporterSums struct{ reports, messages int64 }

type selectorSums struct{ messages, passed int64 }

// rollups are sums not added to the rollup tables yet.
type rollups struct {
	domains   map[dayDomain]*domainSums
	sources   map[sourceKey]*sourceSums
	reporters map[reporterKey]*reporterSums
	selectors map[selectorKey]*selectorSums
}

func newRollups() rollups {
	return rollups{domains: map[dayDomain]*domainSums{}, sources: map[sourceKey]*sourceSums{},
		reporters: map[reporterKey]*reporterSums{}, selectors: map[selectorKey]*selectorSums{}}
}

// sum returns the sums of k in m, added when missing.
func sum[K comparable, V any](m map[K]*V, k K) *V {
	v := m[k]
	if v == nil {
		v = new(V)
		m[k] = v
	}
	return v
}

// size is the number of rows the sums will add to or change.
func (r *rollups) size() int {
	return len(r.domains) + len(r.sources) + len(r.reporters) + len(r.selectors)
}

// addRecord counts a record of the report of domain on day, as the
// daily_* views define them: DMARC passes when aligned DKIM or aligned SPF
// passes.
func (r *rollups) addRecord(day, domain string, rec *dmarcd.Record) {
	n := rec.Count
	d := sum(r.domains, dayDomain{day, domain})
	for _, s := range []*sourceSums{sum(r.sources, sourceKey{day, domain, rec.SourceIP}), &d.sourceSums} {
		s.messages += n
		if rec.DKIM == "pass" || rec.SPF == "pass" {
			s.dmarcPass += n
		}
		if rec.DKIM == "pass" {
			s.dkimAligned += n
		}
		if rec.SPF == "pass" {
			s.spfAligned += n
		}
	}
	switch rec.Disposition {
	case "quarantine":
		d.quarantined += n
	case "reject":
		d.rejected += n
	}
	for _, res := range rec.DKIMResults {
		sel := sum(r.selectors, selectorKey{day, domain, res.Domain, res.Selector})
		sel.messages += n
		if res.Result == "pass" {
			sel.passed += n
		}
	}
}

// addReport counts a report, of messages messages, from org.
func (r *rollups) addReport(day, domain, org string, messages int64) {
	rep := sum(r.reporters, reporterKey{day, domain, org})
	rep.reports++
	rep.messages += messages
}

// merge adds o's sums to r's, and empties o.
func (r *rollups) merge(o *rollups) {
	for k, v := range o.domains {
		d := sum(r.domains, k)
		d.messages, d.dmarcPass, d.dkimAligned, d.spfAligned = d.messages+v.messages, d.dmarcPass+v.dmarcPass, d.dkimAligned+v.dkimAligned, d.spfAligned+v.spfAligned
		d.quarantined, d.rejected = d.quarantined+v.quarantined, d.rejected+v.rejected
	}
	for k, v := range o.sources {
		s := sum(r.sources, k)
		s.messages, s.dmarcPass, s.dkimAligned, s.spfAligned = s.messages+v.messages, s.dmarcPass+v.dmarcPass, s.dkimAligned+v.dkimAligned, s.spfAligned+v.spfAligned
	}
	for k, v := range o.reporters {
		rep := sum(r.reporters, k)
		rep.reports, rep.messages = rep.reports+v.reports, rep.messages+v.messages
	}
	for k, v := range o.selectors {
		sel := sum(r.selectors, k)
		sel.messages, sel.passed = sel.messages+v.messages, sel.passed+v.passed
	}
	o.clear()
}

func (r *rollups) clear() {
	clear(r.domains)
	clear(r.sources)
	clear(r.reporters)
	clear(r.selectors)
}

// write adds the sums to the rollup tables in tx, RowsPerInsert rows a
// statement, and empties r.
func (r *rollups) write(ctx context.Context, tx *sql.Tx, st *statements) error {
	rows := pendingRows{ins: st.domains}
	for k, d := range r.domains {
		if err := rows.add(ctx, tx, k.day, k.domain, d.messages, d.dmarcPass, d.dkimAligned, d.spfAligned, d.quarantined, d.rejected); err != nil {
			return err
		}
	}
	if err := rows.flush(ctx, tx); err != nil {
		return err
	}
	rows = pendingRows{ins: st.sources, args: rows.args[:0]}
	for k, s := range r.sources {
		if err := rows.add(ctx, tx, k.day, k.domain, k.ip, s.messages, s.dmarcPass, s.dkimAligned, s.spfAligned); err != nil {
			return err
		}
	}
	if err := rows.flush(ctx, tx); err != nil {
		return err
	}
	rows = pendingRows{ins: st.reporters, args: rows.args[:0]}
	for k, rep := range r.reporters {
		if err := rows.add(ctx, tx, k.day, k.domain, k.org, rep.reports, rep.messages); err != nil {
			return err
		}
	}
	if err := rows.flush(ctx, tx); err != nil {
		return err
	}
	rows = pendingRows{ins: st.selectors, args: rows.args[:0]}
	for k, sel := range r.selectors {
		if err := rows.add(ctx, tx, k.day, k.domain, k.dkimDomain, k.selector, sel.messages, sel.passed); err != nil {
			return err
		}
	}
	if err := rows.flush(ctx, tx); err != nil {
		return err
	}
	r.clear()
	return nil
}
