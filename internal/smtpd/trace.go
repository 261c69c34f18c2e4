package smtpd

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"
)

// traceHeaders returns the header fields prepended to a delivered message,
// in this order (top to bottom):
//
//	Return-Path:            the envelope sender (RFC 5321 §4.4), added at
//	                        final delivery
//	Delivered-To:           the recipient, only when the transaction has
//	                        exactly one
//	Authentication-Results: authRes, when the MX checked the message
//	Received:               our trace line (RFC 5321 §4.4)
//
// Delivered-To and the "for" clause of Received name a recipient only when
// there is exactly one: the body is stored once and shared by every
// recipient's mailbox, so a recipient list there would show each
// recipient the others, Bcc recipients included (RFC 5321 §7.2 warns
// against revealing Bcc recipients this way).
func (s *session) traceHeaders(authRes, id string, now time.Time) string {
	var b strings.Builder
	b.WriteString("Return-Path: <")
	if s.from.Domain != "" {
		b.WriteString(s.from.String())
	}
	b.WriteString(">\r\n")
	if len(s.rcpts) == 1 {
		b.WriteString("Delivered-To: ")
		b.WriteString(s.rcpts[0].addr.String())
		b.WriteString("\r\n")
	}
	b.WriteString(authRes)
	b.WriteString(s.received(id, now))
	return b.String()
}

// received builds the Received: field (RFC 5321 §4.4, with the protocol
// names of RFC 3848 and RFC 6531 §3.7.3).
func (s *session) received(id string, now time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(sanitizeHelo(s.sc.Hostname()))
	if ip := s.remoteIP(); ip != nil {
		b.WriteString(" ([")
		if ip.To4() == nil {
			b.WriteString("IPv6:") // RFC 5321 §4.1.3 address literal
		}
		b.WriteString(ip.String())
		b.WriteString("])")
	} else if s.cn.RemoteAddr() != nil {
		b.WriteString(" (")
		b.WriteString(s.cn.RemoteAddr().Network())
		b.WriteString(")")
	}
	state, isTLS := s.sc.TLSConnectionState()
	if isTLS {
		b.WriteString("\r\n\t(using ")
		b.WriteString(tls.VersionName(state.Version))
		b.WriteString(" with cipher ")
		b.WriteString(tls.CipherSuiteName(state.CipherSuite))
		b.WriteString(")")
	}
	b.WriteString("\r\n\tby ")
	b.WriteString(s.srv.opts.Hostname)
	b.WriteString(" (Skrytka) with ")
	b.WriteString(s.protocolName(isTLS))
	b.WriteString(" id ")
	b.WriteString(id)
	if len(s.rcpts) == 1 {
		b.WriteString("\r\n\tfor <")
		b.WriteString(s.rcpts[0].addr.String())
		b.WriteString(">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(now.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// protocolName is the "with" keyword: [UTF8]SMTP, ESMTP or LMTP with S for
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
		if r <= ' ' || r == 0x7f || r == '(' || r == ')' || r == ';' || r == '\\' || r == '"' || r == utf8.RuneError {
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
