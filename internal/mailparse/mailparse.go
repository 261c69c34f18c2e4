// Package mailparse parses a message once, at delivery, into the metadata
// that front ends serve without reading the body again: the envelope, the
// MIME body structure with byte offsets of every part, the header fields
// that SEARCH and SORT need, and a short text preview.
//
// It depends on no other Skrytka package and knows no wire protocol: the IMAP
// rendering of these values lives in package imapwire. Parse never fails on
// malformed input: broken MIME yields the best structure it can, as
// real-world servers do, because a message that arrived must be servable.
//
// Offsets are byte positions in the message as stored (CRLF line endings).
package mailparse

import "time"

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
// the fields of an IMAP ENVELOPE. A nil/empty string means the header is
// absent.
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

// Param is one Content-Type or Content-Disposition parameter, in order.
// RFC 2231 continuations are joined; the value is as it should be shown to
// an IMAP client (see package doc of imapwire for the decoding rules).
type Param struct{ Name, Value string }

// Part is one MIME entity.
type Part struct {
	Type     string // lower-case media type, e.g. "text"
	Subtype  string // lower-case, e.g. "plain"
	Params   []Param
	ID       string // Content-ID, raw
	Desc     string // Content-Description, raw
	Encoding string // Content-Transfer-Encoding as given (IMAP upper-cases), "" = 7bit
	MD5      string // Content-MD5, raw
	// Disposition is the Content-Disposition type (lower-case), "" if absent.
	Disposition       string
	DispositionParams []Param
	Language          []string // Content-Language tags
	Location          string   // Content-Location
	// Byte offsets into the message: the part's header starts at
	// HeaderStart, its body at BodyStart, and the body ends at End
	// (exclusive). For the root part HeaderStart is 0 and End the size.
	HeaderStart, BodyStart, End int64
	// Lines is the number of lines of the body (text/* and message/rfc822).
	Lines int64
	// Children are the parts of a multipart, or the single encapsulated
	// message of a message/rfc822 (or message/global) part.
	Children []Part
	// Envelope is set for message/rfc822 and message/global parts.
	Envelope *Envelope
}
