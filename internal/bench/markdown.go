package main

import (
	"fmt"
	"sort"
	"strings"
)

// markdown writes the results as Markdown tables.
func markdown(r *Results, c *config) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# dmarcd benchmark results\n\n")
	p("Run started %s, took %s%s. Machine: %s, %d cores, %.0f GB RAM; disk %s; %s, kernel %s.\n\n",
		r.Started.Format("2006-01-02 15:04 MST"), dur(r.Elapsed), map[bool]string{true: " (-quick)", false: ""}[r.Quick],
		r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryGB, r.Machine.Disk, r.Machine.OS, r.Machine.Kernel)
	var keys []string
	for k := range r.Machine.Versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p("Versions:")
	for i, k := range keys {
		sep := ","
		if i == len(keys)-1 {
			sep = "."
		}
		v := r.Machine.Versions[k]
		if v == "" {
			v = "not installed"
		}
		p(" %s %s%s", k, v, sep)
	}
	p("\n\nLoad and other heavy processes:\n")
	for _, q := range r.Quiet {
		others := "none"
		if len(q.Others) > 0 {
			others = strings.Join(q.Others, "; ")
		}
		p("- %s (%s): load average %s; others: %s\n", q.When, q.At, q.Load, others)
	}
	for _, s := range r.Skipped {
		p("- not measured: %s\n", s)
	}
	p("\n")
	if len(r.Parse) > 0 {
		parseTables(&b, r, c)
	}
	if len(r.IMAP) > 0 {
		p("## Ingest through IMAP (`dmarcd poll --once`, Dovecot, fresh SQLite store)\n\n")
		p("| messages | reports stored | records (expected) | poll min / median | messages/s | reports/s | records/s | max RSS | APPEND (setup) messages/s |\n|---|---|---|---|---|---|---|---|---|\n")
		for i := 0; i+1 < len(r.IMAP); i += 2 {
			m, a := r.IMAP[i], r.IMAP[i+1]
			lo, med := minMedian(walls(m.Runs))
			_, amed := minMedian(walls(a.Runs))
			p("| %d | %d | %d (%d) | %.2f / %.2f s | %.0f | %.0f | %.0f | %s | %.0f |\n", m.Files, m.Reports, m.Records, m.Expected, lo, med,
				float64(m.Files)/med, float64(m.Reports)/med, float64(m.Records)/med, mb(maxRSS(m.Runs)), float64(a.Files)/amed)
		}
		p("\n%d run(s) each, a fresh Dovecot and store per run.\n\n", len(r.IMAP[0].Runs))
		growth(&b, "IMAP", r.IMAP, "imap")
	}
	if len(r.Backfill) > 0 {
		p("## Backfill (`dmarcd ingest` of a folder of report mails, fresh SQLite store)\n\n")
		p("| messages | input | reports stored | records (expected) | min / median | messages/s | records/s | max RSS | |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, m := range r.Backfill {
			lo, med := minMedian(walls(m.Runs))
			p("| %d | %s | %d | %d (%d) | %.1f / %.1f s | %.0f | %.0f | %s | %s |\n", m.Files, mb(m.InputBytes), m.Reports, m.Records, m.Expected, lo, med,
				float64(m.Files)/med, float64(m.Records)/med, mb(maxRSS(m.Runs)), m.Note)
		}
		p("\n%d run(s) each.\n\n", len(r.Backfill[0].Runs))
		growth(&b, "backfill", r.Backfill, "backfill")
	}
	if len(r.Store) > 0 {
		storeTables(&b, r)
	}
	if len(r.Signer) > 0 {
		p("## Signer (`go test -bench . ./signer`)\n\n| benchmark | runs | msgs/s or sigs/s (min / median) | MB/s (median) |\n|---|---|---|---|\n")
		byName := map[string][]GoBench{}
		var names []string
		for _, s := range r.Signer {
			if byName[s.Name] == nil {
				names = append(names, s.Name)
			}
			byName[s.Name] = append(byName[s.Name], s)
		}
		for _, n := range names {
			var rate, mbs []float64
			unit := "msgs/s"
			for _, s := range byName[n] {
				if v, ok := s.Metrics["msgs/s"]; ok {
					rate = append(rate, v)
				} else if v, ok := s.Metrics["sigs/s"]; ok {
					rate = append(rate, v)
					unit = "sigs/s"
				}
				mbs = append(mbs, s.Metrics["MB/s"])
			}
			lo, med := minMedian(rate)
			_, mmed := minMedian(mbs)
			mbCell := ""
			if mmed > 0 {
				mbCell = fmt.Sprintf("%.1f", mmed)
			}
			p("| %s | %d | %.0f / %.0f %s | %s |\n", strings.TrimPrefix(n, "Benchmark"), len(rate), lo, med, unit, mbCell)
		}
		p("\n")
	}
	return b.String()
}

