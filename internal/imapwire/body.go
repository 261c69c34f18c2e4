package imapwire

import (
	"strings"

	"github.com/skrytka/skrytka/internal/mailparse"
)

// AppendEnvelope appends an ENVELOPE (RFC 9051 §7.5.2): date, subject,
// from, sender, reply-to, to, cc, bcc, in-reply-to, message-id. Strings
// are the raw header values; a field that is absent is NIL, one present
// but empty is "". Sender and Reply-To default to From when absent or
// empty. utf8OK allows 8-bit text in quoted strings (UTF8=ACCEPT or
// IMAP4rev2); otherwise such text is sent as a literal.
func AppendEnvelope(dst []byte, e *mailparse.Envelope, utf8OK bool) []byte {
	dst = append(dst, '(')
	dst = appendEnvString(dst, e.Date, e.Present&mailparse.EnvDate != 0, utf8OK)
	dst = append(dst, ' ')
	dst = appendEnvString(dst, e.Subject, e.Present&mailparse.EnvSubject != 0, utf8OK)
	for _, l := range [][]mailparse.Address{e.From, e.EffectiveSender(), e.EffectiveReplyTo(), e.To, e.Cc, e.Bcc} {
		dst = append(dst, ' ')
		dst = appendAddressList(dst, l, utf8OK)
	}
	dst = append(dst, ' ')
	dst = appendEnvString(dst, e.InReplyTo, e.Present&mailparse.EnvInReplyTo != 0, utf8OK)
	dst = append(dst, ' ')
	dst = appendEnvString(dst, e.MessageID, e.Present&mailparse.EnvMessageID != 0, utf8OK)
	return append(dst, ')')
}

func appendEnvString(dst []byte, s string, present, utf8OK bool) []byte {
	if s == "" && !present {
		return AppendNil(dst)
	}
	return AppendString(dst, s, utf8OK)
}

// appendAddressList appends "(" 1*address ")" or NIL (RFC 9051 §9
// env-from etc.). A group is a start marker (NIL NIL "name" NIL), its
// members and an end marker (NIL NIL NIL NIL) (RFC 9051 §7.5.2).
func appendAddressList(dst []byte, l []mailparse.Address, utf8OK bool) []byte {
	if len(l) == 0 {
		return AppendNil(dst)
	}
	dst = append(dst, '(')
	for i := range l {
		a := &l[i]
		switch {
		case a.GroupEnd:
			dst = append(dst, "(NIL NIL NIL NIL)"...)
		case a.GroupStart:
			dst = append(dst, "(NIL NIL "...)
			dst = AppendString(dst, a.Mailbox, utf8OK)
			dst = append(dst, " NIL)"...)
		default:
			dst = append(dst, '(')
			dst = AppendNString(dst, a.Name, utf8OK)
			dst = append(dst, ' ')
			dst = AppendNString(dst, a.ADL, utf8OK)
			dst = append(dst, ' ')
			dst = AppendNString(dst, a.Mailbox, utf8OK)
			dst = append(dst, ' ')
			dst = AppendNString(dst, a.Host, utf8OK)
			dst = append(dst, ')')
		}
	}
	return append(dst, ')')
}

// emptyBody is what a multipart without any part is shown as: the IMAP
// grammar needs at least one body in a multipart (RFC 9051 §9
// body-type-mpart), so it gets an empty text/plain, as Dovecot sends.
var emptyBody = mailparse.Part{Type: "text", Subtype: "plain", Params: []mailparse.Param{{Name: "charset", Value: "us-ascii"}}}

// AppendBodyStructure appends the BODY (extended false) or BODYSTRUCTURE
// (extended true) of p (RFC 9051 §7.5.2, grammar in §9 body). p is the
// root part of a message or any part of it.
func AppendBodyStructure(dst []byte, p *mailparse.Part, extended, utf8OK bool) []byte {
	return appendBody(dst, p, extended, utf8OK, 0)
}

// maxRenderDepth keeps the output bounded even for a Part tree that was
// not made by Parse (which already limits nesting).
const maxRenderDepth = 100

