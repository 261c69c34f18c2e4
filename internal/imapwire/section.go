package imapwire

import (
	"bytes"
	"strings"

	"github.com/skrytka/skrytka/internal/mailparse"
)

// Section names the part of a message a BODY[section] specifier addresses
// (RFC 9051 §6.4.5), resolved against a parsed message.
//
// Part numbers: in a multipart, n is the nth child; an encapsulated
// message (message/rfc822, message/global) is numbered by its own body's
// parts; and a message (the top level, or an encapsulated one) whose body
// is not multipart has exactly one part, 1, which is its body.

// FindPart returns the part that the numeric section path addresses (path
// empty: the whole message, info.Root). top is true when the returned part
// is a message's top-level entity (info.Root or the child of a message
// part) rather than a part inside a multipart.
func FindPart(info *mailparse.Info, path []int) (p *mailparse.Part, ok bool) {
	p = &info.Root
	top := true
	for _, n := range path {
		if n < 1 {
			return nil, false
		}
		if !top && isMessagePart(p) {
			if !p.IsMessage() {
				return nil, false
			}
			p = &p.Children[0]
			top = true
		}
		switch {
		case p.Type == "multipart":
			if n == 1 && len(p.Children) == 0 {
				// A multipart without parts is shown as one empty
				// text/plain part (see emptyBody): part 1 exists, empty,
				// at the start of the multipart's body.
				at := p.BodyStart
				p = &mailparse.Part{Type: "text", Subtype: "plain", HeaderStart: at, BodyStart: at, End: at}
				top = false
				continue
			}
			if n > len(p.Children) {
				return nil, false
			}
			p = &p.Children[n-1]
			top = false
		case top && n == 1:
			// A non-multipart message has only part 1: its body.
			top = false
		default:
			return nil, false
		}
	}
	return p, true
}

// SectionRange maps a BODY[section] specifier to the byte range
// [start, end) of the stored message. path is the numeric part (empty for
// the top level); spec is "" (the part's body, or the whole message at the
// top level), "MIME", "HEADER", "TEXT", or "HEADER.FIELDS" /
// "HEADER.FIELDS.NOT" (which give the header range: filter it with
// FilterHeader). ok is false for a path that names no part or a
// specifier that does not apply: MIME needs a part number; HEADER and
// TEXT need the top level or an encapsulated message (RFC 9051 §6.4.5).
func SectionRange(info *mailparse.Info, path []int, spec string) (start, end int64, ok bool) {
	p, ok := FindPart(info, path)
	if !ok {
		return 0, 0, false
	}
	spec = strings.ToUpper(spec)
	// The entity whose header/text HEADER and TEXT mean: the message at
	// the top level, or the encapsulated message of a message part.
	var msg *mailparse.Part
	if len(path) == 0 {
		msg = p
	} else if isMessagePart(p) && p.IsMessage() {
		msg = &p.Children[0]
	}
	switch spec {
	case "":
		if len(path) == 0 {
			return 0, info.Root.End, true
		}
		return p.BodyStart, p.End, true
	case "MIME":
		if len(path) == 0 {
			return 0, 0, false
		}
		return p.HeaderStart, p.BodyStart, true
	case "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if msg == nil {
			return 0, 0, false
		}
		return msg.HeaderStart, msg.BodyStart, true
	case "TEXT":
		if msg == nil {
			return 0, 0, false
		}
		return msg.BodyStart, msg.End, true
	}
	return 0, 0, false
}

// FilterHeader returns the fields of a header block whose names are in
// fields (compared case-insensitively), or not in fields if not is true,
// each with its continuation lines, in their original order, followed by
// the blank line that ends the header if hdr has one (RFC 9051 §6.4.5:
// the delimiting blank line is part of every header fetch).
func FilterHeader(hdr []byte, fields []string, not bool) []byte {
	out := make([]byte, 0, 256)
	keep := false
	rest := hdr
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i+1], rest[i+1:]
		}
		if isBlankLine(line) {
			out = append(out, "\r\n"...)
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if keep {
				out = append(out, line...)
			}
			continue
		}
		keep = false
		if c := bytes.IndexByte(line, ':'); c > 0 {
			name := string(bytes.TrimRight(line[:c], " \t"))
			in := false
			for _, f := range fields {
				if strings.EqualFold(f, name) {
					in = true
					break
				}
			}
			keep = in != not
		}
		if keep {
			out = append(out, line...)
		}
	}
	return out
}

func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}