func parseTables(b *strings.Builder, r *Results, c *config) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	find := func(group, tool, form string, scale int) *Measure {
		for i := range r.Parse {
			m := &r.Parse[i]
			if m.Group == group && m.Tool == tool && m.Form == form && m.Scale == scale {
				return m
			}
		}
		return nil
	}
	var toolNames []string
	seen := map[string]bool{}
	for _, m := range r.Parse {
		if !seen[m.Tool] {
			seen[m.Tool] = true
			toolNames = append(toolNames, m.Tool)
		}
	}
	p("## Parse throughput (no store)\n\n")
	if m := find("batch", "dmarcd", "xml", 1); m != nil {
		p("%d reports, %d records, %s of XML at 1x; every parser in one process over all the files (dmarc-cat: one process per file, as it reads one), %d run(s), the parsers taking turns; rates from the median wall time, process start included.\n\n",
			m.Files, m.Expected, mb(m.XMLBytes), len(m.Runs))
	}
	p("| form | parser | min / median | reports/s | records/s | MB/s XML | MB/s input | time vs dmarcd | time vs floor | max RSS | records found |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range forms {
		base, floor := find("batch", "dmarcd", f.name, 1), find("batch", "floor", f.name, 1)
		for _, t := range toolNames {
			m := find("batch", t, f.name, 1)
			if m == nil {
				continue
			}
			row(b, f.name, t, m, base, floor)
		}
	}
	p("\n### One large report\n\n")
	if m := find("big", "dmarcd", "xml", 0); m != nil {
		p("One report of %d records (%s of XML), %d run(s): the parsers' speed per record, without any cost per file or per report.\n\n", m.Expected, mb(m.XMLBytes), len(m.Runs))
	}
	p("| form | parser | min / median | reports/s | records/s | MB/s XML | MB/s input | time vs dmarcd | time vs floor | max RSS | records found |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, form := range []string{"xml", "xml.gz"} {
		base, floor := find("big", "dmarcd", form, 0), find("big", "floor", form, 0)
		for _, t := range toolNames {
			if m := find("big", t, form, 0); m != nil {
				row(b, form, t, m, base, floor)
			}
		}
	}
	p("\n### Cost of a process per file\n\n")
	p("| parser | start-up, no file (median) | one process per file (.xml.gz) | in one process, per report (.xml.gz, 1x) | per file / in one process |\n|---|---|---|---|---|\n")
	for _, t := range toolNames {
		pf := find("per-file", t, "xml.gz", 0)
		if pf == nil {
			continue
		}
		su := find("start-up", t, "", 0)
		bt := find("batch", t, "xml.gz", 1)
		_, pfMed := minMedian(walls(pf.Runs))
		perFile := pfMed / float64(pf.Files)
		start := "n/a (needs a file)"
		if su != nil {
			_, s := minMedian(walls(su.Runs))
			start = ms(s)
		}
		inOne, ratio := "n/a (one file per process)", ""
		if bt != nil && t != "dmarc-cat" {
			_, bm := minMedian(walls(bt.Runs))
			inOne = ms(bm / float64(bt.Files))
			ratio = fmt.Sprintf("%.1fx", perFile/(bm/float64(bt.Files)))
		}
		p("| %s | %s | %s per file (%d files) | %s | %s |\n", t, start, ms(perFile), pf.Files, inOne, ratio)
	}
	p("\n### Growth: 2x and 4x the reports\n\n")
	if ms := []*Measure{find("batch", "dmarcd", "xml.gz", 1), find("batch", "dmarcd", "xml.gz", 2), find("batch", "dmarcd", "xml.gz", 4)}; ms[0] != nil && ms[1] != nil && ms[2] != nil {
		p("2x the reports are %.2fx the records and %.2fx the XML; 4x the reports %.2fx the records and %.2fx the XML (the reports are drawn from the same mix of sizes, and the larger corpora hold more of the rare large reports). One process over all the files; %d run(s) at 2x and 4x.\n\n",
			float64(ms[1].Expected)/float64(ms[0].Expected), float64(ms[1].XMLBytes)/float64(ms[0].XMLBytes),
			float64(ms[2].Expected)/float64(ms[0].Expected), float64(ms[2].XMLBytes)/float64(ms[0].XMLBytes), len(ms[1].Runs))
	}
	p("| form | parser | time 1x | 2x | 4x | 2x/1x | 4x/1x | max RSS 1x | 2x | 4x | RSS 2x/1x | 4x/1x |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, form := range []string{"xml.gz", "eml"} {
		for _, t := range toolNames {
			var ms3 []*Measure
			for _, s := range []int{1, 2, 4} {
				ms3 = append(ms3, find("batch", t, form, s))
			}
			if ms3[0] == nil || ms3[1] == nil || ms3[2] == nil {
				continue
			}
			growthRow(b, form+" | "+t, ms3)
		}
	}
	p("\n")
}