func appendBody(dst []byte, p *mailparse.Part, ext, utf8OK bool, depth int) []byte {
	if depth > maxRenderDepth {
		p = &emptyBody
	}
	dst = append(dst, '(')
	if p.Type == "multipart" {
		if len(p.Children) == 0 {
			dst = appendBody(dst, &emptyBody, ext, utf8OK, depth+1)
		}
		for i := range p.Children {
			dst = appendBody(dst, &p.Children[i], ext, utf8OK, depth+1)
		}
		dst = append(dst, ' ')
		_, sub := spelling(p)
		dst = AppendString(dst, sub, utf8OK)
		if ext {
			// body-ext-mpart: params, disposition, language, location
			dst = append(dst, ' ')
			dst = appendParams(dst, p.Params, utf8OK)
			dst = appendExtTail(dst, p, utf8OK)
		}
		return append(dst, ')')
	}

	// body-type-1part: body-fields = params id desc encoding size
	typ, sub := spelling(p)
	dst = AppendString(dst, typ, utf8OK)
	dst = append(dst, ' ')
	dst = AppendString(dst, sub, utf8OK)
	dst = append(dst, ' ')
	dst = appendParams(dst, p.Params, utf8OK)
	dst = append(dst, ' ')
	dst = AppendNString(dst, p.ID, utf8OK)
	dst = append(dst, ' ')
	dst = AppendNString(dst, p.Desc, utf8OK)
	dst = append(dst, ' ')
	enc := p.Encoding
	if enc == "" {
		enc = "7bit" // RFC 2045 §6.1 default
	}
	dst = AppendString(dst, enc, utf8OK)
	dst = append(dst, ' ')
	dst = AppendNumber(dst, p.End-p.BodyStart)
	switch {
	case p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global"):
		// body-type-msg: envelope, body, lines
		dst = append(dst, ' ')
		if p.IsMessage() {
			dst = AppendEnvelope(dst, p.Envelope, utf8OK)
			dst = append(dst, ' ')
			dst = appendBody(dst, &p.Children[0], ext, utf8OK, depth+1)
		} else {
			dst = AppendEnvelope(dst, &mailparse.Envelope{}, utf8OK)
			dst = append(dst, ' ')
			dst = appendBody(dst, &emptyBody, ext, utf8OK, depth+1)
		}
		dst = append(dst, ' ')
		dst = AppendNumber(dst, p.Lines)
	case p.Type == "text":
		dst = append(dst, ' ')
		dst = AppendNumber(dst, p.Lines)
	}
	if ext {
		// body-ext-1part: md5, disposition, language, location
		dst = append(dst, ' ')
		dst = AppendNString(dst, p.MD5, utf8OK)
		dst = appendExtTail(dst, p, utf8OK)
	}
	return append(dst, ')')
}

// spelling returns the media type and subtype as written in the message.
func spelling(p *mailparse.Part) (typ, sub string) {
	if t, s, ok := strings.Cut(p.TypeSpelling, "/"); ok && strings.EqualFold(t, p.Type) && strings.EqualFold(s, p.Subtype) {
		return t, s
	}
	return p.Type, p.Subtype
}

// appendExtTail appends SP disposition SP language SP location.
func appendExtTail(dst []byte, p *mailparse.Part, utf8OK bool) []byte {
	dst = append(dst, ' ')
	if p.HasDisposition || p.Disposition != "" {
		dst = append(dst, '(')
		dst = AppendString(dst, p.Disposition, utf8OK)
		dst = append(dst, ' ')
		dst = appendParams(dst, p.DispositionParams, utf8OK)
		dst = append(dst, ')')
	} else {
		dst = AppendNil(dst)
	}
	dst = append(dst, ' ')
	switch len(p.Language) {
	case 0:
		dst = AppendNil(dst)
	default:
		dst = append(dst, '(')
		for i, l := range p.Language {
			if i > 0 {
				dst = append(dst, ' ')
			}
			dst = AppendString(dst, l, utf8OK)
		}
		dst = append(dst, ')')
	}
	dst = append(dst, ' ')
	return AppendNString(dst, p.Location, utf8OK)
}

// appendParams appends body-fld-param: "(" name SP value *(...) ")" or NIL.
func appendParams(dst []byte, ps []mailparse.Param, utf8OK bool) []byte {
	if len(ps) == 0 {
		return AppendNil(dst)
	}
	dst = append(dst, '(')
	for i, p := range ps {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = AppendString(dst, p.Name, utf8OK)
		dst = append(dst, ' ')
		dst = AppendString(dst, p.Value, utf8OK)
	}
	return append(dst, ')')
}

// isMessagePart reports whether p is an encapsulated message/rfc822 or
// message/global.
func isMessagePart(p *mailparse.Part) bool {
	return strings.EqualFold(p.Type, "message") && (strings.EqualFold(p.Subtype, "rfc822") || strings.EqualFold(p.Subtype, "global"))
}
