package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dmarcd/dmarcd"
	"github.com/dmarcd/dmarcd/advisor"
	"github.com/dmarcd/dmarcd/signer/keystore"
)

// KeysConfig is the [keys] table: the DKIM key store and the durations of
// a rotation.
type KeysConfig struct {
	// Dir is the key store folder (private keys 0600, metadata JSON).
	Dir string `toml:"dir"`
	// RotationPeriodDays: a current key older than this is due for
	// rotation.
	RotationPeriodDays int `toml:"rotation_period_days"`
	// GracePeriodDays: a retired key's record stays published this long.
	GracePeriodDays int `toml:"grace_period_days"`
	// PublishedWaitDays: a new record must be in DNS this long before the
	// key signs.
	PublishedWaitDays int `toml:"published_wait_days"`
	// Algorithms are those of the keys `keys rotate` makes for a domain
	// without a current key: "rsa", "ed25519", or both (side by side).
	Algorithms []string `toml:"algorithms"`
	// RSABits is the size of generated RSA keys.
	RSABits int `toml:"rsa_bits"`
}

func defaultKeysConfig() KeysConfig {
	p := dmarcd.DefaultRotationPolicy
	return KeysConfig{
		Dir:                "dmarcd-keys",
		RotationPeriodDays: int(p.RotationPeriod / (24 * time.Hour)),
		GracePeriodDays:    int(p.GracePeriod / (24 * time.Hour)),
		PublishedWaitDays:  int(p.PublishedWait / (24 * time.Hour)),
		Algorithms:         []string{"rsa"},
		RSABits:            keystore.DefaultRSABits,
	}
}

func (k *KeysConfig) validate() error {
	if k.Dir == "" {
		return errors.New("config: keys.dir is empty")
	}
	for name, v := range map[string]int{"rotation_period_days": k.RotationPeriodDays, "grace_period_days": k.GracePeriodDays, "published_wait_days": k.PublishedWaitDays} {
		if v < 0 || v > 3650 {
			return fmt.Errorf("config: keys.%s = %d: want 0 to 3650 days", name, v)
		}
	}
	if k.RotationPeriodDays == 0 {
		return errors.New("config: keys.rotation_period_days must be at least 1")
	}
	for _, a := range k.Algorithms {
		if a != "rsa" && a != "ed25519" {
			return fmt.Errorf("config: keys.algorithms: %q: want rsa or ed25519", a)
		}
	}
	if k.RSABits < keystore.MinRSABits || k.RSABits > keystore.MaxRSABits {
		return fmt.Errorf("config: keys.rsa_bits = %d: want %d to %d", k.RSABits, keystore.MinRSABits, keystore.MaxRSABits)
	}
	return nil
}

func (k *KeysConfig) policy() dmarcd.RotationPolicy {
	d := 24 * time.Hour
	return dmarcd.RotationPolicy{
		RotationPeriod: time.Duration(k.RotationPeriodDays) * d,
		GracePeriod:    time.Duration(k.GracePeriodDays) * d,
		PublishedWait:  time.Duration(k.PublishedWaitDays) * d,
	}
}

type keysCmd struct {
	Dir string `help:"Key store folder; overrides keys.dir of the config file (default dmarcd-keys)." env:"DMARCD_KEYS_DIR" placeholder:"DIR" type:"path"`

	Generate keysGenerateCmd `cmd:"" help:"Generate a key (state created) and print the DNS record to publish."`
	Import   keysImportCmd   `cmd:"" help:"Import a private key (PEM: PKCS#1 or PKCS#8, as opendkim-genkey and openssl write them), checked against its published record."`
	List     keysListCmd     `cmd:"" help:"List the keys and their states."`
	DNS      keysDNSCmd      `cmd:"" name:"dns" help:"Print the TXT records to publish (zone file form; revoked keys with an empty p=)."`
	Rotate   keysRotateCmd   `cmd:"" help:"Start a rotation: create the next key of a domain and print what to publish and the plan."`
	Advance  keysAdvanceCmd  `cmd:"" help:"Move each key whose checks pass to its next state (DNS, wait times, aggregate reports), and say why the others wait."`
	Retire   keysRetireCmd   `cmd:"" help:"Stop signing with a key (current or signing) at once; its record stays published for the grace period."`
}

func (c *keysCmd) open(e *env) (*keystore.Store, error) {
	dir := e.cfg.Keys.Dir
	if c.Dir != "" {
		dir = c.Dir
	}
	ks, err := keystore.Open(dir)
	if err != nil {
		return nil, err
	}
	ks.SetClock(func() time.Time { return e.now().UTC().Truncate(time.Second) })
	return ks, nil
}

