package mailparse

import (
	"bufio"
	"bytes"
	"io"
	"net/mail"
	"strings"
	"time"
)

// Why a hand-written boundary scanner: go-message's multipart reader (and
// mime/multipart) hand out part bodies as readers but never say where a
// part's header and body start and end in the original bytes, and IMAP
// needs exactly that: BODY[1.2.MIME], BODY[2.TEXT] and partial fetches are
// served from byte offsets into the stored message without parsing it
// again. They also stop at the first malformed boundary, where a mail
// server must keep going. So Parse reads the message once, line by line,
// and tracks the boundaries of all open multiparts itself.

// Limits that bound the work and memory of Parse on hostile input. Past
// them the rest of the message is still measured (sizes, line counts) but
// no further structure is built.
const (
	maxDepth        = 50       // nesting of multiparts and messages
	maxParts        = 10000    // entities in one message
	maxFieldBytes   = 64 << 10 // one kept header field
	maxHeaderFields = 1000     // kept fields per header block
	maxKeptBytes    = 4 << 20  // kept header bytes in the whole message
	previewRawBytes = 16 << 10 // raw body bytes kept for the preview
	previewRunes    = 200      // RFC 8970 §3: at most 200 characters
)

// Parse reads a whole message (CRLF line endings; bare LF is accepted)
// from r and returns its metadata. It reads r once, sequentially, and keeps
// only the header fields it needs, so a large message costs no more memory
// than its largest header block. It never fails on malformed MIME; the
// error is only ever a read error from r.
func Parse(r io.Reader) (*Info, error) {
	p := &parser{br: bufio.NewReaderSize(r, 32<<10)}
	p.advance()
	info := &Info{}
	p.entity(&info.Root, "text", "plain", 0, &info.Envelope)
	if p.err != nil {
		return nil, p.err
	}
	info.Date = parseDate(info.Envelope.Date)
	info.Preview = p.preview()
	return info, nil
}

// parseDate parses a Date field (RFC 5322 §3.3, with the obsolete forms
// of §4.3); the zero time if it cannot.
func parseDate(v string) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t
	}
	// Retry with comments removed and white space normalised, which
	// covers "09(comment): 55 : 06" and runs of spaces.
	var b strings.Builder
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '\t' || c == '\r' || c == '\n':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	w := strings.Join(strings.Fields(b.String()), " ")
	w = strings.ReplaceAll(strings.ReplaceAll(w, " :", ":"), ": ", ":")
	if t, err := mail.ParseDate(w); err == nil {
		return t
	}
	return time.Time{}
}

// parser holds the line reader and the stack of open boundaries.
type parser struct {
	br  *bufio.Reader
	err error

	// The current line, not yet consumed: bytes [lineStart, off).
	line      []byte
	lineStart int64
	off       int64
	atStart   bool // the current chunk starts a line (long lines come in chunks)
	eof       bool
	nl        int64 // newlines consumed before lineStart
	prevNL    int   // length of the line ending of the line before the current one
	midLine   bool  // the last chunk read did not end a line

	nlAtEnd int64 // newlines before the End of the last entity ended

	bounds [][]byte // open boundaries, innermost last, each with "--" prefix
	parts  int
	kept   int // header bytes kept so far (maxKeptBytes)

	previewPart *Part
	previewBuf  []byte
}

// advance consumes the current line and reads the next one (or the next
// chunk of a line longer than the buffer) into p.line.
func (p *parser) advance() {
	if p.eof {
		return
	}
	if n := len(p.line); n > 0 {
		p.prevNL = 0
		if p.line[n-1] == '\n' {
			p.nl++
			p.prevNL = 1
			if n >= 2 && p.line[n-2] == '\r' {
				p.prevNL = 2
			}
		}
	}
	p.atStart = !p.midLine
	p.lineStart = p.off
	line, err := p.br.ReadSlice('\n')
	p.line = line
	p.off += int64(len(line))
	p.midLine = len(line) > 0 && line[len(line)-1] != '\n'
	if err != nil && err != bufio.ErrBufferFull {
		if err != io.EOF {
			p.err = err
		}
		if len(line) == 0 {
			p.eof = true
		}
	}
}

// boundaryHit says how an entity ended.
type boundaryHit struct {
	level int  // index into bounds of the matching boundary; -1 at EOF
	close bool // a close delimiter "--b--"
}

