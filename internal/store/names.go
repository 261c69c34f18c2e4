package store

import (
	"strings"
	"unicode/utf8"
)

// CanonicalMailboxName validates a mailbox name and returns the form every
// backend stores: "INBOX" upper-cased as the first level. A name is
// invalid (ErrInvalidName) if it is empty, too long or too deep, not
// UTF-8, has an empty level, or contains a control character or an IMAP
// LIST wildcard ('*', '%').
func CanonicalMailboxName(name string) (string, error) {
	if name == "" || len(name) > MaxMailboxNameBytes || !utf8.ValidString(name) {
		return "", ErrInvalidName
	}
	parts := strings.Split(name, Separator)
	if len(parts) > MaxMailboxDepth {
		return "", ErrInvalidName
	}
	for _, p := range parts {
		if p == "" {
			return "", ErrInvalidName
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '*' || r == '%' {
				return "", ErrInvalidName
			}
		}
	}
	if strings.EqualFold(parts[0], InboxName) {
		parts[0] = InboxName
	}
	return strings.Join(parts, Separator), nil
}

// ValidSpecialUse reports whether u is none or one of the RFC 6154
// attributes the store supports.
func ValidSpecialUse(u SpecialUse) bool {
	switch u {
	case SpecialNone, SpecialAll, SpecialArchive, SpecialDrafts,
		SpecialFlagged, SpecialJunk, SpecialSent, SpecialTrash:
		return true
	}
	return false
}
