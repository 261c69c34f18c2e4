package smtpd

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net"
	"strings"
	"time"
	"unicode/utf8"
)

// traceInfo is what the trace header fields are made of.
type traceInfo struct {
	hostname string
	helo     string
	remote   net.Addr
	tls      *tls.ConnectionState // nil: plaintext
	proto    string               // "with" keyword, see protocolName
	from     mailAddr             // zero: null reverse-path
	rcpts    []mailAddr
	authRes  string // a complete Authentication-Results field, or ""
	id       string
	now      time.Time
}

// traceHeaders returns the header fields prepended to a delivered message,
// in this order (top to bottom):
//
//	Return-Path:            the envelope sender (RFC 5321 §4.4), added at
//	                        final delivery
//	Delivered-To:           the recipient, only when the transaction has
//	                        exactly one
//	Authentication-Results: when the MX checked the message
//	Received:               our trace line (RFC 5321 §4.4)
//
// Delivered-To and the "for" clause of Received name a recipient only when
// there is exactly one: the body is stored once and shared by every
// recipient's mailbox, so a recipient list there would show each
// recipient the others, Bcc recipients included (RFC 5321 §7.2 warns
// against revealing Bcc recipients this way).
func traceHeaders(ti traceInfo) string {
	var b strings.Builder
	b.WriteString("Return-Path: <")
	if ti.from.Domain != "" {
		b.WriteString(ti.from.String())
	}
	b.WriteString(">\r\n")
	if len(ti.rcpts) == 1 {
		b.WriteString("Delivered-To: ")
		b.WriteString(ti.rcpts[0].String())
		b.WriteString("\r\n")
	}
	b.WriteString(ti.authRes)
	b.WriteString(received(ti))
	return b.String()
}

// received builds the Received: field (RFC 5321 §4.4).
func received(ti traceInfo) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(sanitizeHelo(ti.helo))
	if ta, ok := ti.remote.(*net.TCPAddr); ok {
		b.WriteString(" ([")
		if ta.IP.To4() == nil {
			b.WriteString("IPv6:") // RFC 5321 §4.1.3 address literal
		}
		b.WriteString(ta.IP.String())
		b.WriteString("])")
	} else if ti.remote != nil {
		b.WriteString(" (")
		b.WriteString(sanitizeHelo(ti.remote.Network()))
		b.WriteString(")")
	}
	if ti.tls != nil {
		b.WriteString("\r\n\t(using ")
		b.WriteString(tls.VersionName(ti.tls.Version))
		b.WriteString(" with cipher ")
		b.WriteString(tls.CipherSuiteName(ti.tls.CipherSuite))
		b.WriteString(")")
	}
	b.WriteString("\r\n\tby ")
	b.WriteString(ti.hostname)
	b.WriteString(" (Skrytka) with ")
	b.WriteString(ti.proto)
	b.WriteString(" id ")
	b.WriteString(ti.id)
	if len(ti.rcpts) == 1 {
		b.WriteString("\r\n\tfor <")
		b.WriteString(ti.rcpts[0].String())
		b.WriteString(">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(ti.now.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// trace collects the session's facts for traceHeaders.
func (s *session) trace(authRes, id string, now time.Time) traceInfo {
	ti := traceInfo{
		hostname: s.srv.opts.Hostname,
		helo:     s.sc.Hostname(),
		remote:   s.cn.RemoteAddr(),
		from:     s.from,
		authRes:  authRes,
		id:       id,
		now:      now,
	}
	if st, ok := s.sc.TLSConnectionState(); ok {
		ti.tls = &st
	}
	ti.proto = s.protocolName(ti.tls != nil)
	for _, r := range s.rcpts {
		ti.rcpts = append(ti.rcpts, r.addr)
	}
	return ti
}

// protocolName is the "with" keyword: UTF8SMTP, ESMTP or LMTP with S for
// TLS and A for an authenticated client (RFC 3848; RFC 6531 §3.7.3).
func (s *session) protocolName(isTLS bool) string {
	var p string
	switch {
	case s.srv.opts.Mode == ModeLMTP:
		p = "LMTP"
	case s.utf8:
		p = "UTF8SMTP"
	default:
		p = "ESMTP"
	}
	if isTLS {
		p += "S"
	}
	if s.user != nil {
		p += "A"
	}
	return p
}

// sanitizeHelo makes the client's EHLO argument safe to put in a header:
// printable ASCII (and UTF-8) except the characters that would end or
// confuse the "from" clause, at most 255 bytes; anything else becomes "_".
func sanitizeHelo(h string) string {
	if h == "" {
		return "unknown"
	}
	if len(h) > 255 {
		h = h[:255]
	}
	if !utf8.ValidString(h) {
		h = strings.ToValidUTF8(h, "_")
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '(' || r == ')' || r == ';' || r == '\\' || r == '"' || r == utf8.RuneError ||
			r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029 {
			return '_'
		}
		return r
	}, h)
}

// newID returns a random transaction id for the Received header and logs.
func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
