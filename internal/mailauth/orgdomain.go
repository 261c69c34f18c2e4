package mailauth

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// OrgDomain returns the organizational domain of a domain name (RFC 7489
// §3.2): the public suffix plus one label, from the Public Suffix List
// compiled into golang.org/x/net/publicsuffix. A name that is itself a
// public suffix, or is malformed, is its own organizational domain.
func OrgDomain(domain string) string {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}
