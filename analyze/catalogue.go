package analyze

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// ServiceKind says what a sending service does with mail.
type ServiceKind string

const (
	// KindMailbox hosts users' mailboxes; its users also forward from it,
	// so its servers carry forwarded mail as well as the customer's own.
	KindMailbox ServiceKind = "mailbox"
	// KindESP sends bulk or transactional mail for its customers.
	KindESP ServiceKind = "esp"
	// KindSaaS is an application that sends mail as its customers (a CRM,
	// a help desk).
	KindSaaS ServiceKind = "saas"
	// KindForwarder forwards or redistributes mail: mailing lists, alias
	// services.
	KindForwarder ServiceKind = "forwarder"
)

// Service is one sending service of the catalogue (senders.toml documents
// every field), or of the user's [[sender]] tables.
type Service struct {
	ID              string      `toml:"id" json:"id"`
	Name            string      `toml:"name" json:"name"`
	Kind            ServiceKind `toml:"kind" json:"kind"`
	DKIMDomains     []string    `toml:"dkim_domains" json:"dkim_domains,omitempty"`
	EnvelopeDomains []string    `toml:"envelope_domains" json:"envelope_domains,omitempty"`
	PTRDomains      []string    `toml:"ptr_domains" json:"ptr_domains,omitempty"`
	SPFInclude      string      `toml:"spf_include" json:"spf_include,omitempty"`
	DKIMSelector    string      `toml:"dkim_selector" json:"dkim_selector,omitempty"`
	DKIMSetup       string      `toml:"dkim_setup" json:"dkim_setup,omitempty"`
	ReturnPathSetup string      `toml:"return_path_setup" json:"return_path_setup,omitempty"`
}

// Instructions returns a setup text of the service with {domain} and
// {selector} filled in.
func (s *Service) Instructions(text, domain string) string {
	sel := s.DKIMSelector
	if sel == "" {
		sel = "SELECTOR"
	}
	return strings.NewReplacer("{domain}", domain, "{selector}", sel).Replace(text)
}

// CatalogueFormat is the format of senders.toml this code reads.
const CatalogueFormat = 1

//go:embed senders.toml
var catalogueData []byte

// Catalogue is the list of known sending services and how to recognise
// them.
type Catalogue struct {
	// Updated is the day the catalogue was last revised.
	Updated  string
	Services []Service
}

var serviceIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// DefaultCatalogue is the catalogue shipped with dmarcd (analyze/senders.toml).
var DefaultCatalogue = func() *Catalogue {
	c, err := ParseCatalogue(catalogueData)
	if err != nil {
		panic("analyze: senders.toml: " + err.Error()) // a test reads it too
	}
	return c
}()

// ParseCatalogue reads a catalogue in the format of senders.toml. Unknown
// keys, a format other than CatalogueFormat and invalid services are
// errors.
func ParseCatalogue(data []byte) (*Catalogue, error) {
	var f struct {
		Format   int       `toml:"format"`
		Updated  string    `toml:"updated"`
		Services []Service `toml:"service"`
	}
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, err
	}
	if un := md.Undecoded(); len(un) > 0 {
		return nil, fmt.Errorf("unknown keys: %v", un)
	}
	if f.Format != CatalogueFormat {
		return nil, fmt.Errorf("format %d, want %d", f.Format, CatalogueFormat)
	}
	c := &Catalogue{Updated: f.Updated}
	if err := c.Add(f.Services...); err != nil {
		return nil, err
	}
	return c, nil
}

// With returns a copy of c with services added; a service with the ID of
// one in c replaces it. The configuration's [[sender]] tables come here.
func (c *Catalogue) With(services ...Service) (*Catalogue, error) {
	out := &Catalogue{Updated: c.Updated, Services: slices.Clone(c.Services)}
	return out, out.Add(services...)
}

// Add validates services and adds them, replacing those of the same ID.
func (c *Catalogue) Add(services ...Service) error {
	for _, s := range services {
		if err := s.validate(); err != nil {
			return err
		}
		s.DKIMDomains, s.EnvelopeDomains, s.PTRDomains = lowerNames(s.DKIMDomains), lowerNames(s.EnvelopeDomains), lowerNames(s.PTRDomains)
		if i := slices.IndexFunc(c.Services, func(x Service) bool { return x.ID == s.ID }); i >= 0 {
			c.Services[i] = s
		} else {
			c.Services = append(c.Services, s)
		}
	}
	return nil
}

func (s *Service) validate() error {
	if !serviceIDRE.MatchString(s.ID) {
		return fmt.Errorf("service %q: id must be lower case letters, digits and \"-\"", s.ID)
	}
	if s.Name == "" {
		return fmt.Errorf("service %s: no name", s.ID)
	}
	switch s.Kind {
	case KindMailbox, KindESP, KindSaaS, KindForwarder:
	default:
		return fmt.Errorf("service %s: kind %q: want mailbox, esp, saas or forwarder", s.ID, s.Kind)
	}
	if len(s.DKIMDomains)+len(s.EnvelopeDomains)+len(s.PTRDomains) == 0 {
		return fmt.Errorf("service %s: no dkim_domains, envelope_domains or ptr_domains to recognise it by", s.ID)
	}
	return nil
}

// ByID returns the service with id, nil when there is none.
func (c *Catalogue) ByID(id string) *Service {
	for i := range c.Services {
		if c.Services[i].ID == id {
			return &c.Services[i]
		}
	}
	return nil
}

// The identifiers a service is recognised by.
const (
	matchDKIM     = "dkim"
	matchEnvelope = "envelope"
	matchPTR      = "ptr"
)

// match returns the first service whose identifiers of the kind hold name
// (a domain matches itself and every name below it), nil when none does.
func (c *Catalogue) match(kind, name string) *Service {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" || c == nil {
		return nil
	}
	for i := range c.Services {
		s := &c.Services[i]
		var list []string
		switch kind {
		case matchDKIM:
			list = s.DKIMDomains
		case matchEnvelope:
			list = s.EnvelopeDomains
		case matchPTR:
			list = s.PTRDomains
		}
		for _, d := range list {
			if name == d || strings.HasSuffix(name, "."+d) {
				return s
			}
		}
	}
	return nil
}

func lowerNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), ".")); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ErrUnknownService is returned for an ID that no service of the catalogue
// has.
var ErrUnknownService = errors.New("no such service in the catalogue")
