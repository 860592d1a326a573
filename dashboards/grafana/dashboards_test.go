package grafana

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dmarcd/dmarcd/ingest"
	"github.com/dmarcd/dmarcd/internal/corpus"
	"github.com/dmarcd/dmarcd/internal/testserver"
	"github.com/dmarcd/dmarcd/schema/clickhouse"
)

// pluginType is the grafana-clickhouse-datasource plugin's id; every panel
// and query names it, with the uid of the dashboard's datasource variable.
const (
	pluginType    = "grafana-clickhouse-datasource"
	datasourceUID = "${datasource}"
	// domainFilter is how every query filters on the domain variable: a
	// multi-value variable with All, rendered as a list of quoted strings.
	domainFilter = "IN (${domain:singlequote})"
)

// panelColumns are the columns each panel's query must return, in order,
// keyed by "dashboard uid: panel title". Every panel with a query must be
// listed, and every entry must match a panel.
var panelColumns = map[string][]string{
	"dmarcd-overview: Messages":                                        {"messages"},
	"dmarcd-overview: DMARC pass":                                      {"dmarc_pass_pct"},
	"dmarcd-overview: DKIM aligned pass":                               {"dkim_aligned_pct"},
	"dmarcd-overview: SPF aligned pass":                                {"spf_aligned_pct"},
	"dmarcd-overview: Disposition: quarantine / reject":                {"quarantined", "rejected"},
	"dmarcd-overview: Reports / reporters":                             {"reports", "reporters"},
	"dmarcd-overview: Messages per domain":                             {"time", "domain", "messages"},
	"dmarcd-overview: DMARC pass rate per domain":                      {"time", "domain", "dmarc_pass_pct"},
	"dmarcd-overview: DKIM aligned pass rate per domain":               {"time", "domain", "dkim_aligned_pct"},
	"dmarcd-overview: SPF aligned pass rate per domain":                {"time", "domain", "spf_aligned_pct"},
	"dmarcd-overview: Dispositions applied by receivers":               {"time", "delivered", "quarantined", "rejected"},
	"dmarcd-overview: Dispositions":                                    {"disposition", "messages"},
	"dmarcd-overview: Domains":                                         {"domain", "messages", "dmarc_pass_pct", "dkim_aligned_pct", "spf_aligned_pct", "quarantined", "rejected", "first_day", "last_day"},
	"dmarcd-overview: Published policy as receivers saw it":            {"domain", "p", "sp", "np", "pct", "testing", "adkim", "aspf", "reports", "reporters", "first_day", "last_day"},
	"dmarcd-sources: Sources":                                          {"sources"},
	"dmarcd-sources: Sources with failures":                            {"failing_sources"},
	"dmarcd-sources: Failing messages":                                 {"failing"},
	"dmarcd-sources: Unknown sources":                                  {"unknown_sources"},
	"dmarcd-sources: Top failing sources":                              {"domain", "source_ip", "class", "messages", "failing", "dmarc_pass_pct", "dkim_aligned_pct", "spf_aligned_pct", "first_day", "last_day"},
	"dmarcd-sources: Messages by class (approximate)":                  {"class", "messages"},
	"dmarcd-sources: Classes (approximate)":                            {"class", "sources", "messages", "failing"},
	"dmarcd-sources: Failing messages per day by class":                {"time", "class", "failing"},
	"dmarcd-sources: Failing messages per day, top 10 failing sources": {"time", "source_ip", "failing"},
	"dmarcd-sources: All sources: aligned shares":                      {"domain", "source_ip", "class", "messages", "dmarc_pass_pct", "dkim_aligned_pct", "spf_aligned_pct", "days", "first_day", "last_day"},
	"dmarcd-sources: Failing records":                                  {"domain", "source_ip", "header_from", "envelope_from", "disposition", "dkim", "spf", "dkim_signers", "dkim_keys", "dkim_outcomes", "spf_checked", "spf_outcomes", "reporters", "messages", "first_day", "last_day"},
	"dmarcd-reporters: Reporters":                                      {"reporters"},
	"dmarcd-reporters: Reports":                                        {"reports"},
	"dmarcd-reporters: Messages reported":                              {"messages"},
	"dmarcd-reporters: Silent reporters":                               {"silent"},
	"dmarcd-reporters: Reports per reporter":                           {"time", "org_name", "reports"},
	"dmarcd-reporters: Messages per reporter":                          {"time", "org_name", "messages"},
	"dmarcd-reporters: Last report per reporter and domain":            {"domain", "org_name", "reports", "messages", "first_day", "last_day", "days_silent"},
	"dmarcd-reporters: Recent reports":                                 {"date_begin", "date_end", "org_name", "email", "domain", "report_id", "record_count", "message_count", "errors", "received_at"},
	"dmarcd-dkim-selectors: Selectors":                                 {"selectors"},
	"dmarcd-dkim-selectors: DKIM signatures passing":                   {"passed_pct"},
	"dmarcd-dkim-selectors: Failing selectors":                         {"failing_selectors"},
	"dmarcd-dkim-selectors: Messages per selector":                     {"time", "key", "messages"},
	"dmarcd-dkim-selectors: Pass share per selector":                   {"time", "key", "passed_pct"},
	"dmarcd-dkim-selectors: Selectors: rotation health":                {"domain", "dkim_domain", "selector", "aligned", "messages", "passed", "passed_pct", "days", "first_day", "last_day", "days_since"},
	"dmarcd-dkim-selectors: Selector results per reporter":             {"dkim_domain", "selector", "org_name", "result", "messages", "sources"},
	"dmarcd-dkim-selectors: Failing signatures by source":              {"source_ip", "dkim_domain", "selector", "result", "messages", "reporters", "last_day"},
	"dmarcd-tls: TLS sessions":                                         {"successful", "failed"},
	"dmarcd-tls: TLS failure rate":                                     {"failed_pct"},
	"dmarcd-tls: Reports / reporters":                                  {"reports", "reporters"},
	"dmarcd-tls: Failed TLS sessions per domain":                       {"time", "policy_domain", "failed"},
	"dmarcd-tls: Policies":                                             {"policy_domain", "policy_type", "reports", "reporters", "successful", "failed", "failed_pct"},
	"dmarcd-tls: Failures by kind and host":                            {"policy_domain", "result_type", "receiving_mx_hostname", "receiving_ip", "sending_mta_ip", "sessions", "reason_code"},
	"dmarcd-failures: Failure reports":                                 {"reports"},
	"dmarcd-failures: Sources":                                         {"sources"},
	"dmarcd-failures: Reporters":                                       {"reporters"},
	"dmarcd-failures: Failure reports per day":                         {"time", "domain", "reports"},
	"dmarcd-failures: By authentication failure":                       {"failure", "reports"},
	"dmarcd-failures: Per domain, day and failure":                     {"day", "domain", "auth_failure", "reports", "sources"},
	"dmarcd-failures: Top sources in failure reports":                  {"source_ip", "domain", "reports", "auth_failures", "first_arrival", "last_arrival"},
	"dmarcd-failures: Failure reports (headers only)":                  {"arrival", "domain", "source_ip", "feedback_type", "auth_failure", "delivery_result", "identity_alignment", "dkim_domain", "dkim_selector", "original_mail_from", "rcpt_to", "original_from", "original_to", "original_subject", "original_message_id", "report_from", "user_agent", "failure_id"},
	"dmarcd-failures: Header blocks of the reported messages":          {"arrival", "domain", "source_ip", "original_subject", "original_headers", "failure_id"},
}

