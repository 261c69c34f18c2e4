package smtpd

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/skrytka/skrytka/internal/store"
)

// Address limits (RFC 5321 §4.5.3.1.1-3).
const (
	maxLocalPartBytes = 64
	maxDomainBytes    = 255
	maxPathBytes      = 256
)

var (
	errAddrSyntax = errors.New("smtpd: bad address syntax")
	errNotLocal   = errors.New("smtpd: domain is not local")
)

// mailAddr is a parsed envelope address.
type mailAddr struct {
	Local  string // as sent (go-smtp has removed any quoting)
	Domain string // lower-case, no trailing dot
}

// String renders the address as a path body: the local part as a dot-atom
// when it is one, else as a quoted string (RFC 5321 §4.1.2).
func (a mailAddr) String() string {
	return quoteLocal(a.Local) + "@" + a.Domain
}

// key is the lookup form: local part lower-cased, as store accounts are.
func (a mailAddr) key() string { return strings.ToLower(a.Local) + "@" + a.Domain }

// parseAddress checks and splits an address as go-smtp hands it over
// ("local@domain", quotes already removed). The split is at the last "@",
// since a quoted local part may contain "@". It refuses control
// characters, invalid UTF-8, empty parts and over-long parts, and checks the
// domain's syntax (labels of letters, digits, hyphens and non-ASCII UTF-8,
// or an address literal in brackets).
func parseAddress(s string) (mailAddr, error) {
	if len(s) > maxPathBytes || !utf8.ValidString(s) {
		return mailAddr{}, errAddrSyntax
	}
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 {
		return mailAddr{}, errAddrSyntax
	}
	local, domain := s[:i], s[i+1:]
	if len(local) > maxLocalPartBytes {
		return mailAddr{}, errAddrSyntax
	}
	for _, r := range local {
		if r < 0x20 || r == 0x7f {
			return mailAddr{}, errAddrSyntax
		}
	}
	domain = normDomain(domain)
	if !validDomain(domain) {
		return mailAddr{}, errAddrSyntax
	}
	return mailAddr{Local: local, Domain: domain}, nil
}

func normDomain(d string) string {
	return strings.ToLower(strings.TrimSuffix(d, "."))
}

// validDomain accepts a host name or an address literal.
func validDomain(d string) bool {
	if d == "" || len(d) > maxDomainBytes {
		return false
	}
	if d[0] == '[' {
		if d[len(d)-1] != ']' || len(d) < 3 {
			return false
		}
		for _, r := range d[1 : len(d)-1] {
			if r <= ' ' || r == '[' || r == ']' || r == '\\' || r >= 0x7f {
				return false
			}
		}
		return true
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r >= 0x80
			if !ok {
				return false
			}
		}
	}
	return true
}

// atext is RFC 5322 §3.2.3 atext (ASCII) plus UTF-8 (RFC 6532).
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r >= 0x80:
		return true
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// quoteLocal returns local as a dot-atom if it is one, else quoted.
func quoteLocal(local string) string {
	dotAtom := local != "" && local[0] != '.' && local[len(local)-1] != '.' && !strings.Contains(local, "..")
	if dotAtom {
		for _, r := range local {
			if r != '.' && !isAtext(r) {
				dotAtom = false
				break
			}
		}
	}
	if dotAtom {
		return local
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range local {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// normAliasKey normalises a configured alias key or target: the whole
// address lower-cased ("@domain" for a catch-all).
func normAliasKey(s string) string {
	s = strings.TrimSpace(s)
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return strings.ToLower(s)
	}
	return strings.ToLower(s[:i]) + "@" + normDomain(s[i+1:])
}

// resolve maps a local recipient to the accounts that receive its mail:
// an alias of the full address; an account; the address without its
// sub-address tag (again as alias, then account); the domain's catch-all.
// It returns store.ErrNotFound when nobody would receive the mail.
func (s *Server) resolve(ctx context.Context, a mailAddr) ([]store.Account, error) {
	seen := map[string]bool{}
	accts, err := s.resolveKey(ctx, a.key(), 0, seen)
	if err == nil && len(accts) > 0 {
		return accts, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if targets, ok := s.aliases["@"+a.Domain]; ok {
		return s.expand(ctx, targets, 0, seen)
	}
	return nil, store.ErrNotFound
}

func (s *Server) resolveKey(ctx context.Context, key string, depth int, seen map[string]bool) ([]store.Account, error) {
	if depth > maxAliasDepth || seen[key] {
		return nil, store.ErrNotFound
	}
	seen[key] = true
	if targets, ok := s.aliases[key]; ok {
		return s.expand(ctx, targets, depth, seen)
	}
	acct, err := s.opts.Store.Account(ctx, key)
	if err == nil {
		return []store.Account{acct}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if base, ok := s.stripTag(key); ok {
		return s.resolveKey(ctx, base, depth, seen)
	}
	return nil, store.ErrNotFound
}

// expand resolves alias targets, keeping those that exist.
func (s *Server) expand(ctx context.Context, targets []string, depth int, seen map[string]bool) ([]store.Account, error) {
	var out []store.Account
	for _, t := range targets {
		i := strings.LastIndexByte(t, '@')
		if i < 0 || !s.isLocalDomain(t[i+1:]) {
			continue // we do not forward off this server
		}
		accts, err := s.resolveKey(ctx, t, depth+1, seen)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = appendUnique(out, accts...)
	}
	if len(out) == 0 {
		return nil, store.ErrNotFound
	}
	return out, nil
}

func appendUnique(list []store.Account, add ...store.Account) []store.Account {
next:
	for _, a := range add {
		for _, b := range list {
			if a.ID == b.ID {
				continue next
			}
		}
		list = append(list, a)
	}
	return list
}

// stripTag removes a sub-address tag (RFC 5233) from key: "user+tag@d" →
// "user@d". A local part that starts with a delimiter is left alone.
func (s *Server) stripTag(key string) (string, bool) {
	if s.delims == "" {
		return "", false
	}
	at := strings.LastIndexByte(key, '@')
	local := key[:at]
	i := strings.IndexAny(local, s.delims)
	if i <= 0 {
		return "", false
	}
	return local[:i] + key[at:], true
}