// list opens the key store and lists its keys whose metadata reads; the
// others are said on stderr and make the command fail at its end (see
// keyProblems), after it did its work on the readable ones.
func (c *keysCmd) list(e *env) (*keystore.Store, []dmarcd.Key, keyProblems, error) {
	st, err := c.open(e)
	if err != nil {
		return nil, nil, nil, err
	}
	keys, problems, err := st.Scan()
	for _, p := range problems {
		fmt.Fprintf(e.stderr, "dmarcd: key %s cannot be read, and is left alone: %v\n", p.ID, p.Err)
	}
	return st, keys, keyProblems(problems), err
}

// keyProblems are the keys a keys command could not read.
type keyProblems []keystore.KeyProblem

// in says whether one of the problems is a key of domain.
func (p keyProblems) in(domain string) bool {
	for _, kp := range p {
		if strings.HasSuffix(kp.ID, "._domainkey."+domain) {
			return true
		}
	}
	return false
}

// err is the command's end when keys could not be read: exit 1, so that a
// script or cron notices.
func (p keyProblems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &exitError{code: exitFailure, err: fmt.Errorf("%d key(s) of the key store cannot be read (see above): restore their files from a backup, or remove them", len(p))}
}

// txtLookup asks the configured resolver for TXT records; a name that does
// not exist has no records.
func txtLookup(cfg DNSConfig) func(ctx context.Context, name string) ([]string, error) {
	resolver := sync.OnceValues(func() (*advisor.Resolver, error) { return newResolver(cfg) })
	return func(ctx context.Context, name string) ([]string, error) {
		r, err := resolver()
		if err != nil {
			return nil, err
		}
		txts, err := r.TXT(ctx, name)
		if advisor.IsNotFound(err) {
			return nil, nil
		}
		return txts, err
	}
}

type keysGenerateCmd struct {
	Domain    string `required:"" help:"Signing domain (d=)."`
	Selector  string `required:"" help:"Selector (s=): the record goes to SELECTOR._domainkey.DOMAIN."`
	Algorithm string `help:"rsa or ed25519 (RFC 8463; not all receivers verify it yet: use it beside an RSA key)." enum:"rsa,ed25519" default:"rsa"`
	Bits      int    `help:"RSA key size (1024 to 4096; default keys.rsa_bits, 2048)."`
}

func (c *keysGenerateCmd) Run(e *env, k *keysCmd) error {
	st, err := k.open(e)
	if err != nil {
		return err
	}
	bits := c.Bits
	if bits == 0 && c.Algorithm == "rsa" {
		bits = e.cfg.Keys.RSABits
	}
	key, err := st.Generate(keystore.GenerateOptions{Domain: c.Domain, Selector: c.Selector, Algorithm: c.Algorithm, Bits: bits})
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	e.log.Info("key generated", "key", key.ID(), "algorithm", key.Algorithm, "bits", key.Bits)
	fmt.Fprintf(e.stdout, "Generated %s (%s, %d bits), state %s. Publish:\n\n%s\n\nthen run: dmarcd keys advance --domain %s\n",
		key.ID(), key.Algorithm, key.Bits, key.State, keystore.BIND(key), key.Domain)
	return nil
}

type keysImportCmd struct {
	Domain   string `required:"" help:"Signing domain (d=)."`
	Selector string `required:"" help:"Selector (s=)."`
	Offline  bool   `help:"Do not look up the selector's record (by default an import whose record holds another key is refused, and a key whose record is published is imported as published)."`
	File     string `arg:"" help:"PEM file of the private key (for example opendkim-genkey's SELECTOR.private)." type:"existingfile"`
}

func (c *keysImportCmd) Run(e *env, k *keysCmd) error {
	st, err := k.open(e)
	if err != nil {
		return err
	}
	f, err := os.Open(c.File)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(f, keystore.MaxKeyFileBytes+1))
	f.Close()
	if err != nil {
		return err
	}
	opts := keystore.ImportOptions{Domain: c.Domain, Selector: c.Selector, PEM: data}
	if !c.Offline {
		opts.Lookup = txtLookup(e.cfg.DNS)
	}
	key, err := st.Import(e.ctx, opts)
	clear(data)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("importing %s: %w", c.File, err)}
	}
	e.log.Info("key imported", "key", key.ID(), "algorithm", key.Algorithm, "bits", key.Bits, "state", key.State)
	fmt.Fprintf(e.stdout, "Imported %s (%s, %d bits), state %s. Its record:\n\n%s\n", key.ID(), key.Algorithm, key.Bits, key.State, keystore.BIND(key))
	return nil
}

