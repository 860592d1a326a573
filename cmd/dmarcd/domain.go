package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
)

type domainCmd struct {
	Add domainAddCmd `cmd:"" help:"Print the DNS records a sender domain needs: SPF, DKIM, DMARC (p=none, the rollout start) and the report authorization. On a terminal without flags, asks for what it lacks."`
}

type domainAddCmd struct {
	Domain      string   `arg:"" help:"The sender domain, or a subdomain only for the mail sent through dmarcd (--mode subdomain)."`
	Mode        string   `help:"own: merge into the SPF record the domain publishes; subdomain: records for the subdomain only, its parent left alone (default own)." enum:"own,subdomain," default:""`
	IP          []string `name:"ip" help:"Address or network (CIDR) of another server that sends for the domain; repeat or separate with commas." placeholder:"ADDR"`
	Include     []string `help:"SPF include of a service that sends for the domain, for example _spf.google.com; repeatable." placeholder:"DOMAIN"`
	RUA         []string `name:"rua" help:"Address aggregate reports go to (rua); default the configured [[domain]] rua, else the first [[mailbox]] username." placeholder:"ADDRESS"`
	Format      string   `help:"Output: bind (zone file lines), table (rows for web DNS consoles) or json." enum:"bind,table,json" default:"bind" short:"f"`
	WriteConfig bool     `help:"Append the [[domain]] table to the config file (--config)."`
}

// Standard input, replaced by tests.
var (
	stdin           io.Reader = os.Stdin
	stdinIsTerminal           = func() bool {
		fi, err := os.Stdin.Stat()
		return err == nil && fi.Mode()&os.ModeCharDevice != 0
	}
)

func (c *domainAddCmd) Run(e *env, root *cli) error {
	d := configuredDomain(e.cfg, c.Domain)
	configured := slices.ContainsFunc(e.cfg.Domains, func(x dmarcd.SenderDomain) bool { return strings.EqualFold(x.Name, d.Name) })
	if c.WriteConfig {
		if root.Config == "" {
			return &exitError{code: exitUsage, err: errors.New("--write-config needs the config file: --config FILE")}
		}
		if configured {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s already has a [[domain]] table in %s: edit it there", d.Name, root.Config)}
		}
	}
	flagsGiven := c.Mode != "" || len(c.IP) > 0 || len(c.Include) > 0 || len(c.RUA) > 0
	if c.Mode != "" {
		d.Mode = c.Mode
	}
	d.IPs = appendNew(d.IPs, c.IP...)
	d.SPFIncludes = appendNew(d.SPFIncludes, c.Include...)
	d.RUA = appendNew(d.RUA, c.RUA...)
	if d.Mode == "" {
		d.Mode = dmarcd.ModeOwn
	}
	if len(d.RUA) == 0 {
		d.RUA = defaultRUA(e.cfg)
	}
	if !flagsGiven && stdinIsTerminal() {
		var err error
		if d, err = askDomain(bufio.NewScanner(stdin), e.stderr, d); err != nil {
			return err
		}
	}

	r, err := newResolver(e.cfg.DNS)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	keys, err := dkimKeys(e.cfg, d.Name)
	if err != nil {
		return err
	}
	plan, err := advisor.PlanDomain(e.ctx, r, advisor.DomainSetup{Domain: d, Ours: ourSPF(e.cfg.Sending), DKIM: keys})
	if errors.Is(err, advisor.ErrNoReportAddress) {
		return &exitError{code: exitUsage, err: err}
	}
	if err != nil {
		return err
	}
	switch c.Format {
	case "json":
		err = plan.WriteJSON(e.stdout)
	case "table":
		err = writePlanTable(e.stdout, plan)
	default:
		err = writePlanBIND(e.stdout, plan)
	}
	if err != nil {
		return err
	}
	if c.WriteConfig {
		if err := appendDomainTable(root.Config, d); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "dmarcd: added [[domain]] %s to %s\n", d.Name, root.Config)
	}
	return nil
}

// defaultRUA is the first [[mailbox]] username that is a mail address:
// reports to the mailbox dmarcd reads.
func defaultRUA(cfg Config) []string {
	for _, m := range cfg.Mailboxes {
		if strings.Contains(m.Username, "@") {
			return []string{m.Username}
		}
	}
	return nil
}

func appendNew(have []string, add ...string) []string {
	for _, a := range add {
		a = strings.TrimSpace(a)
		if a != "" && !slices.Contains(have, a) {
			have = append(have, a)
		}
	}
	return have
}