// matchBoundary checks whether the current line is a boundary line of an
// open multipart, innermost first (an inner boundary may begin with an
// outer one). Like Dovecot and most agents, a line that begins with
// "--boundary" counts even with trailing garbage (RFC 2046 §5.1.1 allows
// only white space there, but real mail is sloppy).
func (p *parser) matchBoundary() (boundaryHit, bool) {
	if !p.atStart || len(p.bounds) == 0 || len(p.line) < 3 || p.line[0] != '-' || p.line[1] != '-' {
		return boundaryHit{}, false
	}
	for i := len(p.bounds) - 1; i >= 0; i-- {
		b := p.bounds[i]
		if bytes.HasPrefix(p.line, b) {
			rest := p.line[len(b):]
			return boundaryHit{level: i, close: len(rest) >= 2 && rest[0] == '-' && rest[1] == '-'}, true
		}
	}
	return boundaryHit{}, false
}

// endOffsets returns where a body that stops at the current line ends: the
// line break before a boundary belongs to the boundary (RFC 2046 §5.1.1),
// and the newline count inside [bodyStart, end).
func (p *parser) endOffsets(bodyStart, nlAtBody int64) (end, lines int64) {
	if p.eof {
		p.nlAtEnd = p.nl
		return p.off, p.nl - nlAtBody
	}
	end = p.lineStart - int64(p.prevNL)
	p.nlAtEnd = p.nl
	if p.prevNL > 0 && end >= bodyStart {
		p.nlAtEnd--
	}
	if end < bodyStart {
		end = bodyStart
	}
	return end, max(p.nlAtEnd-nlAtBody, 0)
}

// skipBody consumes body lines until a boundary line of an open multipart
// (left unconsumed) or the end of input.
func (p *parser) skipBody(collect bool) boundaryHit {
	for !p.eof {
		if h, ok := p.matchBoundary(); ok {
			return h
		}
		if collect && len(p.previewBuf) < previewRawBytes {
			n := min(len(p.line), previewRawBytes-len(p.previewBuf))
			p.previewBuf = append(p.previewBuf, p.line[:n]...)
		}
		p.advance()
	}
	return boundaryHit{level: -1}
}

// rawHeader is the kept fields of one header block.
type rawHeader struct {
	fields [fieldMessageID + 1][]byte // first occurrence of each kept kind
	seen   [fieldMessageID + 1]bool
}

// readHeader consumes a header block up to and including the blank line
// that ends it. It stops early, without consuming, at a boundary line of an
// enclosing multipart (a part with a header and no body).
func (p *parser) readHeader(h *rawHeader) (cut bool) {
	var cur fieldKind
	var curBuf []byte
	kept := 0
	flush := func() {
		if cur != fieldOther && (!h.seen[cur] || cur >= fieldDate) {
			h.seen[cur] = true
			h.fields[cur] = curBuf
			p.kept += len(curBuf)
		}
		cur, curBuf = fieldOther, nil
	}
	for !p.eof {
		if _, ok := p.matchBoundary(); ok {
			cut = true
			break
		}
		line := p.line
		if p.atStart {
			if string(line) == "\r\n" || string(line) == "\n" {
				p.advance() // the blank line ends the header
				break
			}
			if line[0] == ' ' || line[0] == '\t' {
				if cur != fieldOther && len(curBuf)+len(line) <= maxFieldBytes {
					curBuf = append(curBuf, line...)
				}
				p.advance()
				continue
			}
			flush()
			if name, at, ok := fieldName(line); ok && kept < maxHeaderFields && p.kept < maxKeptBytes {
				// MIME fields: the first occurrence counts; envelope
				// fields: the last, as Dovecot does.
				if k := kindOf(name); k != fieldOther && (!h.seen[k] || k >= fieldDate) {
					cur = k
					kept++
					v := line[at:]
					if len(v) > maxFieldBytes {
						v = v[:maxFieldBytes]
					}
					curBuf = append([]byte(nil), v...)
				}
			}
		} else if cur != fieldOther && len(curBuf)+len(line) <= maxFieldBytes {
			curBuf = append(curBuf, line...)
		}
		p.advance()
	}
	flush()
	return cut
}

