// Package imapwire renders values in IMAP wire format (RFC 9051 §4 and
// §9, RFC 3501 §4 and §9): strings (atom, quoted, literal, NIL), ENVELOPE,
// BODY and BODYSTRUCTURE, and maps BODY[section] specifiers to byte ranges
// of a stored message using the offsets that package mailparse recorded.
//
// Every Append function appends to a []byte and returns the extended slice,
// like strconv.AppendInt: the package does no I/O and holds no state, so the
// IMAP server decides how responses are buffered and flushed.
//
// It depends only on package mailparse and the standard library; it must
// not depend on the store or on any server package.
//
// Invariants: everything appended is syntactically valid IMAP for the
// grammar element named by the function, whatever bytes the input holds
// (NUL octets, which no IMAP string may carry, are dropped; CR and LF force
// a literal). With utf8OK false, only 7-bit octets are ever put in a quoted
// string; 8-bit data goes into a literal, which RFC 3501 allows.
package imapwire

import (
	"strings"
	"unicode/utf8"
)

// maxQuoted is the longest string sent quoted; longer ones are sent as
// literals, which are cheaper to parse for clients and never need escapes.
const maxQuoted = 1024

// AppendNil appends the atom NIL.
func AppendNil(dst []byte) []byte { return append(dst, "NIL"...) }

// AppendNString appends s as an nstring: NIL if s is empty, otherwise a
// quoted string or a literal (see AppendQuotedOrLiteral).
func AppendNString(dst []byte, s string, utf8OK bool) []byte {
	if s == "" {
		return AppendNil(dst)
	}
	return AppendQuotedOrLiteral(dst, s, utf8OK)
}

// AppendString appends s as an IMAP string (quoted or literal; "" for the
// empty string). Use it where the grammar says string, not nstring.
func AppendString(dst []byte, s string, utf8OK bool) []byte {
	return AppendQuotedOrLiteral(dst, s, utf8OK)
}

// AppendAString appends s as an astring: a bare atom when every octet is an
// ASTRING-CHAR (RFC 9051 §9) and s is not the word NIL (which a client might
// read as the nil atom), otherwise a quoted string or a literal.
func AppendAString(dst []byte, s string, utf8OK bool) []byte {
	if s != "" && !strings.EqualFold(s, "NIL") && isAString(s) {
		return append(dst, s...)
	}
	return AppendQuotedOrLiteral(dst, s, utf8OK)
}

// AppendAtom appends s as an atom if it is one, else as a string. Flags and
// keywords use it.
func AppendAtom(dst []byte, s string, utf8OK bool) []byte {
	if s != "" && isAtom(s) {
		return append(dst, s...)
	}
	return AppendQuotedOrLiteral(dst, s, utf8OK)
}

// AppendQuotedOrLiteral appends s as a quoted string when it can be one
// (no CR or LF, at most maxQuoted octets, and 7-bit unless utf8OK is true,
// which callers pass once the client enabled UTF8=ACCEPT or IMAP4rev2),
// otherwise as a synchronising literal "{n}\r\n" followed by the octets.
// NUL octets are dropped: no IMAP string form may carry them
// (RFC 9051 §4.3, CHAR8).
func AppendQuotedOrLiteral(dst []byte, s string, utf8OK bool) []byte {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if canQuote(s, utf8OK) {
		return AppendQuoted(dst, s)
	}
	return AppendLiteral(dst, s)
}

// AppendQuoted appends s as a quoted string, escaping '"' and '\'. The
// caller guarantees s holds no CR, LF or NUL (see AppendQuotedOrLiteral).
func AppendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// AppendLiteral appends s as a synchronising literal (RFC 9051 §4.3).
func AppendLiteral(dst []byte, s string) []byte {
	dst = append(dst, '{')
	dst = appendUint(dst, uint64(len(s)))
	dst = append(dst, "}\r\n"...)
	return append(dst, s...)
}

// AppendLiteralHeader appends "{n}\r\n" (or "~{n}\r\n" for a literal8, as
// BINARY[] needs: RFC 3516 §4.3) so a caller can stream the n octets
// itself.
func AppendLiteralHeader(dst []byte, n int64, literal8 bool) []byte {
	if literal8 {
		dst = append(dst, '~')
	}
	dst = append(dst, '{')
	dst = appendUint(dst, uint64(n))
	return append(dst, "}\r\n"...)
}

// AppendNumber appends a non-negative decimal number.
func AppendNumber(dst []byte, n int64) []byte {
	if n < 0 {
		n = 0
	}
	return appendUint(dst, uint64(n))
}

func appendUint(dst []byte, n uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

func canQuote(s string, utf8OK bool) bool {
	if len(s) > maxQuoted {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
		if c >= 0x80 && !utf8OK {
			return false
		}
	}
	if utf8OK && !utf8.ValidString(s) {
		// A quoted string under UTF8=ACCEPT must hold valid UTF-8
		// (RFC 9051 §9 quoted-char, RFC 6855 §3); raw 8-bit goes in a literal.
		return false
	}
	return true
}

// isAtomChar reports whether c is an ATOM-CHAR: any CHAR except
// atom-specials "(" ")" "{" SP CTL "%" "*" '"' "\" "]" (RFC 9051 §9).
func isAtomChar(c byte) bool {
	if c <= 0x20 || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

func isAtom(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

// isAString reports whether s is 1*ASTRING-CHAR (ATOM-CHAR or "]").
func isAString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAtomChar(c) && c != ']' {
			return false
		}
	}
	return true
}
