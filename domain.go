package dmarcd

import (
	"fmt"
	"strings"
)

// SenderDomain is a domain (or subdomain) that sends mail through us, as the
// configuration lists it ([[domain]] in the config file).
type SenderDomain struct {
	// Name is the domain, for example "example.com" or
	// "newsletter.example.com".
	Name string `toml:"name"`
	// IPs are the addresses and networks (CIDR) that send for the domain
	// besides us: other mail servers of the owner, a CRM, a help desk.
	IPs []string `toml:"ips"`
	// SPFIncludes are the SPF include: targets of the services that send
	// for the domain, for example "_spf.google.com".
	SPFIncludes []string `toml:"spf_includes"`
	// RUA and RUF are the addresses aggregate and failure reports go to,
	// as mailto: URIs or bare addresses.
	RUA []string `toml:"rua"`
	RUF []string `toml:"ruf"`
	// Selectors are DKIM selectors used for the domain by other senders
	// (our own come from the key store).
	Selectors []string `toml:"selectors"`
	// NotOurs are senders the owner says are not theirs: sender service
	// IDs (of the catalogue), domains they authenticate as, addresses or
	// CIDR networks. The advisor counts their mail as spoofing, so it no
	// longer holds the rollout.
	NotOurs []string `toml:"not_ours"`
	// Mode says how the domain is set up: "own" merges our servers into
	// the SPF record the domain already publishes; "subdomain" means the
	// domain is a subdomain dedicated to the mail we send, and its parent
	// is left alone.
	Mode string `toml:"mode"`
}

// Setup modes of a SenderDomain.
const (
	ModeOwn       = "own"
	ModeSubdomain = "subdomain"
)

// Policy is a DMARC policy: the p= (or sp=, np=) value.
type Policy string

// The DMARC policies, RFC 9989 §4.7.
const (
	PolicyNone       Policy = "none"
	PolicyQuarantine Policy = "quarantine"
	PolicyReject     Policy = "reject"
)

// RolloutStep is one step of a slow DMARC rollout: a policy applied to a
// percentage of the failing mail.
type RolloutStep struct {
	Policy  Policy
	Percent int // 1..100
}

func (s RolloutStep) String() string {
	if s.Percent == 100 || s.Policy == PolicyNone {
		return string(s.Policy)
	}
	return fmt.Sprintf("%s %d%%", s.Policy, s.Percent)
}

// Rollout is the ladder from monitoring to enforcement: monitor everything,
// then quarantine and reject growing shares of the failing mail.
var Rollout = []RolloutStep{
	{PolicyNone, 100},
	{PolicyQuarantine, 1}, {PolicyQuarantine, 5}, {PolicyQuarantine, 10},
	{PolicyQuarantine, 25}, {PolicyQuarantine, 50}, {PolicyQuarantine, 100},
	{PolicyReject, 1}, {PolicyReject, 5}, {PolicyReject, 10},
	{PolicyReject, 25}, {PolicyReject, 50}, {PolicyReject, 100},
}

// StepIndex returns the position of s in Rollout: the highest step at or
// below s (a record with p=quarantine; pct=7 is at quarantine 5%).
func StepIndex(s RolloutStep) int {
	best := 0
	for i, r := range Rollout {
		if rank(r.Policy) < rank(s.Policy) || r.Policy == s.Policy && r.Percent <= s.Percent {
			best = i
		}
	}
	return best
}

func rank(p Policy) int {
	switch Policy(strings.ToLower(string(p))) {
	case PolicyQuarantine:
		return 1
	case PolicyReject:
		return 2
	}
	return 0
}
