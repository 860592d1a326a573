package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/dmarcd/dmarcd/dashboards/accounts"
)

// openAccounts opens the dashboard's state file (web.accounts_file): the
// organisations, users, sessions and audit log.
func (e *env) openAccounts() (*accounts.Store, error) {
	path := e.cfg.Web.AccountsFile
	if path == "" {
		return nil, &exitError{code: exitUsage, err: errors.New("web.accounts_file is not set: name the dashboard's state file in [web] (for example /var/lib/dmarcd/state.db)")}
	}
	st, err := accounts.Open(e.ctx, path)
	if err != nil {
		return nil, err
	}
	st.SetClock(e.now)
	return st, nil
}

// accountsOrg opens the state file and finds the organisation named: the
// commands about one organisation. The caller closes st.
func (e *env) accountsOrg(name string) (*accounts.Store, accounts.Org, error) {
	st, err := e.openAccounts()
	if err != nil {
		return nil, accounts.Org{}, err
	}
	org, err := st.OrgByName(e.ctx, name)
	if err != nil {
		st.Close()
		return nil, accounts.Org{}, &exitError{code: exitUsage, err: err}
	}
	return st, org, nil
}

// cliAudit records a change made on the command line.
func cliAudit(e *env, st *accounts.Store, org, action, object, detail string) error {
	return st.Audit(e.ctx, accounts.AuditEntry{Actor: "cli", Org: org, Action: action, Object: object, Detail: detail})
}

type orgCmd struct {
	Add    orgAddCmd    `cmd:"" help:"Add an organisation, with the sender domains it owns."`
	Domain orgDomainCmd `cmd:"" help:"Give a sender domain (with its subdomains) to an organisation, or take it away (--remove)."`
	List   orgListCmd   `cmd:"" help:"List the organisations and their domains."`
	Slack  orgSlackCmd  `cmd:"" help:"Set an organisation's own Slack channel (an incoming webhook) for the alerts about its domains and its weekly recommendation, or remove it (--remove)."`
}

type orgAddCmd struct {
	Name    string   `arg:"" help:"The organisation's name."`
	Domains []string `name:"domain" help:"A sender domain it owns, with its subdomains (repeat for more)."`
}

func (c *orgAddCmd) Run(e *env) error {
	st, err := e.openAccounts()
	if err != nil {
		return err
	}
	defer st.Close()
	org, err := st.AddOrg(e.ctx, c.Name)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if err := cliAudit(e, st, org.Name, "org.add", org.Name, ""); err != nil {
		return err
	}
	for _, d := range c.Domains {
		if err := st.AddDomain(e.ctx, org.ID, d); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		if err := cliAudit(e, st, org.Name, "domain.add", d, ""); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "added organisation %s", org.Name)
	if len(c.Domains) > 0 {
		fmt.Fprintf(e.stdout, " owning %s", strings.Join(c.Domains, ", "))
	}
	fmt.Fprintln(e.stdout)
	return nil
}

type orgDomainCmd struct {
	Org    string `arg:"" help:"The organisation."`
	Domain string `arg:"" help:"The sender domain."`
	Remove bool   `help:"Take the domain away instead."`
}