// askDomain asks on the terminal for what the domain's setup lacks, with
// the current values as defaults (Enter keeps them).
func askDomain(in *bufio.Scanner, out io.Writer, d dmarcd.SenderDomain) (dmarcd.SenderDomain, error) {
	ask := func(question, def string) (string, error) {
		fmt.Fprintf(out, "%s [%s]: ", question, def)
		if !in.Scan() {
			if err := in.Err(); err != nil {
				return "", err
			}
			return "", errors.New("no answer (end of input)")
		}
		if a := strings.TrimSpace(in.Text()); a != "" {
			return a, nil
		}
		return def, nil
	}
	list := func(s string) []string {
		var out []string
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			if f != "-" {
				out = append(out, f)
			}
		}
		return out
	}
	fmt.Fprintf(out, "Setting up %s. Enter keeps the value in brackets; \"-\" for none.\n", d.Name)
	for {
		mode, err := ask("Mode: own (merge into the SPF record of "+d.Name+") or subdomain (records for "+d.Name+" only, its parent left alone)", d.Mode)
		if err != nil {
			return d, err
		}
		if mode == dmarcd.ModeOwn || mode == dmarcd.ModeSubdomain {
			d.Mode = mode
			break
		}
		fmt.Fprintln(out, "  answer own or subdomain")
	}
	ips, err := ask("Other servers that send for "+d.Name+" (IP addresses or networks, comma-separated)", orNone(d.IPs))
	if err != nil {
		return d, err
	}
	d.IPs = list(ips)
	incs, err := ask("SPF includes of services that send for "+d.Name+" (for example _spf.google.com)", orNone(d.SPFIncludes))
	if err != nil {
		return d, err
	}
	d.SPFIncludes = list(incs)
	rua, err := ask("Address for the aggregate reports (rua), the mailbox dmarcd reads", orNone(d.RUA))
	if err != nil {
		return d, err
	}
	d.RUA = list(rua)
	fmt.Fprintln(out)
	return d, nil
}

func orNone(vs []string) string {
	if len(vs) == 0 {
		return "-"
	}
	return strings.Join(vs, ", ")
}

// writePlanBIND prints the notes as comments, then the lines of each zone.
func writePlanBIND(w io.Writer, p *advisor.Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "; DNS records for %s (mode %s), by dmarcd\n", p.Domain, p.Mode)
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "; %s\n", n)
	}
	for _, z := range p.Zones() {
		fmt.Fprintf(&b, "\n; ---- in the zone of %s\n", z)
		if err := p.WriteBIND(&b, z); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writePlanTable(w io.Writer, p *advisor.Plan) error {
	fmt.Fprintf(w, "DNS records for %s (mode %s):\n\n", p.Domain, p.Mode)
	if err := p.WriteTable(w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, n := range p.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	return nil
}

// appendDomainTable appends the [[domain]] table of d to the config file,
// after checking that the result still loads.
func appendDomainTable(path string, d dmarcd.SenderDomain) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the config file %s: %w", path, err)
	}
	var b strings.Builder
	b.Write(old)
	if len(old) > 0 && !strings.HasSuffix(string(old), "\n") {
		b.WriteByte('\n')
	}
	b.WriteString("\n[[domain]]\n")
	fmt.Fprintf(&b, "name = %s\n", tomlString(d.Name))
	fmt.Fprintf(&b, "mode = %s\n", tomlString(d.Mode))
	for _, kv := range []struct {
		key  string
		vals []string
	}{{"ips", d.IPs}, {"spf_includes", d.SPFIncludes}, {"rua", d.RUA}, {"ruf", d.RUF}, {"selectors", d.Selectors}} {
		if len(kv.vals) == 0 {
			continue
		}
		quoted := make([]string, len(kv.vals))
		for i, v := range kv.vals {
			quoted[i] = tomlString(v)
		}
		fmt.Fprintf(&b, "%s = [%s]\n", kv.key, strings.Join(quoted, ", "))
	}
	text := b.String()
	var check Config
	md, err := toml.Decode(text, &check)
	if err != nil || len(md.Undecoded()) > 0 {
		return fmt.Errorf("the config file %s would not load with the new [[domain]] table (%v); it is left unchanged", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(text), fi.Mode().Perm()); err != nil {
		return fmt.Errorf("writing the config file %s: %w", path, err)
	}
	return nil
}

// tomlString writes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
