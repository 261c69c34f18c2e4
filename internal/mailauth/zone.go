package mailauth

import (
	"context"
	"net"
	"strings"
	"sync"
)

// Zone is an in-memory DNS zone implementing Resolver. Tests use it to run
// SPF, DKIM and DMARC checks without a network; a server without outside
// DNS (a closed test bed) can use it too. Names are matched
// case-insensitively, with or without a trailing dot. A name with no records
// of the asked type answers "not found" (NXDOMAIN), the way SPF and DMARC
// expect; a name listed in TempFail answers a temporary error (SERVFAIL).
//
// A Zone must not be modified while it is in use, except through its
// methods, which lock.
type Zone struct {
	mu       sync.RWMutex
	txt      map[string][]string
	mx       map[string][]*net.MX
	ip       map[string][]net.IPAddr
	ptr      map[string][]string
	tempFail map[string]bool
}

func zoneKey(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func (z *Zone) init() {
	if z.txt == nil {
		z.txt = map[string][]string{}
		z.mx = map[string][]*net.MX{}
		z.ip = map[string][]net.IPAddr{}
		z.ptr = map[string][]string{}
		z.tempFail = map[string]bool{}
	}
}

// AddTXT adds a TXT record.
func (z *Zone) AddTXT(name, txt string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.init()
	k := zoneKey(name)
	z.txt[k] = append(z.txt[k], txt)
}

// AddMX adds an MX record.
func (z *Zone) AddMX(name, host string, pref uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.init()
	k := zoneKey(name)
	z.mx[k] = append(z.mx[k], &net.MX{Host: host, Pref: pref})
}

// AddIP adds an A or AAAA record (and the matching PTR record).
func (z *Zone) AddIP(name string, ip net.IP) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.init()
	k := zoneKey(name)
	z.ip[k] = append(z.ip[k], net.IPAddr{IP: ip})
	z.ptr[ip.String()] = append(z.ptr[ip.String()], k+".")
}

// SetTempFail makes every lookup of name fail with a temporary error.
func (z *Zone) SetTempFail(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.init()
	z.tempFail[zoneKey(name)] = true
}

func (z *Zone) lookup(name string, m func() bool) error {
	k := zoneKey(name)
	if z.tempFail[k] {
		return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	if !m() {
		return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return nil
}

// LookupTXT implements Resolver.
func (z *Zone) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	var out []string
	err := z.lookup(name, func() bool { out = z.txt[zoneKey(name)]; return len(out) > 0 })
	return append([]string(nil), out...), err
}

// LookupMX implements Resolver.
func (z *Zone) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	var out []*net.MX
	err := z.lookup(name, func() bool { out = z.mx[zoneKey(name)]; return len(out) > 0 })
	cp := make([]*net.MX, len(out))
	for i, mx := range out {
		c := *mx
		cp[i] = &c
	}
	return cp, err
}

// LookupIPAddr implements Resolver.
func (z *Zone) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	var out []net.IPAddr
	err := z.lookup(host, func() bool { out = z.ip[zoneKey(host)]; return len(out) > 0 })
	return append([]net.IPAddr(nil), out...), err
}

// LookupAddr implements Resolver (reverse lookup).
func (z *Zone) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	z.mu.RLock()
	defer z.mu.RUnlock()
	var out []string
	err := z.lookup(addr, func() bool { out = z.ptr[addr]; return len(out) > 0 })
	return append([]string(nil), out...), err
}