func row(b *strings.Builder, form, tool string, m, base, floor *Measure) {
	lo, med := minMedian(walls(m.Runs))
	vs := func(o *Measure) string {
		if o == nil || len(o.Runs) == 0 {
			return ""
		}
		_, om := minMedian(walls(o.Runs))
		return fmt.Sprintf("%.2fx", med/om)
	}
	found := fmt.Sprintf("%d", m.Records)
	if m.Records != m.Expected {
		found = fmt.Sprintf("**%d of %d**", m.Records, m.Expected)
	}
	if m.Note != "" {
		found += " " + m.Note
	}
	fmt.Fprintf(b, "| %s | %s | %.3f / %.3f s | %.0f | %.0f | %.1f | %.1f | %s | %s | %s | %s |\n", form, tool, lo, med,
		float64(m.Files)/med, float64(m.Expected)/med, float64(m.XMLBytes)/1e6/med, float64(m.InputBytes)/1e6/med,
		vs(base), vs(floor), mb(maxRSS(m.Runs)), found)
}

func growthRow(b *strings.Builder, label string, ms3 []*Measure) {
	var t, rss [3]float64
	for i, m := range ms3 {
		_, t[i] = minMedian(walls(m.Runs))
		rss[i] = float64(maxRSS(m.Runs))
	}
	fmt.Fprintf(b, "| %s | %.2f s | %.2f s | %.2f s | %.2f | %.2f | %s | %s | %s | %.2f | %.2f |\n", label,
		t[0], t[1], t[2], t[1]/t[0], t[2]/t[0], mb(int64(rss[0])), mb(int64(rss[1])), mb(int64(rss[2])), rss[1]/rss[0], rss[2]/rss[0])
}

// growth prints how time and memory grow over measures of increasing size
// (IMAP: scale 1, 2, 4; backfill: sizes).
func growth(b *strings.Builder, label string, ms []Measure, group string) {
	var sel []*Measure
	for i := range ms {
		if ms[i].Group == group {
			sel = append(sel, &ms[i])
		}
	}
	if len(sel) < 2 {
		return
	}
	fmt.Fprintf(b, "Growth (%s): ", label)
	_, t0 := minMedian(walls(sel[0].Runs))
	r0 := float64(maxRSS(sel[0].Runs))
	var parts []string
	for _, m := range sel[1:] {
		_, t := minMedian(walls(m.Runs))
		parts = append(parts, fmt.Sprintf("%.2gx the messages (%.2fx the records) -> %.2fx the time, %.2fx the peak memory",
			float64(m.Files)/float64(sel[0].Files), float64(m.Expected)/float64(sel[0].Expected), t/t0, float64(maxRSS(m.Runs))/r0))
	}
	b.WriteString(strings.Join(parts, "; ") + ".\n\n")
}