type keysListCmd struct {
	Domain string `help:"Only the keys of this domain."`
}

func (c *keysListCmd) Run(e *env, k *keysCmd) error {
	st, keys, problems, err := k.list(e)
	if err != nil {
		return err
	}
	policy := e.cfg.Keys.policy()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tSELECTOR\tALGORITHM\tBITS\tSTATE\tSINCE\tCREATED\tNOTE")
	for _, key := range keys {
		if c.Domain != "" && key.Domain != c.Domain {
			continue
		}
		note := ""
		if key.State == dmarcd.KeyCurrent && e.now().Sub(key.Created) >= policy.RotationPeriod {
			note = "rotation due"
		}
		if key.State.Signs() {
			if _, err := st.Signer(key.Domain, key.Selector); err != nil {
				note = "CANNOT SIGN: " + err.Error()
				problems = append(problems, keystore.KeyProblem{ID: key.ID(), Err: err})
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", key.Domain, key.Selector, key.Algorithm, key.Bits, key.State,
			key.StateSince.Format(time.DateOnly), key.Created.Format(time.DateOnly), note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return problems.err()
}

type keysDNSCmd struct {
	Domain string `help:"Only the records of this domain."`
}

func (c *keysDNSCmd) Run(e *env, k *keysCmd) error {
	_, keys, problems, err := k.list(e)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if key.State == dmarcd.KeyDeleted || c.Domain != "" && key.Domain != c.Domain {
			continue
		}
		fmt.Fprintf(e.stdout, "; %s, %s\n%s\n", key.State, key.Algorithm, keystore.BIND(key))
	}
	return problems.err()
}

type keysRotateCmd struct {
	Domain    string `required:"" help:"The domain whose key(s) to rotate."`
	Algorithm string `help:"Rotate only the key of this algorithm (rsa or ed25519); default: each current key, or keys.algorithms for a domain without one." enum:"rsa,ed25519," default:""`
	Selector  string `help:"Selector of the new key (default: r or e, then the year and month, e.g. r202607)."`
}

func (c *keysRotateCmd) Run(e *env, k *keysCmd) error {
	st, keys, problems, err := k.list(e)
	if err != nil {
		return err
	}
	if problems.in(c.Domain) {
		// Which key is current cannot be known: starting a rotation
		// could leave two current keys.
		return &exitError{code: exitFailure, err: fmt.Errorf("a key of %s cannot be read: repair it before rotating", c.Domain)}
	}
	// One new key per algorithm: that of each current key, or the
	// configured ones.
	olds := map[string]*dmarcd.Key{}
	var algs []string
	for i, key := range keys {
		if key.Domain == c.Domain && key.State == dmarcd.KeyCurrent {
			alg := key.KeyType()
			if c.Algorithm == "" || c.Algorithm == alg {
				olds[alg] = &keys[i]
				algs = append(algs, alg)
			}
		}
	}
	if len(algs) == 0 {
		algs = e.cfg.Keys.Algorithms
		if c.Algorithm != "" {
			algs = []string{c.Algorithm}
		}
	}
	if c.Selector != "" && len(algs) > 1 {
		return &exitError{code: exitUsage, err: errors.New("--selector names one key: give --algorithm too")}
	}
	policy := e.cfg.Keys.policy()
	for _, alg := range algs {
		sel := c.Selector
		if sel == "" {
			sel = keystore.NextSelector(alg, keys, c.Domain, e.now())
		}
		bits := 0
		if alg == "rsa" {
			bits = e.cfg.Keys.RSABits
			if old := olds[alg]; old != nil && old.Bits > bits {
				bits = old.Bits
			}
		}
		key, err := st.Generate(keystore.GenerateOptions{Domain: c.Domain, Selector: sel, Algorithm: alg, Bits: bits})
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		e.log.Info("rotation started", "key", key.ID(), "algorithm", key.Algorithm)
		oldSel := "(none)"
		if old := olds[alg]; old != nil {
			oldSel = old.Selector
		}
		fmt.Fprintf(e.stdout, "Rotation of %s (%s): %s -> %s\n\n1. Publish now:\n   %s\n", c.Domain, key.Algorithm, oldSel, key.Selector, keystore.BIND(key))
		fmt.Fprintf(e.stdout, "2. Once the record is in DNS, `dmarcd keys advance` moves %s to published.\n", key.Selector)
		fmt.Fprintf(e.stdout, "3. %d days later, `dmarcd keys advance` moves it to signing: mail carries both signatures.\n", e.cfg.Keys.PublishedWaitDays)
		fmt.Fprintf(e.stdout, "4. When the aggregate reports show %s passing at the large reporters, `dmarcd keys advance` makes it current; %s retires and stops signing.\n", key.Selector, oldSel)
		fmt.Fprintf(e.stdout, "5. After the grace period of %d days, and once no report shows %s, `dmarcd keys advance` revokes it: publish its record with p= (`dmarcd keys dns`).\n", e.cfg.Keys.GracePeriodDays, oldSel)
		fmt.Fprintf(e.stdout, "6. Then `dmarcd keys advance` deletes its private key; the record may go. Next rotation due in %d days.\n\n", int(policy.RotationPeriod.Hours()/24))
	}
	return problems.err()
}

type keysAdvanceCmd struct {
	Domain   string `help:"Only the keys of this domain."`
	Selector string `help:"Only this key (with --domain)."`
	DryRun   bool   `help:"Say what would move, move nothing."`
	Force    bool   `help:"Move the key given by --domain and --selector to its next state even when the checks do not pass."`
}

func (c *keysAdvanceCmd) Run(e *env, k *keysCmd) error {
	if c.Force && (c.Domain == "" || c.Selector == "") {
		return &exitError{code: exitUsage, err: errors.New("--force needs --domain and --selector")}
	}
	st, keys, problems, err := k.list(e)
	if err != nil {
		return err
	}
	a := &advisor.KeyAdvisor{Policy: e.cfg.Keys.policy(), Lookup: txtLookup(e.cfg.DNS), Now: e.now}
	if store, err := e.openStoreReadOnly(); err != nil {
		e.log.Warn("no report store: the checks that read aggregate reports cannot pass", "err", err)
	} else {
		defer store.Close()
		a.Store = store
	}
	advice, err := a.Advise(e.ctx, keys)
	if err != nil {
		return err
	}
	for _, adv := range advice {
		key := adv.Key
		if c.Domain != "" && key.Domain != c.Domain || c.Selector != "" && key.Selector != c.Selector {
			continue
		}
		next := adv.Next
		if next == "" || !adv.Ready && !c.Force {
			note := ""
			if adv.RotationDue {
				note = " [rotation due]"
			}
			fmt.Fprintf(e.stdout, "%s: %s, stays%s: %s\n", key.ID(), key.State, note, adv.Reason)
			continue
		}
		how := "checks pass"
		if !adv.Ready {
			how = "forced; checks do not pass"
		}
		if c.DryRun {
			fmt.Fprintf(e.stdout, "%s: %s -> %s would move (%s): %s\n", key.ID(), key.State, next, how, adv.Reason)
			continue
		}
		if next == dmarcd.KeyCurrent && problems.in(key.Domain) {
			// Becoming current retires the domain's current key, which
			// may be the one that cannot be read.
			fmt.Fprintf(e.stdout, "%s: %s, stays: another key of %s cannot be read, so its current key is unknown\n", key.ID(), key.State, key.Domain)
			continue
		}
		moves, err := st.Transition(key.Domain, key.Selector, next)
		if err != nil {
			return err
		}
		for _, m := range moves {
			e.log.Info("key moved", "key", m.Key.ID(), "from", m.From, "to", m.To, "forced", !adv.Ready)
			fmt.Fprintf(e.stdout, "%s: %s -> %s (%s): %s\n", m.Key.ID(), m.From, m.To, how, adv.Reason)
			if m.To == dmarcd.KeyRevoked {
				fmt.Fprintf(e.stdout, "  publish: %s\n", keystore.BIND(m.Key))
			}
		}
	}
	return problems.err()
}

type keysRetireCmd struct {
	Domain   string `required:"" help:"Signing domain."`
	Selector string `required:"" help:"Selector of the key to retire."`
}

func (c *keysRetireCmd) Run(e *env, k *keysCmd) error {
	st, err := k.open(e)
	if err != nil {
		return err
	}
	moves, err := st.Transition(c.Domain, c.Selector, dmarcd.KeyRetired)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	for _, m := range moves {
		e.log.Info("key moved", "key", m.Key.ID(), "from", m.From, "to", m.To)
		fmt.Fprintf(e.stdout, "%s: %s -> %s; it no longer signs, its record stays published for %d days (then `dmarcd keys advance`).\n",
			m.Key.ID(), m.From, m.To, e.cfg.Keys.GracePeriodDays)
	}
	return nil
}
