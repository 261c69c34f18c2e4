package imapd

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 for mailbox names (RFC 3501 §5.1.3), used with clients
// that have not enabled UTF8=ACCEPT or IMAP4rev2.

var mb64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

var errBadUTF7 = errors.New("invalid modified UTF-7")

// encodeMUTF7 encodes a UTF-8 name.
func encodeMUTF7(s string) string {
	var sb strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		buf := make([]byte, 2*len(u))
		for i, x := range u {
			buf[2*i], buf[2*i+1] = byte(x>>8), byte(x)
		}
		sb.WriteByte('&')
		sb.WriteString(mb64.EncodeToString(buf))
		sb.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				sb.WriteString("&-")
			} else {
				sb.WriteRune(r)
			}
			continue
		}
		run = append(run, r)
	}
	flush()
	return sb.String()
}

// decodeMUTF7 decodes a modified UTF-7 name into UTF-8.
func decodeMUTF7(s string) (string, error) { return decodeMUTF7Mixed(s, false) }

// decodeMUTF7Mixed decodes modified UTF-7; with raw8bit, bytes of 0x80 and
// above (raw UTF-8, which some rev1 clients send) are kept as they are
// while "&-" and "&...-" are still decoded.
func decodeMUTF7Mixed(s string, raw8bit bool) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if raw8bit && c >= 0x80 {
			sb.WriteByte(c)
			continue
		}
		if c < 0x20 || c > 0x7e {
			return "", errBadUTF7
		}
		if c != '&' {
			sb.WriteByte(c)
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", errBadUTF7
		}
		enc := s[i+1 : i+1+j]
		i += j + 1
		if enc == "" {
			sb.WriteByte('&')
			continue
		}
		raw, err := mb64.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", errBadUTF7
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		runes := utf16.Decode(u)
		for _, r := range runes {
			if r == utf8.RuneError || r >= 0x20 && r <= 0x7e {
				// Printable ASCII must not be encoded (RFC 3501 §5.1.3).
				return "", errBadUTF7
			}
			sb.WriteRune(r)
		}
	}
	return sb.String(), nil
}

// decodeMailbox turns a mailbox argument into the store's UTF-8 name:
// modified UTF-7 unless the client enabled UTF-8 (but valid raw UTF-8 from
// a rev1 client is accepted too), INBOX in any case folded, and no
// control characters.
func (c *conn) decodeMailbox(raw string) (string, error) {
	name := raw
	if !utf8.ValidString(raw) {
		return "", no("CANNOT", "mailbox name is not valid UTF-8")
	}
	if !c.utf8 {
		if isASCII(raw) {
			var err error
			if name, err = decodeMUTF7(raw); err != nil {
				return "", no("CANNOT", "mailbox name is not valid modified UTF-7")
			}
		} else if dec, err := decodeMUTF7Mixed(raw, true); err == nil {
			// Raw UTF-8 from a client that did not enable it, with "&"
			// escaped as modified UTF-7 requires (go-imap's client sends
			// "Ärger &- Co" for "Ärger & Co"): decode the escapes. A name
			// that is not valid that way (a bare "&") is taken as plain
			// UTF-8.
			name = dec
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", no("CANNOT", "mailbox name has control characters")
		}
	}
	return canonicalName(name), nil
}

// canonicalName folds "INBOX" (and an "INBOX/" prefix) to upper case.
func canonicalName(name string) string {
	if len(name) >= 5 && strings.EqualFold(name[:5], "INBOX") && (len(name) == 5 || name[5] == '/') {
		return "INBOX" + name[5:]
	}
	return name
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// wireName is a mailbox name as this client should see it.
func (c *conn) wireName(name string) string {
	if c.utf8 {
		return name
	}
	return encodeMUTF7(name)
}