func storeTables(b *strings.Builder, r *Results) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Store (schema/conformance benchmarks, no parsing)\n\n")
	for _, s := range r.Store {
		if s.Writers {
			writersTable(b, s)
			continue
		}
		if s.Records == 0 {
			p("Small aggregate reports, failure reports and TLS reports (`%s`, %s):\n\n| reports | store | reports/s | records/s | time |\n|---|---|---|---|---|\n", s.Command, dur(s.Elapsed))
			for _, bn := range s.Benchmarks {
				kind := "small aggregate reports"
				if strings.Contains(bn.Name, "FailureReports") {
					kind = "failure reports"
				}
				if strings.Contains(bn.Name, "TLSReports") {
					kind = "TLS reports"
				}
				recs := ""
				if v, ok := bn.Metrics["records/s"]; ok {
					recs = fmt.Sprintf("%.0f", v)
				}
				p("| %s | %s | %.0f | %s | %.2f s |\n", kind, storeName(bn.Name), bn.Metrics["reports/s"], recs, bn.Metrics["ns/op"]/1e9)
			}
			p("\n")
			continue
		}
		p("%d records (`%s`, %s in all):\n\n| | SQLite | ClickHouse |\n|---|---|---|\n", s.Records, s.Command, dur(s.Elapsed))
		loads := map[string]Load{}
		for _, l := range s.Loads {
			loads[l.Store] = l
		}
		p("| insert (one writer) | %s | %s |\n", loadCell(loads["sqlite"]), loadCell(loads["clickhouse"]))
		q := map[string]map[string]float64{}
		var names []string
		for _, bn := range s.Benchmarks {
			parts := strings.Split(strings.TrimPrefix(bn.Name, "BenchmarkQueries/"), "/")
			if len(parts) != 2 {
				continue
			}
			if q[parts[1]] == nil {
				q[parts[1]] = map[string]float64{}
				names = append(names, parts[1])
			}
			q[parts[1]][parts[0]] = bn.Metrics["ns/op"] / 1e9
		}
		for _, n := range names {
			p("| `%s` | %s | %s |\n", n, secs(q[n]["sqlite"]), secs(q[n]["clickhouse"]))
		}
		p("\n")
	}
}

// writersTable shows a run of BenchmarkWrite: each store's writer beside
// its engine's own insert of the same rows, in the same run. For SQLite,
// whose rollups the writer keeps (ClickHouse's views keep them for both),
// two rows: the engine inserting the base rows alone, and the same rows as
// the writer, rollups included.
func writersTable(b *strings.Builder, s StoreRun) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("The writers against their engines (`%s`, %s): records/s from wall time; for SQLite, which runs in the process, also per second of the process's CPU time.\n\n", s.Command, dur(s.Elapsed))
	p("| store | reports | the engine inserts | writer, records/s | engine, records/s | writer / engine | writer, CPU records/s | engine, CPU records/s | writer / engine, CPU |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, bn := range s.Benchmarks {
		parts := strings.Split(strings.TrimPrefix(bn.Name, "BenchmarkWrite/"), "/")
		if len(parts) != 2 {
			continue
		}
		m := bn.Metrics
		cpu := func(k string, f string) string {
			if v, ok := m[k]; ok {
				return fmt.Sprintf(f, v)
			}
			return ""
		}
		row := func(what, engine string) {
			p("| %s | %s | %s | %.0f | %.0f | %.2f | %s | %s | %s |\n", parts[0], parts[1], what, m["records/s"], m[engine+"-records/s"], m["writer/"+engine],
				cpu("cpu-records/s", "%.0f"), cpu(engine+"-cpu-records/s", "%.0f"), cpu("writer/"+engine+"-cpu", "%.2f"))
		}
		if _, ok := m["engine-rollups-records/s"]; ok {
			row("the same rows, the rollups' upserts included", "engine-rollups")
			row("the reports, records and DKIM results, not the rollups", "engine")
			continue
		}
		row("the same rows (the server's views keep the rollups)", "engine")
	}
	p("\n")
}

func storeName(n string) string {
	parts := strings.Split(n, "/")
	return parts[len(parts)-1]
}

func loadCell(l Load) string {
	if l.Records == 0 {
		return "not run"
	}
	return fmt.Sprintf("%.0f records/s (%s)", l.Rate, dur(l.Seconds))
}

func secs(s float64) string {
	if s == 0 {
		return "not run"
	}
	if s < 0.01 {
		return fmt.Sprintf("%.4f s", s)
	}
	return fmt.Sprintf("%.3f s", s)
}

func mb(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func ms(s float64) string { return fmt.Sprintf("%.1f ms", s*1000) }

func dur(s float64) string {
	if s >= 60 {
		return fmt.Sprintf("%dm%02ds", int(s)/60, int(s)%60)
	}
	return fmt.Sprintf("%.1fs", s)
}
