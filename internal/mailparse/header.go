package mailparse

import (
	"bytes"
	"strings"
)

// headerField is one field of a header block: the name as written and the
// raw value (everything after the colon, folding CRLFs included).
type headerField struct {
	name  string
	value []byte
}

// fieldKind identifies the header fields Parse keeps; all others are
// skipped while streaming (the IMAP server reads other fields from the
// stored bytes when a client asks).
type fieldKind uint8

const (
	fieldOther fieldKind = iota
	fieldContentType
	fieldContentTransferEncoding
	fieldContentID
	fieldContentDescription
	fieldContentMD5
	fieldContentDisposition
	fieldContentLanguage
	fieldContentLocation
	fieldDate
	fieldSubject
	fieldFrom
	fieldSender
	fieldReplyTo
	fieldTo
	fieldCc
	fieldBcc
	fieldInReplyTo
	fieldMessageID
)

func kindOf(name []byte) fieldKind {
	if len(name) < 2 || len(name) > 25 {
		return fieldOther
	}
	var buf [25]byte
	n := copy(buf[:], name)
	for i := 0; i < n; i++ {
		if c := buf[i]; 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	switch string(buf[:n]) {
	case "content-type":
		return fieldContentType
	case "content-transfer-encoding":
		return fieldContentTransferEncoding
	case "content-id":
		return fieldContentID
	case "content-description":
		return fieldContentDescription
	case "content-md5":
		return fieldContentMD5
	case "content-disposition":
		return fieldContentDisposition
	case "content-language":
		return fieldContentLanguage
	case "content-location":
		return fieldContentLocation
	case "date":
		return fieldDate
	case "subject":
		return fieldSubject
	case "from":
		return fieldFrom
	case "sender":
		return fieldSender
	case "reply-to":
		return fieldReplyTo
	case "to":
		return fieldTo
	case "cc":
		return fieldCc
	case "bcc":
		return fieldBcc
	case "in-reply-to":
		return fieldInReplyTo
	case "message-id":
		return fieldMessageID
	}
	return fieldOther
}

// fieldName splits a header line "Name: value" and returns the name (with
// trailing white space removed, as RFC 5322 §4.5 obs-optional allows) and
// the offset of the value, or ok false when the line has no colon or the
// name holds characters no field name may (RFC 5322 §3.6.8 ftext).
func fieldName(line []byte) (name []byte, valueAt int, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, 0, false
	}
	name = bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return nil, 0, false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return nil, 0, false
		}
	}
	return name, i + 1, true
}

// unfold turns a raw field value into the value IMAP ENVELOPE shows:
// white space at the start of the first line dropped, CR and LF removed
// (RFC 5322 §2.2.3 unfolding), everything else kept as it is, including
// trailing white space.
func unfold(v []byte) string {
	// Only the first line's leading white space goes: a value that starts
	// on a continuation line ("Date:\r\n   x") keeps that line's white
	// space, as Dovecot does.
	i := 0
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	v = v[i:]
	if bytes.IndexByte(v, '\r') < 0 && bytes.IndexByte(v, '\n') < 0 {
		return string(v)
	}
	var b strings.Builder
	b.Grow(len(v))
	for _, c := range v {
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// trimValue is unfold followed by trimming white space at both ends; the
// MIME fields use it.
func trimValue(v []byte) string {
	return strings.Trim(unfold(v), " \t")
}