// The dashboard JSON, as far as the tests read it.
type (
	dashboard struct {
		file          string
		UID           string   `json:"uid"`
		Title         string   `json:"title"`
		SchemaVersion int      `json:"schemaVersion"`
		Tags          []string `json:"tags"`
		Templating    struct {
			List []variable `json:"list"`
		} `json:"templating"`
		Panels []panel `json:"panels"`
	}
	variable struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Datasource *dsRef          `json:"datasource"`
		Query      json.RawMessage `json:"query"`
		Multi      bool            `json:"multi"`
		IncludeAll bool            `json:"includeAll"`
	}
	panel struct {
		ID          int            `json:"id"`
		Type        string         `json:"type"`
		Title       string         `json:"title"`
		Description string         `json:"description"`
		GridPos     *gridPos       `json:"gridPos"`
		Datasource  *dsRef         `json:"datasource"`
		Targets     []target       `json:"targets"`
		Panels      []panel        `json:"panels"` // of a collapsed row
		Options     map[string]any `json:"options"`
	}
	gridPos struct {
		H int `json:"h"`
		W int `json:"w"`
		X int `json:"x"`
		Y int `json:"y"`
	}
	dsRef struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	target struct {
		RefID      string `json:"refId"`
		Datasource *dsRef `json:"datasource"`
		EditorType string `json:"editorType"`
		Format     *int   `json:"format"`
		RawSQL     string `json:"rawSql"`
	}
)

// The plugin's query formats (sqlutil.FormatQueryOption).
const (
	formatTimeSeries = 0
	formatTable      = 1
)

// query is one target of one panel.
type query struct {
	key   string // "uid: title"
	dash  *dashboard
	panel panel
	tgt   target
}

func loadDashboards(t testing.TB) []*dashboard {
	t.Helper()
	files, err := filepath.Glob("dashboards/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboards in dashboards/")
	}
	var out []*dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := &dashboard{file: f}
		if err := json.Unmarshal(b, d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

// allPanels returns the dashboard's panels, with those inside collapsed rows.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func (d *dashboard) variable(name string) *variable {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// sql returns the SQL of a query variable: the plugin stores an object
// with rawSql; older versions a string.
func (v *variable) sql() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct {
		RawSQL string `json:"rawSql"`
	}
	json.Unmarshal(v.Query, &q)
	return q.RawSQL
}

func queries(ds []*dashboard) []query {
	var out []query
	for _, d := range ds {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				out = append(out, query{key: d.UID + ": " + p.Title, dash: d, panel: p, tgt: tg})
			}
		}
	}
	return out
}

// panelsWithoutQuery are the panel types that show no data.
var panelsWithoutQuery = map[string]bool{"row": true, "text": true}

