package mailparse

import (
	"bytes"
	"html"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// ExtractText returns the searchable text of a message read from r (the
// same bytes Parse saw, read from the start): the header field values
// (unfolded, RFC 2047 encoded-words decoded), one field per line as
// "Name: value", and the body text, both UTF-8 and each cut at maxBytes
// (0: no limit; a cut never splits a UTF-8 sequence). Case folding is the
// caller's.
//
// The body text is every text/* leaf part, attachments included (a text
// attachment is text someone may search for), decoded from its transfer
// encoding and from its declared charset; text declared US-ASCII, UTF-8
// or an unknown charset that is not valid UTF-8 is read as Windows-1252,
// and invalid octets of any other charset are replaced with U+FFFD.
// text/html is reduced to its text: tags, comments, script and style
// contents are dropped and entities decoded, so that searching for a word does not match markup. The
// headers of attached messages (message/rfc822) are added to the body
// text, decoded like the top-level header. Parts that are not text are
// skipped. If info is nil, r is parsed first (and so must be read twice:
// pass info when you have it).
func ExtractText(r io.Reader, info *Info, maxBytes int) (header, body string, err error) {
	if info == nil {
		b, err := io.ReadAll(r)
		if err != nil {
			return "", "", err
		}
		if info, err = Parse(bytes.NewReader(b)); err != nil {
			return "", "", err
		}
		r = bytes.NewReader(b)
	}
	x := &extractor{r: r, max: maxBytes}
	hdr, err := x.read(0, info.Root.BodyStart)
	if err != nil {
		return "", "", err
	}
	var hb strings.Builder
	decodeHeaderText(&hb, hdr)
	header = cut(hb.String(), maxBytes)

	var bb strings.Builder
	if err := x.walk(&bb, &info.Root); err != nil {
		return "", "", err
	}
	return header, cut(bb.String(), maxBytes), nil
}

type extractor struct {
	r   io.Reader
	pos int64
	max int
	out int
}

// read returns the bytes [start, end) of the message; r is read forward
// only, so calls must come in ascending order.
func (x *extractor) read(start, end int64) ([]byte, error) {
	if start < x.pos {
		start = x.pos
	}
	if start > x.pos {
		if _, err := io.CopyN(io.Discard, x.r, start-x.pos); err != nil {
			return nil, eofOK(err)
		}
		x.pos = start
	}
	if end <= start {
		return nil, nil
	}
	b := make([]byte, end-start)
	n, err := io.ReadFull(x.r, b)
	x.pos += int64(n)
	return b[:n], eofOK(err)
}

func eofOK(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

func (x *extractor) full() bool { return x.max > 0 && x.out >= x.max }

func (x *extractor) walk(b *strings.Builder, p *Part) error {
	if x.full() {
		return nil
	}
	switch {
	case p.IsMessage():
		child := &p.Children[0]
		hdr, err := x.read(child.HeaderStart, child.BodyStart)
		if err != nil {
			return err
		}
		n := b.Len()
		decodeHeaderText(b, hdr)
		x.out += b.Len() - n
		return x.walk(b, child)
	case len(p.Children) > 0:
		for i := range p.Children {
			if err := x.walk(b, &p.Children[i]); err != nil {
				return err
			}
		}
		return nil
	case p.Type != "text":
		return nil
	}
	end := p.End
	if x.max > 0 {
		// Encoded text is at most ~4/3 of the decoded size (base64);
		// read a little more than needed, never the whole of a huge part.
		if lim := p.BodyStart + int64(2*(x.max-x.out)) + 1024; lim < end {
			end = lim
		}
	}
	raw, err := x.read(p.BodyStart, end)
	if err != nil {
		return err
	}
	text := decodeBody(raw, p, end < p.End)
	if p.Subtype == "html" {
		text = stripHTML(text)
	}
	if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
		b.WriteByte('\n')
	}
	b.WriteString(text)
	x.out += len(text)
	return nil
}

// cut shortens s to at most max bytes without splitting a UTF-8 sequence.
func cut(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// DecodeHeaderValue decodes RFC 2047 encoded-words in an unfolded header
// value into UTF-8; undecodable words are kept as written.
func DecodeHeaderValue(v string) string {
	if !strings.Contains(v, "=?") {
		return toUTF8(v)
	}
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return toUTF8(v)
	}
	return toUTF8(d)
}

// toUTF8 passes valid UTF-8 through (RFC 6532 headers) and reads other
// 8-bit text as Windows-1252, the usual charset of undeclared 8-bit mail.
func toUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	if rd, err := charset.Reader("windows-1252", strings.NewReader(s)); err == nil {
		if d, err := io.ReadAll(rd); err == nil {
			return strings.ToValidUTF8(string(d), "\uFFFD")
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// decodeHeaderText writes "Name: decoded value\n" for each field of a raw
// header block.
func decodeHeaderText(b *strings.Builder, hdr []byte) {
	var name string
	var val []byte
	flush := func() {
		if name != "" {
			b.WriteString(name)
			b.WriteString(": ")
			b.WriteString(DecodeHeaderValue(strings.TrimSpace(unfold(val))))
			b.WriteByte('\n')
		}
		name, val = "", nil
	}
	for len(hdr) > 0 {
		i := bytes.IndexByte(hdr, '\n')
		line := hdr
		if i >= 0 {
			line, hdr = hdr[:i+1], hdr[i+1:]
		} else {
			hdr = nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			val = append(val, line...)
			continue
		}
		flush()
		if n, at, ok := fieldName(line); ok {
			name, val = string(n), append([]byte(nil), line[at:]...)
		}
	}
	flush()
}

// decodeBody decodes a text part's raw body from its transfer encoding and
// charset into UTF-8. truncated says raw is a prefix of the body (a
// trailing incomplete sequence is then dropped quietly).
func decodeBody(raw []byte, p *Part, truncated bool) string {
	var data []byte
	switch strings.ToLower(p.Encoding) {
	case "base64":
		data = decodeBase64(raw)
	case "quoted-printable":
		d, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil && len(d) == 0 {
			d = raw
		}
		data = d
	default:
		data = raw
	}
	cs := strings.ToLower(strings.TrimSpace(p.Param("charset")))
	switch cs {
	case "", "us-ascii", "utf-8", "utf8", "x-unknown", "unknown-8bit":
		// Declared (or defaulted) ASCII/UTF-8 or unknown: 8-bit text
		// that is not UTF-8 is most often Windows-1252 in practice.
		if !utf8.Valid(data) {
			cs = "windows-1252"
		}
	}
	switch cs {
	case "", "us-ascii", "utf-8", "utf8", "x-unknown", "unknown-8bit":
	default:
		if rd, err := charset.Reader(cs, bytes.NewReader(data)); err == nil {
			if d, err := io.ReadAll(rd); err == nil || len(d) > 0 {
				data = d
			}
		}
	}
	s := string(data)
	if truncated {
		for len(s) > 0 {
			r, n := utf8.DecodeLastRuneInString(s)
			if r != utf8.RuneError || n != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	return toUTF8(s)
}

// decodeBase64 decodes base64 leniently: characters outside the alphabet
// (line breaks, garbage) are skipped and decoding stops at padding.
func decodeBase64(raw []byte) []byte {
	out := make([]byte, 0, len(raw)*3/4)
	var acc uint32
	n := 0
	for _, c := range raw {
		var v byte
		switch {
		case 'A' <= c && c <= 'Z':
			v = c - 'A'
		case 'a' <= c && c <= 'z':
			v = c - 'a' + 26
		case '0' <= c && c <= '9':
			v = c - '0' + 52
		case c == '+':
			v = 62
		case c == '/':
			v = 63
		case c == '=':
			// Padding ends a group; a new group may follow (some
			// agents concatenate encoded chunks).
			out = flushBase64(out, acc, n)
			n, acc = 0, 0
			continue
		default:
			continue
		}
		acc = acc<<6 | uint32(v)
		n++
		switch n {
		case 4:
			out = append(out, byte(acc>>16), byte(acc>>8), byte(acc))
			n, acc = 0, 0
		}
	}
	return flushBase64(out, acc, n)
}

// flushBase64 appends the octets of an incomplete final group of n
// characters.
func flushBase64(out []byte, acc uint32, n int) []byte {
	switch n {
	case 2:
		out = append(out, byte(acc>>4))
	case 3:
		out = append(out, byte(acc>>10), byte(acc>>2))
	}
	return out
}

// stripHTML reduces HTML to its text: tags and comments removed, script
// and style contents dropped, entities decoded, block tags as line breaks.
func stripHTML(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	lower := strings.ToLower(s)
	for i := 0; i < len(s); {
		c := s[i]
		if c != '<' {
			j := strings.IndexByte(s[i:], '<')
			if j < 0 {
				j = len(s) - i
			}
			b.WriteString(html.UnescapeString(s[i : i+j]))
			i += j
			continue
		}
		if strings.HasPrefix(s[i:], "<!--") {
			j := strings.Index(s[i+4:], "-->")
			if j < 0 {
				break
			}
			i += 4 + j + 3
			continue
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		tag := lower[i+1 : i+j]
		i += j + 1
		name := strings.TrimLeft(tag, "/")
		if k := strings.IndexAny(name, " \t\r\n/"); k >= 0 {
			name = name[:k]
		}
		if (name == "script" || name == "style") && !strings.HasPrefix(tag, "/") {
			k := strings.Index(lower[i:], "</"+name)
			if k < 0 {
				break
			}
			i += k
			continue
		}
		switch name {
		case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote":
			b.WriteByte('\n')
		case "td", "th":
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// makePreview folds white space and keeps at most previewRunes characters
// (RFC 8970 §3.1: no line breaks, at most 200 characters).
func makePreview(s string) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			if n++; n > previewRunes {
				break
			}
			b.WriteByte(' ')
			space = false
		}
		if n++; n > previewRunes {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// DecodeParam returns the UTF-8 value of a parameter: a "name*" value in
// RFC 2231 form (charset'language'%XX) is decoded, a value that is an
// RFC 2047 encoded-word (common though not allowed there) too.
func DecodeParam(p Param) string {
	if strings.HasSuffix(p.Name, "*") {
		parts := strings.SplitN(p.Value, "'", 3)
		if len(parts) == 3 {
			raw, err := url.PathUnescape(strings.ReplaceAll(parts[2], "+", "%2B"))
			if err != nil {
				raw = parts[2]
			}
			cs := strings.ToLower(parts[0])
			if cs != "" && cs != "utf-8" && cs != "us-ascii" {
				if rd, err := charset.Reader(cs, strings.NewReader(raw)); err == nil {
					if d, err := io.ReadAll(rd); err == nil {
						raw = string(d)
					}
				}
			}
			return toUTF8(raw)
		}
	}
	return DecodeHeaderValue(p.Value)
}
