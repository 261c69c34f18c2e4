// Package mailparse parses a message once, at delivery, into the metadata
// that front ends serve without reading the body again: the envelope, the
// MIME body structure with byte offsets of every part, the parsed Date and
// a short text preview; it also extracts the decoded text that SEARCH
// BODY/TEXT match against (ExtractText).
//
// It depends on no other Skrytka package and knows no wire protocol: the IMAP
// rendering of these values lives in package imapwire. It uses the
// standard library and go-message's charset tables only.
//
// Invariants:
//   - Parse reads its input once, sequentially, and keeps header fields, not
//     bodies: memory is bounded by the kept header bytes (at most 4 MiB per
//     message), whatever the message size.
//   - Parse never fails on malformed input (only on a read error): broken
//     MIME yields the best structure it can, as real-world servers do,
//     because a message that arrived must be servable. Where the standards
//     leave room, the result matches what Dovecot reports (checked against
//     Dovecot 2.3.19 by imapwire's corpus test).
//   - Offsets are byte positions in the message as stored (CRLF line
//     endings; bare LF is accepted too). For every part
//     0 <= HeaderStart <= BodyStart <= End <= size; children lie in order
//     inside their parent's body. Nesting stops at 50 levels and 10,000
//     parts; deeper content is measured but not split.
//   - Every message/rfc822 and message/global part has an Envelope and
//     exactly one child (the encapsulated message), as IMAP's grammar needs.
//   - Marshal's output starts with a version byte; Unmarshal rejects
//     anything it did not make, without panicking.
package mailparse

import (
	"strings"
	"time"
)

// Info is everything parsed from one message.
type Info struct {
	Envelope Envelope
	Root     Part
	// Date is the parsed Date header (zero if missing or unparsable); SEARCH
	// SENTBEFORE/SENTON/SENTSINCE and SORT DATE use it.
	Date time.Time
	// Preview is up to 200 characters of the first text part, decoded and
	// with whitespace folded (RFC 8970 PREVIEW).
	Preview string
}

// Envelope holds the raw (undecoded, as in the header, unfolded) values of
// the fields of an IMAP ENVELOPE. An empty string means the header is
// absent, unless its bit is set in Present (a field present with an empty
// value is sent as "" rather than NIL). An address list is nil when the
// field is absent or holds no address; Sender and Reply-To are kept as in
// the header (the RFC 9051 §7.5.2 default to From is applied by
// EffectiveSender and EffectiveReplyTo, and by imapwire).
type Envelope struct {
	Date      string
	Subject   string
	From      []Address
	Sender    []Address
	ReplyTo   []Address
	To        []Address
	Cc        []Address
	Bcc       []Address
	InReplyTo string
	MessageID string
	Present   EnvField
}

// EnvField is a bit set of the string fields of an Envelope.
type EnvField uint8

const (
	EnvDate EnvField = 1 << iota
	EnvSubject
	EnvInReplyTo
	EnvMessageID
)

// EffectiveSender is Sender, or From when Sender is absent or empty
// (RFC 9051 §7.5.2).
func (e *Envelope) EffectiveSender() []Address {
	if len(e.Sender) == 0 {
		return e.From
	}
	return e.Sender
}

// EffectiveReplyTo is Reply-To, or From when Reply-To is absent or empty
// (RFC 9051 §7.5.2).
func (e *Envelope) EffectiveReplyTo() []Address {
	if len(e.ReplyTo) == 0 {
		return e.From
	}
	return e.ReplyTo
}

// Address is one address of an address list. A group is represented as in
// IMAP: a start marker (GroupName set, Mailbox and Host empty) followed by
// its members and an end marker (all fields empty, GroupEnd true).
type Address struct {
	Name    string // display name, raw (may contain encoded-words)
	ADL     string // source route, usually empty
	Mailbox string // local part; group name for a group start
	Host    string // domain; empty for a group marker
	// GroupStart/GroupEnd mark group syntax (RFC 5322 §3.4).
	GroupStart bool
	GroupEnd   bool
}

// Param is one Content-Type or Content-Disposition parameter, in header
// order, the name spelled as in the header (compare names with
// strings.EqualFold or use Part.Param). RFC 2231 continuations are joined
// ("name*0", "name*1" become "name"); a charset-encoded value keeps the
// name "name*" and its charset'language'%XX form, which IMAP clients
// decode (use DecodeParam for the UTF-8 text).
type Param struct{ Name, Value string }

// Part is one MIME entity.
type Part struct {
	Type    string // lower-case media type, e.g. "text"; default text (message in multipart/digest)
	Subtype string // lower-case, e.g. "plain"; default plain (rfc822 in multipart/digest)
	// TypeSpelling is "Type/Subtype" as written in the header when that
	// differs from the lower-case form (e.g. "Text/Plain"), else "".
	// Media types are case-insensitive (RFC 2045 §5.1); IMAP output uses
	// the original spelling, as Dovecot does, code should use Type/Subtype.
	TypeSpelling string
	Params       []Param
	ID           string // Content-ID, raw
	Desc         string // Content-Description, raw
	Encoding     string // Content-Transfer-Encoding as given (IMAP upper-cases), "" = 7bit
	MD5          string // Content-MD5, raw
	// Disposition is the Content-Disposition type (lower-case), "" if absent.
	Disposition       string
	DispositionParams []Param
	// HasDisposition is set when the Content-Disposition field is present,
	// even if its value could not be parsed (Disposition is then "").
	HasDisposition bool
	Language       []string // Content-Language tags
	Location       string   // Content-Location
	// Byte offsets into the message: the part's header starts at
	// HeaderStart, its body at BodyStart, and the body ends at End
	// (exclusive). For the root part HeaderStart is 0 and End the size.
	HeaderStart, BodyStart, End int64
	// Lines is the number of line breaks in the body; IMAP reports it
	// for text/* and message/rfc822 parts.
	Lines int64
	// Children are the parts of a multipart, or the single encapsulated
	// message of a message/rfc822 (or message/global) part.
	Children []Part
	// Envelope is set for message/rfc822 and message/global parts whose
	// content was parsed (Children then holds the encapsulated message).
	Envelope *Envelope
}

// Param returns the value of the parameter name (case-insensitive), or "".
func (p *Part) Param(name string) string {
	for _, x := range p.Params {
		if strings.EqualFold(x.Name, name) {
			return x.Value
		}
	}
	return ""
}

// IsMultipart reports whether p is a multipart entity.
func (p *Part) IsMultipart() bool { return p.Type == "multipart" }

// IsMessage reports whether p is an encapsulated message whose structure
// was parsed (message/rfc822 or message/global).
func (p *Part) IsMessage() bool { return p.Envelope != nil && len(p.Children) == 1 }