// knownPanelTypes are Grafana's core panels the dashboards may use.
var knownPanelTypes = map[string]bool{
	"row": true, "text": true, "stat": true, "timeseries": true, "table": true,
	"piechart": true, "barchart": true, "bargauge": true, "gauge": true,
}

// unsupported are SQL that ClickHouse 18.16 (Debian 12) lacks, or plugin
// macros that expand to it, with what to use instead.
var unsupported = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`(?i)\btoStartOfWeek\b`), "toStartOfWeek: use toMonday"},
	{regexp.MustCompile(`(?i)\bdate_trunc\b`), "date_trunc: use toMonday, toStartOfMonth, toDate"},
	{regexp.MustCompile(`(?i)\btoStartOfInterval\b`), "toStartOfInterval is missing in 18.16"},
	{regexp.MustCompile(`\$__timeInterval`), "$__timeInterval expands to toStartOfInterval, missing in 18.16: group by day"},
	{regexp.MustCompile(`\$__\w+_ms\b`), "the _ms macros expand to DateTime64, missing in 18.16"},
	{regexp.MustCompile(`(?i)\bDateTime64\b|fromUnixTimestamp64`), "DateTime64 is missing in 18.16"},
	{regexp.MustCompile(`(?i)\b(to)?IPv[46]\w*`), "IPv4/IPv6 types and functions are missing in 18.16; source_ip is a String"},
	{regexp.MustCompile(`(?i)\bMap\s*\(`), "Map is missing in 18.16"},
	{regexp.MustCompile(`\$__timeFilter\(\s*day\s*\)`), "$__timeFilter compares a Date with a DateTime, which 18.16 gets wrong (0 rows): use $__dateFilter(day)"},
	{regexp.MustCompile(`;\s*$`), "a trailing ';'"},
}

// joinRe finds joins and the word before them, which 18.16 needs to be
// ANY or ALL (it has no default join_default_strictness).
var joinRe = regexp.MustCompile(`(?i)(\w+)\s+(?:(?:LEFT|RIGHT|INNER|FULL)\s+)?(?:OUTER\s+)?JOIN\b`)

// TestDashboardStructure checks what Grafana and the plugin need of each
// dashboard, without a server.
func TestDashboardStructure(t *testing.T) {
	ds := loadDashboards(t)
	uids := map[string]string{}
	for _, d := range ds {
		t.Run(filepath.Base(d.file), func(t *testing.T) {
			if d.UID == "" || d.Title == "" {
				t.Errorf("uid %q, title %q: both are needed", d.UID, d.Title)
			}
			if other, ok := uids[d.UID]; ok {
				t.Errorf("uid %s is also the uid of %s", d.UID, other)
			}
			uids[d.UID] = d.file
			if d.SchemaVersion < 36 {
				t.Errorf("schemaVersion %d: want that of a current Grafana (36 and later)", d.SchemaVersion)
			}
			if !slices.Contains(d.Tags, "dmarcd") {
				t.Errorf("tags %v: want dmarcd (the dashboards link to each other by it)", d.Tags)
			}
			checkVariables(t, d)
			checkPanels(t, d)
		})
	}
	// The expected columns name every panel with a query, and only those.
	seen := map[string]bool{}
	for _, q := range queries(ds) {
		seen[q.key] = true
		if _, ok := panelColumns[q.key]; !ok {
			t.Errorf("%s: no expected columns in panelColumns", q.key)
		}
	}
	for k := range panelColumns {
		if !seen[k] {
			t.Errorf("panelColumns lists %q, which is no panel", k)
		}
	}
}

func checkVariables(t *testing.T, d *dashboard) {
	t.Helper()
	dsv := d.variable("datasource")
	if dsv == nil || dsv.Type != "datasource" || string(dsv.Query) != `"`+pluginType+`"` {
		t.Errorf("want a variable datasource of type datasource, query %q", pluginType)
	}
	dom := d.variable("domain")
	if dom == nil {
		t.Fatal("no variable domain")
	}
	if dom.Type != "query" || !dom.Multi || !dom.IncludeAll {
		t.Errorf("variable domain: type %q, multi %v, includeAll %v: want a multi-value query variable with All", dom.Type, dom.Multi, dom.IncludeAll)
	}
	if dom.Datasource == nil || *dom.Datasource != (dsRef{pluginType, datasourceUID}) {
		t.Errorf("variable domain: datasource %+v, want %s %s", dom.Datasource, pluginType, datasourceUID)
	}
	sql := dom.sql()
	if !regexp.MustCompile(`(?is)^SELECT DISTINCT domain FROM .*\breports\b.* ORDER BY domain$`).MatchString(sql) {
		t.Errorf("variable domain: query %q: want the distinct domains of reports, ordered", sql)
	}
}