// entity parses one MIME entity starting at the current line: its header,
// then its body according to its type. env, if not nil, receives the
// envelope of the header (top level and encapsulated messages).
func (p *parser) entity(part *Part, defType, defSub string, depth int, env *Envelope) boundaryHit {
	p.parts++
	part.HeaderStart = p.lineStart
	var h rawHeader
	cut := p.readHeader(&h)
	part.BodyStart = p.lineStart
	if p.eof {
		part.BodyStart = p.off
	}
	nlAtBody := p.nl
	applyMIME(part, &h, defType, defSub)
	if env != nil {
		fillEnvelope(env, &h)
	}

	var hit boundaryHit
	boundary := ""
	if strings.EqualFold(part.Type, "multipart") {
		boundary = part.Param("boundary")
	}
	switch {
	case cut:
		// The header ran into a boundary of an enclosing multipart: no
		// body at all, whatever the type says.
		part.End, part.Lines = part.BodyStart, 0
		p.nlAtEnd = p.nl
		if isMessage(part) {
			part.Envelope = new(Envelope)
			part.Children = []Part{{Type: "text", Subtype: "plain", Params: []Param{{"charset", "us-ascii"}},
				HeaderStart: part.BodyStart, BodyStart: part.BodyStart, End: part.BodyStart}}
		}
		h, _ := p.matchBoundary()
		return h
	case boundary != "" && depth < maxDepth && p.parts < maxParts:
		hit = p.multipart(part, boundary, depth)
	case isMessage(part) && depth < maxDepth && p.parts < maxParts:
		child := Part{}
		childEnv := new(Envelope)
		hit = p.entity(&child, "text", "plain", depth+1, childEnv)
		part.Envelope = childEnv
		part.Children = []Part{child}
		// The encapsulated message ends where its part ends; when its
		// body is empty the blank line closing its header still belongs
		// to it, so take the child's end rather than recomputing it.
		part.End, part.Lines = child.End, p.nlAtEnd-nlAtBody
		return hit
	default:
		collect := p.previewPart == nil && strings.EqualFold(part.Type, "text") &&
			(strings.EqualFold(part.Subtype, "plain") || strings.EqualFold(part.Subtype, "html")) &&
			!strings.EqualFold(part.Disposition, "attachment")
		hit = p.skipBody(collect)
		if collect {
			// part may move (children are appended by value), so keep a
			// copy of what the preview needs.
			p.previewPart = &Part{Type: part.Type, Subtype: part.Subtype, Encoding: part.Encoding, Params: part.Params}
		}
	}
	part.End, part.Lines = p.endOffsets(part.BodyStart, nlAtBody)
	if isMessage(part) && part.Envelope == nil {
		// Past the nesting or part limits: an opaque encapsulated
		// message, shown with an empty envelope and its content as one
		// text part, so the part still has the shape IMAP requires.
		part.Envelope = new(Envelope)
		part.Children = []Part{{Type: "text", Subtype: "plain", Params: []Param{{"charset", "us-ascii"}},
			HeaderStart: part.BodyStart, BodyStart: part.BodyStart, End: part.End, Lines: part.Lines}}
	}
	if n := len(part.Children); n > 0 && part.Children[n-1].End > part.End {
		// The last part's header ended with the blank line right before
		// the boundary; that line break stays inside the part.
		part.End = part.Children[n-1].End
		part.Lines++
	}
	return hit
}

// isMessage reports whether part encapsulates a message whose structure
// Parse builds. RFC 2046 §5.2.1 allows no transfer encoding but 7bit,
// 8bit or binary there; an encoded one is parsed all the same (it then
// shows as a header-less text part), so that every message/rfc822 part has
// an envelope and a body structure, which the IMAP grammar requires
// (RFC 9051 §9 body-type-msg).
func isMessage(part *Part) bool {
	return part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global")
}

// multipart parses the body of a multipart entity: preamble, parts,
// epilogue (RFC 2046 §5.1.1).
func (p *parser) multipart(part *Part, boundary string, depth int) boundaryHit {
	p.bounds = append(p.bounds, []byte("--"+boundary))
	level := len(p.bounds) - 1
	childType, childSub := "text", "plain"
	if strings.EqualFold(part.Subtype, "digest") {
		childType, childSub = "message", "rfc822" // RFC 2046 §5.1.5
	}
	hit := p.skipBody(false) // preamble
	for hit.level == level && !hit.close {
		p.advance() // the boundary line
		if p.parts >= maxParts {
			hit = p.skipBody(false)
			continue
		}
		var child Part
		hit = p.entity(&child, childType, childSub, depth+1, nil)
		part.Children = append(part.Children, child)
	}
	p.bounds = p.bounds[:level]
	if hit.level == level && hit.close {
		p.advance()
		hit = p.skipBody(false) // epilogue
	}
	return hit
}