func (c *orgDomainCmd) Run(e *env) error {
	st, org, err := e.accountsOrg(c.Org)
	if err != nil {
		return err
	}
	defer st.Close()
	action := "domain.add"
	if c.Remove {
		action, err = "domain.remove", st.RemoveDomain(e.ctx, org.ID, c.Domain)
	} else {
		err = st.AddDomain(e.ctx, org.ID, c.Domain)
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return cliAudit(e, st, org.Name, action, c.Domain, "")
}

type orgSlackCmd struct {
	Org         string `arg:"" help:"The organisation."`
	WebhookFile string `help:"A file holding the incoming webhook URL (a credential: never on the command line). Its start must be one of web.slack_webhook_prefixes." placeholder:"PATH" type:"existingfile"`
	Alerts      bool   `help:"Post the alerts about the organisation's domains." default:"true" negatable:""`
	Weekly      bool   `help:"Post the organisation's part of the weekly recommendation." default:"true" negatable:""`
	Remove      bool   `help:"Remove the organisation's Slack channel instead; its messages not yet posted are kept as undeliverable."`
}

func (c *orgSlackCmd) Run(e *env) error {
	st, org, err := e.accountsOrg(c.Org)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.Remove {
		if err := st.RemoveSlack(e.ctx, org.ID); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		return cliAudit(e, st, org.Name, "slack.remove", org.Name, "")
	}
	detail := fmt.Sprintf("alerts %t, weekly %t", c.Alerts, c.Weekly)
	if c.WebhookFile == "" {
		if err := st.SetSlackOptions(e.ctx, org.ID, c.Alerts, c.Weekly, "cli"); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%w (set one with --webhook-file)", err)}
		}
		return cliAudit(e, st, org.Name, "slack.set", org.Name, detail)
	}
	b, err := os.ReadFile(c.WebhookFile)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	hook := strings.TrimSpace(string(b))
	if err := accounts.CheckWebhookURL(hook, e.cfg.Web.webhookPrefixes()); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if err := st.SetSlack(e.ctx, accounts.SlackDestination{Org: org.ID, WebhookURL: hook, Alerts: c.Alerts, Weekly: c.Weekly, UpdatedBy: "cli"}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s's Slack channel is set (%s)\n", org.Name, detail)
	return cliAudit(e, st, org.Name, "slack.set", org.Name, "a new webhook; "+detail)
}

// slackSummary says what an organisation's channel gets, where (the host
// only: the URL is a credential), and Slack's last refusal.
func slackSummary(d accounts.SlackDestination) string {
	var what []string
	if d.Alerts {
		what = append(what, "alerts")
	}
	if d.Weekly {
		what = append(what, "weekly")
	}
	if len(what) == 0 {
		what = append(what, "nothing")
	}
	s := strings.Join(what, "+") + " to " + d.Host()
	if d.Problem != "" {
		s += " (refused " + d.ProblemAt.Format(time.DateTime) + ": " + d.Problem + ")"
	}
	return s
}

type orgListCmd struct{}

func (c *orgListCmd) Run(e *env) error {
	st, err := e.openAccounts()
	if err != nil {
		return err
	}
	defer st.Close()
	orgs, err := st.Orgs(e.ctx)
	if err != nil {
		return err
	}
	dests, err := st.SlackDestinations(e.ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORGANISATION\tDOMAINS\tSLACK")
	for _, o := range orgs {
		slack := "-"
		if i := slices.IndexFunc(dests, func(d accounts.SlackDestination) bool { return d.Org == o.ID }); i >= 0 {
			slack = slackSummary(dests[i])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", o.Name, strings.Join(o.Domains, ", "), slack)
	}
	return tw.Flush()
}

type userCmd struct {
	Add    userAddCmd    `cmd:"" help:"Add a user; the password is read from the terminal (twice) or from standard input."`
	Passwd userPasswdCmd `cmd:"" help:"Set a user's password (read as for add); their sessions end."`
	Remove userRemoveCmd `cmd:"" help:"Remove a user; their sessions end."`
	Role   userRoleCmd   `cmd:"" help:"Make a user a member of an organisation with a role, or change the role."`
}

type userAddCmd struct {
	Email string `arg:"" help:"The user's e-mail address, with which they log in."`
	Org   string `help:"An organisation to make them a member of."`
	Role  string `help:"Their role there: owner, editor or viewer." default:"viewer" enum:"owner,editor,viewer"`
	Admin bool   `help:"Make them the instance-wide administrator: they see and change everything."`
}

func (c *userAddCmd) Run(e *env) error {
	st, err := e.openAccounts()
	if err != nil {
		return err
	}
	defer st.Close()
	var org accounts.Org
	if c.Org != "" {
		if org, err = st.OrgByName(e.ctx, c.Org); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	} else if !c.Admin {
		return &exitError{code: exitUsage, err: errors.New("give --org (and --role), or --admin: a user of no organisation sees nothing")}
	}
	password, err := readPassword(e, "Password for "+c.Email)
	if err != nil {
		return err
	}
	u, err := st.AddUser(e.ctx, c.Email, password, c.Admin)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	detail := ""
	if c.Admin {
		detail = "administrator"
	}
	if err := cliAudit(e, st, org.Name, "user.add", u.Email, detail); err != nil {
		return err
	}
	if c.Org != "" {
		if err := st.SetRole(e.ctx, u.ID, org.ID, accounts.Role(c.Role)); err != nil {
			return err
		}
		if err := cliAudit(e, st, org.Name, "member.role", u.Email, c.Role); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "added user %s\n", u.Email)
	return nil
}

type userPasswdCmd struct {
	Email string `arg:"" help:"The user's e-mail address."`
}

func (c *userPasswdCmd) Run(e *env) error {
	st, err := e.openAccounts()
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.UserByEmail(e.ctx, c.Email); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	password, err := readPassword(e, "New password for "+c.Email)
	if err != nil {
		return err
	}
	if err := st.SetPassword(e.ctx, c.Email, password); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return cliAudit(e, st, "", "user.passwd", strings.ToLower(c.Email), "")
}

type userRemoveCmd struct {
	Email string `arg:"" help:"The user's e-mail address."`
}

func (c *userRemoveCmd) Run(e *env) error {
	st, err := e.openAccounts()
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RemoveUser(e.ctx, c.Email); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return cliAudit(e, st, "", "user.remove", strings.ToLower(c.Email), "")
}

type userRoleCmd struct {
	Email string `arg:"" help:"The user's e-mail address."`
	Org   string `arg:"" help:"The organisation."`
	Role  string `arg:"" help:"owner, editor or viewer." enum:"owner,editor,viewer"`
}

func (c *userRoleCmd) Run(e *env) error {
	st, err := e.openAccounts()
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByEmail(e.ctx, c.Email)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	org, err := st.OrgByName(e.ctx, c.Org)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if err := st.SetRole(e.ctx, u.ID, org.ID, accounts.Role(c.Role)); err != nil {
		return err
	}
	return cliAudit(e, st, org.Name, "member.role", u.Email, c.Role)
}

// stdinFile is standard input when it is a file (a terminal, a pipe);
// tests give a reader instead.
var stdinFile = os.Stdin

// readPassword reads a password: twice, without echo, from a terminal; one
// line from standard input otherwise (for scripts: printf '%s\n' "$PW" |
// dmarcd user add ...). It is never printed or logged.
func readPassword(e *env, prompt string) (string, error) {
	fd := int(stdinFile.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprintf(e.stderr, "%s: ", prompt)
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(e.stderr, "Again: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", &exitError{code: exitUsage, err: errors.New("the passwords differ")}
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdinFile, accounts.MaxPasswordBytes+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", &exitError{code: exitUsage, err: errors.New("no password on standard input")}
	}
	return line, nil
}

type tokenCmd struct {
	Add    tokenAddCmd    `cmd:"" help:"Make an API token for an organisation; it is printed once."`
	List   tokenListCmd   `cmd:"" help:"List an organisation's API tokens (not the tokens themselves)."`
	Revoke tokenRevokeCmd `cmd:"" help:"Revoke an organisation's API token."`
}

type tokenAddCmd struct {
	Org    string   `arg:"" help:"The organisation."`
	Name   string   `arg:"" help:"A name for the token: who or what uses it (ci, portal)."`
	Scopes []string `name:"scope" help:"read (the domains, records, keys, advice), write (also change them, as an editor) or manage (also set the organisation's Slack channel, as an owner); write includes read, manage both." default:"read" enum:"read,write,manage"`
}

func (c *tokenAddCmd) Run(e *env) error {
	st, org, err := e.accountsOrg(c.Org)
	if err != nil {
		return err
	}
	defer st.Close()
	token, err := st.NewAPIToken(e.ctx, org.ID, c.Name, c.Scopes)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if err := cliAudit(e, st, org.Name, "token.add", c.Name, strings.Join(c.Scopes, " ")); err != nil {
		return err
	}
	// Printed once, on standard output only: the state file keeps its
	// hash.
	fmt.Fprintln(e.stdout, token)
	return nil
}

type tokenListCmd struct {
	Org string `arg:"" help:"The organisation."`
}

func (c *tokenListCmd) Run(e *env) error {
	st, org, err := e.accountsOrg(c.Org)
	if err != nil {
		return err
	}
	defer st.Close()
	tokens, err := st.APITokens(e.ctx, org.ID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPES\tCREATED\tLAST USED")
	for _, t := range tokens {
		used := "never"
		if t.LastUsed.Unix() > 0 {
			used = t.LastUsed.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, strings.Join(t.Scopes, " "), t.Created.Format("2006-01-02"), used)
	}
	return tw.Flush()
}

type tokenRevokeCmd struct {
	Org  string `arg:"" help:"The organisation."`
	Name string `arg:"" help:"The token's name."`
}

func (c *tokenRevokeCmd) Run(e *env) error {
	st, org, err := e.accountsOrg(c.Org)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RevokeAPIToken(e.ctx, org.ID, c.Name); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return cliAudit(e, st, org.Name, "token.revoke", c.Name, "")
}