func checkPanels(t *testing.T, d *dashboard) {
	t.Helper()
	ids := map[int]bool{}
	titles := map[string]bool{}
	var boxes []panel
	for _, p := range d.allPanels() {
		name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 || ids[p.ID] {
			t.Errorf("%s: id missing or not unique", name)
		}
		ids[p.ID] = true
		if p.Title == "" || titles[p.Title] {
			t.Errorf("%s: title missing or not unique", name)
		}
		titles[p.Title] = true
		if !knownPanelTypes[p.Type] {
			t.Errorf("%s: type %q is not a core panel", name, p.Type)
		}
		if g := p.GridPos; g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v: want w, h > 0 and x + w <= 24", name, p.GridPos)
		} else {
			boxes = append(boxes, p)
		}
		if p.Type == "text" {
			if c, _ := p.Options["content"].(string); strings.TrimSpace(c) == "" {
				t.Errorf("%s: text panel without content", name)
			}
		}
		if panelsWithoutQuery[p.Type] {
			if len(p.Targets) > 0 {
				t.Errorf("%s: a %s panel has queries", name, p.Type)
			}
			continue
		}
		if p.Description == "" {
			t.Errorf("%s: no description", name)
		}
		if p.Datasource == nil || *p.Datasource != (dsRef{pluginType, datasourceUID}) {
			t.Errorf("%s: datasource %+v, want %s %s", name, p.Datasource, pluginType, datasourceUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no query", name)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			checkTarget(t, name, p, tg)
			if refs[tg.RefID] {
				t.Errorf("%s: refId %q twice", name, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	// No two panels overlap.
	for i, a := range boxes {
		for _, b := range boxes[i+1:] {
			ga, gb := a.GridPos, b.GridPos
			if ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H {
				t.Errorf("panels %d and %d overlap: %+v %+v", a.ID, b.ID, *ga, *gb)
			}
		}
	}
}

func checkTarget(t *testing.T, name string, p panel, tg target) {
	t.Helper()
	if tg.RefID == "" {
		t.Errorf("%s: a query without refId", name)
	}
	if tg.Datasource == nil || *tg.Datasource != (dsRef{pluginType, datasourceUID}) {
		t.Errorf("%s: query datasource %+v, want %s %s", name, tg.Datasource, pluginType, datasourceUID)
	}
	if tg.EditorType != "sql" {
		t.Errorf("%s: editorType %q, want sql (raw SQL)", name, tg.EditorType)
	}
	if strings.TrimSpace(tg.RawSQL) == "" {
		t.Errorf("%s: no rawSql", name)
	}
	want := formatTable
	if p.Type == "timeseries" {
		want = formatTimeSeries
	}
	if tg.Format == nil || *tg.Format != want {
		t.Errorf("%s: format %v, want %d for a %s panel", name, tg.Format, want, p.Type)
	}
	if !strings.Contains(tg.RawSQL, domainFilter) {
		t.Errorf("%s: the query does not filter on the domain variable (%s)", name, domainFilter)
	}
	if !strings.Contains(tg.RawSQL, "$__dateFilter(") && !strings.Contains(tg.RawSQL, "$__timeFilter(") {
		t.Errorf("%s: the query does not filter on the time range ($__dateFilter or $__timeFilter)", name)
	}
	for _, u := range unsupported {
		if u.re.MatchString(tg.RawSQL) {
			t.Errorf("%s: %s", name, u.why)
		}
	}
	for _, m := range joinRe.FindAllStringSubmatch(tg.RawSQL, -1) {
		if s := strings.ToUpper(m[1]); s != "ANY" && s != "ALL" {
			t.Errorf("%s: %q: a JOIN needs ANY or ALL in 18.16 (ALL INNER JOIN)", name, m[0])
		}
	}
}

// TestProvisioning checks the provisioning files name the plugin, the
// native protocol and the dashboards' folder. (The module has no YAML
// parser; the checks are on lines.)
func TestProvisioning(t *testing.T) {
	for file, wants := range map[string][]string{
		"provisioning/datasources/clickhouse.yaml": {
			"apiVersion: 1", "type: " + pluginType, "uid: dmarcd-clickhouse", "host: ${DMARCD_CLICKHOUSE_HOST}",
			"port: 9000", "protocol: native", "username: ${DMARCD_CLICKHOUSE_USER}",
			"defaultDatabase: ${DMARCD_CLICKHOUSE_DATABASE}", "secureJsonData:", "password: ${DMARCD_CLICKHOUSE_PASSWORD}",
		},
		"provisioning/dashboards/dmarcd.yaml": {
			"apiVersion: 1", "providers:", "type: file", "path: /var/lib/grafana/dashboards/dmarcd",
		},
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
			lines[l] = true
			if strings.Contains(l, "\t") {
				t.Errorf("%s: a tab in %q: YAML indents with spaces", file, l)
			}
		}
		for _, w := range wants {
			if !lines[w] {
				t.Errorf("%s: no line %q", file, w)
			}
		}
	}
	// The dashboards' default datasource is the provisioned one.
	for _, d := range loadDashboards(t) {
		b, _ := os.ReadFile(d.file)
		if !strings.Contains(string(b), `"value": "dmarcd-clickhouse"`) {
			t.Errorf("%s: the datasource variable does not default to dmarcd-clickhouse", d.file)
		}
	}
}

// window is a dashboard's time range.
type window struct{ from, to time.Time }

// expandVariables does what Grafana does to a query before it sends it to
// the plugin: it replaces the dashboard variables. vars holds each
// variable's selected values. Only the formats the dashboards need are
// known; anything else is an error, so that no variable reaches the server
// unexpanded.
func expandVariables(sql string, vars map[string][]string) (string, error) {
	re := regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)|\[\[(\w+)(?::(\w+))?\]\]`)
	var err error
	out := re.ReplaceAllStringFunc(sql, func(m string) string {
		s := re.FindStringSubmatch(m)
		name, format := s[1]+s[3]+s[4], s[2]+s[5]
		if strings.HasPrefix(name, "__") {
			return m // a macro of the plugin, or a Grafana global: see expandMacros
		}
		values, ok := vars[name]
		if !ok {
			err = fmt.Errorf("unknown variable %s", m)
			return m
		}
		quoted := make([]string, len(values))
		switch format {
		case "singlequote":
			for i, v := range values {
				quoted[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
			}
		case "sqlstring":
			for i, v := range values {
				quoted[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
			}
		case "csv":
			copy(quoted, values)
		default:
			err = fmt.Errorf("%s: give multi-value variables a format, such as ${%s:singlequote}", m, name)
			return m
		}
		return strings.Join(quoted, ",")
	})
	return out, err
}

// expandMacros does what the plugin (pkg/macros) does to a query before it
// runs it: it replaces its macros for the time range. interval is the
// panel's interval ($__interval_s).
func expandMacros(sql string, w window, interval time.Duration) (string, error) {
	dateTime := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	date := func(t time.Time) string { return fmt.Sprintf("toDate('%s')", t.UTC().Format(time.DateOnly)) }
	dateTime64 := func(t time.Time) string { return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli()) }
	var out strings.Builder
	for {
		i := strings.Index(sql, "$__")
		if i < 0 {
			out.WriteString(sql)
			return out.String(), nil
		}
		out.WriteString(sql[:i])
		sql = sql[i+3:]
		n := strings.IndexFunc(sql, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' })
		if n < 0 {
			n = len(sql)
		}
		name := sql[:n]
		sql = sql[n:]
		var args []string
		if strings.HasPrefix(sql, "(") {
			depth, end, start := 0, -1, 1
			for j, r := range sql {
				switch r {
				case '(':
					depth++
				case ')':
					depth--
				case ',':
					if depth == 1 {
						args = append(args, strings.TrimSpace(sql[start:j]))
						start = j + 1
					}
				}
				if depth == 0 {
					end = j
					break
				}
			}
			if end < 0 {
				return "", fmt.Errorf("$__%s: unbalanced parentheses", name)
			}
			if a := strings.TrimSpace(sql[start:end]); a != "" || len(args) > 0 {
				args = append(args, a)
			}
			sql = sql[end+1:]
		}
		want := map[string]int{
			"timeFilter": 1, "timeFilter_ms": 1, "dateFilter": 1, "dateTimeFilter": 2, "dt": 2,
			"timeInterval": 1, "timeInterval_ms": 1,
		}
		if k, ok := want[name]; ok && len(args) != k {
			return "", fmt.Errorf("$__%s: %d arguments, want %d", name, len(args), k)
		}
		seconds := max(int(interval.Seconds()), 1)
		switch name {
		case "fromTime":
			out.WriteString(dateTime(w.from))
		case "toTime":
			out.WriteString(dateTime(w.to))
		case "fromTime_ms":
			out.WriteString(dateTime64(w.from))
		case "toTime_ms":
			out.WriteString(dateTime64(w.to))
		case "timeFilter":
			fmt.Fprintf(&out, "%s >= %s AND %s <= %s", args[0], dateTime(w.from), args[0], dateTime(w.to))
		case "timeFilter_ms":
			fmt.Fprintf(&out, "%s >= %s AND %s <= %s", args[0], dateTime64(w.from), args[0], dateTime64(w.to))
		case "dateFilter":
			fmt.Fprintf(&out, "%s >= %s AND %s <= %s", args[0], date(w.from), args[0], date(w.to))
		case "dateTimeFilter", "dt":
			fmt.Fprintf(&out, "(%s >= %s AND %s <= %s) AND (%s >= %s AND %s <= %s)",
				args[0], date(w.from), args[0], date(w.to), args[1], dateTime(w.from), args[1], dateTime(w.to))
		case "timeInterval":
			fmt.Fprintf(&out, "toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], seconds)
		case "timeInterval_ms":
			fmt.Fprintf(&out, "toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", args[0], max(interval.Milliseconds(), 1))
		case "interval_s":
			fmt.Fprintf(&out, "%d", seconds)
		default:
			return "", fmt.Errorf("$__%s: not a macro of the plugin", name)
		}
	}
}

// testInterval is the panels' interval ($__interval_s, $__timeInterval),
// which Grafana derives from the time range and the panel's width. The
// dashboards group by day and use neither.
const testInterval = 24 * time.Hour

func TestExpand(t *testing.T) {
	w := window{time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, c := range []struct{ in, want string }{
		{"WHERE $__timeFilter(date_begin) AND x", "WHERE date_begin >= toDateTime(1262304000) AND date_begin <= toDateTime(1893456000) AND x"},
		{"$__dateFilter(day)", "day >= toDate('2010-01-01') AND day <= toDate('2030-01-01')"},
		{"$__dt(day, date_begin)", "(day >= toDate('2010-01-01') AND day <= toDate('2030-01-01')) AND (date_begin >= toDateTime(1262304000) AND date_begin <= toDateTime(1893456000))"},
		{"toDate($__toTime) - $__fromTime", "toDate(toDateTime(1893456000)) - toDateTime(1262304000)"},
		{"$__timeInterval(toDate(x))", "toStartOfInterval(toDateTime(toDate(x)), INTERVAL 86400 second)"},
		{"domain IN (${domain:singlequote})", "domain IN ('a.example','o\\'x.example')"},
		{"domain = ${domain:sqlstring}", "domain = 'a.example','o''x.example'"},
	} {
		got, err := expandVariables(c.in, map[string][]string{"domain": {"a.example", "o'x.example"}})
		if err == nil {
			got, err = expandMacros(got, w, testInterval)
		}
		if err != nil || got != c.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"$domain", "${other:singlequote}", "$__nothing", "$__timeFilter(a, b)", "$__dateFilter(day"} {
		s, err := expandVariables(in, map[string][]string{"domain": {"a"}})
		if err == nil {
			_, err = expandMacros(s, w, testInterval)
		}
		if err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

// receivedAt is what the ingester records as received_at: the failure
// reports without any date arrive then.
var receivedAt = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// fillClickHouse starts a ClickHouse, creates the schema through the
// store, and stores the shared corpus and the repository's samples.
func fillClickHouse(t *testing.T) string {
	t.Helper()
	dsn := testserver.ClickHouse(t)
	ctx := context.Background()
	s, err := clickhouse.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	inputs, err := ingest.Expand(corpus.Reports(t))
	if err != nil {
		t.Fatal(err)
	}
	samples, err := ingest.Expand([]string{"../../samples"})
	if err != nil {
		t.Fatal(err)
	}
	inputs = append(inputs, samples...)
	sum, err := ingest.New(s, ingest.Options{Now: func() time.Time { return receivedAt }}).Files(ctx, inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Aggregate < 100 || sum.Failure < 5 {
		t.Fatalf("ingested too little: %+v", sum)
	}
	t.Logf("ingested %d aggregate reports (%d records) and %d failure reports", sum.Aggregate, sum.Records, sum.Failure)
	return dsn
}

// openAnalyst connects as Grafana does (clickhouse-go over the native
// protocol, every query with a deadline, which makes clickhouse-go send
// max_execution_time), as the read-only user "analyst" (readonly=1) of the
// test server, like the analyst of docs/SQL.md.
func openAnalyst(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	const prefix = "clickhouse://default:@"
	if !strings.HasPrefix(dsn, prefix) {
		t.Fatalf("DSN %s: want %s...", dsn, prefix)
	}
	opts, err := ch.ParseDSN("clickhouse://analyst:analyst@" + strings.TrimPrefix(dsn, prefix))
	if err != nil {
		t.Fatal(err)
	}
	db := ch.OpenDB(opts)
	t.Cleanup(func() { db.Close() })
	return db
}

// result is what one query gave.
type result struct {
	columns []string
	types   []string // ClickHouse type names
	rows    [][]any
}

func run(db *sql.DB, q string) (*result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	r := &result{}
	for _, c := range cts {
		r.columns = append(r.columns, c.Name())
		r.types = append(r.types, c.DatabaseTypeName())
	}
	for rows.Next() {
		vals := make([]any, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = deref(v)
		}
		r.rows = append(r.rows, vals)
	}
	return r, rows.Err()
}

// deref turns the driver's pointers (Nullable columns) into values, nil
// when NULL.
func deref(v any) any {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil
	}
	return rv.Interface()
}

// number returns a numeric value as a float64.
func number(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

func (r *result) column(name string) int { return slices.Index(r.columns, name) }

// sum adds up a numeric column.
func (r *result) sum(t *testing.T, name string) float64 {
	t.Helper()
	i := r.column(name)
	if i < 0 {
		t.Fatalf("no column %s in %v", name, r.columns)
	}
	var total float64
	for _, row := range r.rows {
		f, _ := number(row[i])
		total += f
	}
	return total
}

// isTime says whether a ClickHouse type is a date or a time.
func isTime(typ string) bool {
	typ = strings.TrimSuffix(strings.TrimPrefix(typ, "Nullable("), ")")
	return strings.HasPrefix(typ, "Date")
}

// timeColumns are the columns that hold days or times the time filter
// selected, which must lie in the range.
var timeColumns = map[string]bool{
	"time": true, "day": true, "first_day": true, "last_day": true, "date_begin": true,
	"arrival": true, "first_arrival": true, "last_arrival": true,
}

// A scenario is a time range and the values selected in the domain
// variable: nil for All (every value of the variable's query).
type scenario struct {
	name    string
	w       window
	domains []string
	// rows: every panel returns rows, except those in empty (with why);
	// nonZero: and some number in them is not zero; zero: every number is
	// zero or NULL (nothing matched).
	rows, nonZero, zero bool
	empty               map[string]string
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

var scenarios = []scenario{
	{name: "all domains 2010-2030", w: window{day(2010, 1, 1), day(2030, 1, 1)}, rows: true, nonZero: true},
	// The samples' week, one domain: all its mail was delivered and
	// every DKIM signature passed.
	{name: "example.com, samples week", w: window{day(2026, 11, 1), day(2026, 11, 8).Add(-time.Second)},
		domains: []string{"example.com"}, rows: true,
		empty: map[string]string{"dmarcd-dkim-selectors: Failing signatures by source": "every signature of the samples passes"}},
	{name: "two domains, one day", w: window{day(2026, 11, 3).Add(6 * time.Hour), day(2026, 11, 3).Add(18 * time.Hour)},
		domains: []string{"example.com", "news.example.com"}},
	{name: "a year without reports", w: window{day(2000, 1, 1), day(2001, 1, 1).Add(-time.Second)}, zero: true},
}

// TestPanelsOnClickHouse runs every panel's query, and every variable's,
// against a ClickHouse with the corpus and the samples, in several time
// ranges and domain selections, as the read-only analyst.
func TestPanelsOnClickHouse(t *testing.T) {
	ds := loadDashboards(t)
	db := openAnalyst(t, fillClickHouse(t))

	// The domain variable of each dashboard, as Grafana fills it.
	allDomains := map[string][]string{}
	for _, d := range ds {
		v := d.variable("domain")
		if v == nil {
			t.Fatalf("%s: no domain variable", d.file)
		}
		q, err := expandMacros(v.sql(), scenarios[0].w, testInterval)
		if err != nil {
			t.Fatalf("%s: variable domain: %v", d.file, err)
		}
		r, err := run(db, q)
		if err != nil {
			t.Fatalf("%s: variable domain: %s: %v", d.file, q, err)
		}
		if len(r.columns) != 1 || r.columns[0] != "domain" {
			t.Errorf("%s: variable domain: columns %v, want [domain]", d.file, r.columns)
		}
		for _, row := range r.rows {
			allDomains[d.UID] = append(allDomains[d.UID], fmt.Sprint(row[0]))
		}
		got := allDomains[d.UID]
		if !sort.StringsAreSorted(got) || !slices.Contains(got, "example.com") || !slices.Contains(got, "news.example.com") || len(got) < 10 {
			t.Errorf("%s: variable domain gave %v: want the corpus's and samples' domains, sorted", d.file, got)
		}
	}

	qs := queries(ds)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			results := map[string]*result{}
			for _, q := range qs {
				domains := sc.domains
				if domains == nil {
					domains = allDomains[q.dash.UID]
				}
				r := runPanel(t, db, q, sc, domains)
				if r != nil {
					results[q.key] = r
				}
			}
			if sc.name == scenarios[0].name {
				crossCheck(t, db, sc, results)
			}
		})
	}
}

// runPanel expands one panel's query for the scenario, runs it and checks
// what it returns.
func runPanel(t *testing.T, db *sql.DB, q query, sc scenario, domains []string) *result {
	t.Helper()
	sql, err := expandVariables(q.tgt.RawSQL, map[string][]string{"domain": domains})
	if err == nil {
		sql, err = expandMacros(sql, sc.w, testInterval)
	}
	if err != nil {
		t.Errorf("%s: %v", q.key, err)
		return nil
	}
	r, err := run(db, sql)
	if err != nil {
		t.Errorf("%s: %v\n%s", q.key, err, sql)
		return nil
	}
	if want := panelColumns[q.key]; !slices.Equal(r.columns, want) {
		t.Errorf("%s: columns %v, want %v", q.key, r.columns, want)
	}
	if q.panel.Type == "stat" && len(r.rows) > 1 {
		t.Errorf("%s: a stat panel's query gave %d rows, want at most 1", q.key, len(r.rows))
	}
	if q.tgt.Format != nil && *q.tgt.Format == formatTimeSeries && len(r.types) > 0 {
		// The plugin turns the rows into series by the first time column;
		// they must come in time order.
		if !isTime(r.types[0]) {
			t.Errorf("%s: time series whose first column %s is a %s, not a time", q.key, r.columns[0], r.types[0])
		} else {
			for i := 1; i < len(r.rows); i++ {
				a, _ := r.rows[i-1][0].(time.Time)
				b, _ := r.rows[i][0].(time.Time)
				if b.Before(a) {
					t.Errorf("%s: time series rows out of time order: %v after %v", q.key, b, a)
					break
				}
			}
		}
	}
	first, last := sc.w.from.UTC().Format(time.DateOnly), sc.w.to.UTC().Format(time.DateOnly)
	numbers, nonZero := 0, false
	once := map[string]bool{} // report each kind of error once per column
	errorf := func(kind, format string, args ...any) {
		if !once[kind] {
			once[kind] = true
			t.Errorf(format, args...)
		}
	}
	for _, row := range r.rows {
		for i, v := range row {
			name := r.columns[i]
			if f, ok := number(v); ok && !strings.HasPrefix(name, "days") {
				numbers++
				nonZero = nonZero || (f != 0 && !math.IsNaN(f))
				if math.IsNaN(f) || math.IsInf(f, 0) {
					errorf("nan "+name, "%s: %s is %v: guard divisions with HAVING", q.key, name, f)
				}
			}
			if tm, ok := v.(time.Time); ok && timeColumns[name] {
				if d := tm.UTC().Format(time.DateOnly); d < first || d > last {
					errorf("range "+name, "%s: %s %s is outside the time range %s to %s", q.key, name, d, first, last)
				}
			}
			if name == "domain" && !slices.Contains(domains, fmt.Sprint(v)) {
				errorf("domain", "%s: domain %q is not among the selected %v", q.key, v, domains)
			}
		}
	}
	switch {
	case sc.rows && len(r.rows) == 0 && sc.empty[q.key] == "":
		t.Errorf("%s: no rows", q.key)
	case sc.empty[q.key] != "" && len(r.rows) > 0:
		t.Errorf("%s: %d rows, want none (%s)", q.key, len(r.rows), sc.empty[q.key])
	case sc.nonZero && numbers > 0 && !nonZero:
		t.Errorf("%s: every figure is zero: %v", q.key, r.rows)
	case sc.zero && nonZero:
		t.Errorf("%s: figures outside the time range: %v", q.key, r.rows)
	}
	return r
}

// crossCheck compares figures that panels of different dashboards, or
// the views directly, must agree on.
func crossCheck(t *testing.T, db *sql.DB, sc scenario, res map[string]*result) {
	t.Helper()
	get := func(key string) *result {
		r := res[key]
		if r == nil {
			t.Fatalf("no result for %s", key)
		}
		return r
	}
	direct := func(q string) float64 {
		q, err := expandMacros(q, sc.w, testInterval)
		if err != nil {
			t.Fatal(err)
		}
		r, err := run(db, q)
		if err != nil || len(r.rows) != 1 {
			t.Fatalf("%s: %v", q, err)
		}
		f, _ := number(r.rows[0][0])
		return f
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"overview messages = sum of the domains table",
			get("dmarcd-overview: Messages").sum(t, "messages"), get("dmarcd-overview: Domains").sum(t, "messages")},
		{"overview messages = messages of the records",
			get("dmarcd-overview: Messages").sum(t, "messages"), direct("SELECT sum(count) FROM records WHERE $__dateFilter(day)")},
		{"overview messages = messages reported per reporter",
			get("dmarcd-overview: Messages").sum(t, "messages"), get("dmarcd-reporters: Messages reported").sum(t, "messages")},
		{"overview messages = sum of the daily series",
			get("dmarcd-overview: Messages").sum(t, "messages"), get("dmarcd-overview: Messages per domain").sum(t, "messages")},
		{"dispositions: series = pie",
			get("dmarcd-overview: Dispositions applied by receivers").sum(t, "delivered") +
				get("dmarcd-overview: Dispositions applied by receivers").sum(t, "quarantined") +
				get("dmarcd-overview: Dispositions applied by receivers").sum(t, "rejected"),
			get("dmarcd-overview: Dispositions").sum(t, "messages")},
		{"reports = the reports view",
			get("dmarcd-reporters: Reports").sum(t, "reports"), direct("SELECT count() FROM reports WHERE $__dateFilter(day)")},
		{"reports per reporter = reports",
			get("dmarcd-reporters: Reports per reporter").sum(t, "reports"), get("dmarcd-reporters: Reports").sum(t, "reports")},
		{"sources: failing messages = sum over the classes",
			get("dmarcd-sources: Failing messages").sum(t, "failing"), get("dmarcd-sources: Classes (approximate)").sum(t, "failing")},
		{"sources: failing messages = failing per day by class",
			get("dmarcd-sources: Failing messages").sum(t, "failing"), get("dmarcd-sources: Failing messages per day by class").sum(t, "failing")},
		{"sources: failing messages = overview messages - DMARC pass",
			get("dmarcd-sources: Failing messages").sum(t, "failing"),
			get("dmarcd-overview: Messages").sum(t, "messages") - direct("SELECT sum(dmarc_pass) FROM daily_domains WHERE $__dateFilter(day)")},
		{"sources: classes' messages = overview messages",
			get("dmarcd-sources: Classes (approximate)").sum(t, "messages"), get("dmarcd-overview: Messages").sum(t, "messages")},
		{"selectors: messages per selector = the rotation table",
			get("dmarcd-dkim-selectors: Messages per selector").sum(t, "messages"), get("dmarcd-dkim-selectors: Selectors: rotation health").sum(t, "messages")},
		{"failures: count = per domain, day and failure",
			get("dmarcd-failures: Failure reports").sum(t, "reports"), get("dmarcd-failures: Per domain, day and failure").sum(t, "reports")},
		{"failures: count = rows of the headers table",
			get("dmarcd-failures: Failure reports").sum(t, "reports"), float64(len(get("dmarcd-failures: Failure reports (headers only)").rows))},
		{"failures: count = the failures view",
			get("dmarcd-failures: Failure reports").sum(t, "reports"),
			direct("SELECT count() FROM failures WHERE $__timeFilter(coalesce(arrival_date, report_date, received_at)) AND domain != ''")},
	} {
		if c.got != c.want || c.got == 0 {
			t.Errorf("%s: %v, want %v (and not 0)", c.name, c.got, c.want)
		}
	}
}