// applyMIME fills the MIME fields of part from its header (RFC 2045,
// RFC 2183, RFC 3282, RFC 2557), with the defaults of RFC 2045 §5.2.
func applyMIME(part *Part, h *rawHeader, defType, defSub string) {
	part.Type, part.Subtype = defType, defSub
	if h.seen[fieldContentType] {
		if t, s, params, ok := parseContentType(unfold(h.fields[fieldContentType])); ok {
			part.Type, part.Subtype, part.Params = strings.ToLower(t), strings.ToLower(s), params
			if part.Type != t || part.Subtype != s {
				part.TypeSpelling = t + "/" + s
			}
		}
	}
	if part.Type == "text" && part.Param("charset") == "" {
		// RFC 2046 §4.1.2: the default charset of text is US-ASCII.
		part.Params = append(part.Params, Param{"charset", "us-ascii"})
	}
	if h.seen[fieldContentTransferEncoding] {
		// A value that is not a single token ("quoted printable",
		// "text/html", "base64;") is invalid and the default applies
		// (RFC 2045 §6.1), as Dovecot does.
		part.Encoding = singleToken(unfold(h.fields[fieldContentTransferEncoding]))
	}
	if h.seen[fieldContentID] {
		part.ID = trimValue(h.fields[fieldContentID])
	}
	if h.seen[fieldContentDescription] {
		part.Desc = trimValue(h.fields[fieldContentDescription])
	}
	if h.seen[fieldContentMD5] {
		part.MD5 = trimValue(h.fields[fieldContentMD5])
	}
	if h.seen[fieldContentDisposition] {
		t, params := parseDisposition(unfold(h.fields[fieldContentDisposition]))
		part.Disposition, part.DispositionParams = strings.ToLower(t), params
		part.HasDisposition = true
	}
	if h.seen[fieldContentLanguage] {
		part.Language = parseLanguage(unfold(h.fields[fieldContentLanguage]))
	}
	if h.seen[fieldContentLocation] {
		part.Location = trimValue(h.fields[fieldContentLocation])
	}
}

// forHumans normalises the white space of a subject for display, as
// Dovecot does for ENVELOPE: control characters and runs of white space
// (including what unfolding left) become one space, and leading and
// trailing space is removed. Encoded-words are left alone.
func forHumans(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f || (c == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' ')) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			space = b.Len() > 0
			continue
		}
		if c < ' ' || c == 0x7f {
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// fillEnvelope sets env from the header (RFC 9051 §7.5.2 ENVELOPE).
func fillEnvelope(env *Envelope, h *rawHeader) {
	str := func(k fieldKind, dst *string, bit EnvField) {
		if h.seen[k] {
			*dst = unfold(h.fields[k])
			env.Present |= bit
		}
	}
	str(fieldDate, &env.Date, EnvDate)
	str(fieldSubject, &env.Subject, EnvSubject)
	env.Subject = forHumans(env.Subject)
	str(fieldInReplyTo, &env.InReplyTo, EnvInReplyTo)
	str(fieldMessageID, &env.MessageID, EnvMessageID)
	addr := func(k fieldKind) []Address {
		if !h.seen[k] {
			return nil
		}
		return parseAddressList(unfold(h.fields[k]))
	}
	env.From = addr(fieldFrom)
	env.Sender = addr(fieldSender)
	env.ReplyTo = addr(fieldReplyTo)
	env.To = addr(fieldTo)
	env.Cc = addr(fieldCc)
	env.Bcc = addr(fieldBcc)
}

// preview decodes the kept start of the first text part.
func (p *parser) preview() string {
	if p.previewPart == nil || len(p.previewBuf) == 0 {
		return ""
	}
	text := decodeBody(p.previewBuf, p.previewPart, true)
	if strings.EqualFold(p.previewPart.Subtype, "html") {
		text = stripHTML(text)
	}
	return makePreview(text)
}
