package imapd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Parse errors. A syntaxError gets a tagged BAD and the rest of the line is
// discarded; a fatalError gets BAD or BYE and the connection is closed
// because the byte stream can no longer be trusted.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

type fatalError struct {
	code, msg string
}

func (e *fatalError) Error() string { return e.msg }

var (
	errLineTooLong = &fatalError{"TOOBIG", "command line too long"}
	// errLiteralRejected: a synchronising literal was refused before the
	// client sent it; the command line ended with the literal's header.
	errLiteralTooBig = &syntaxError{"literal too large"}
)

// decoder reads one command from the client, on demand, argument by
// argument. Errors are sticky: after the first, every method returns a zero
// value and d.err holds the error, which end() reports. It never reads past
// the end of the current command.
type decoder struct {
	c  *conn
	br *bufio.Reader

	err       error
	lineBytes int   // bytes of the current line segment
	litTotal  int64 // literal bytes of this command
	litCount  int   // literals in this command
	depth     int
	// atLineEnd is set when the command's final CRLF was consumed (or a
	// literal was refused at the end of a line).
	atLineEnd bool
	// maxLiteral overrides the per-literal cap (APPEND raises it).
	maxLiteral int64
}

func (d *decoder) reset() {
	d.err = nil
	d.lineBytes = 0
	d.litTotal = 0
	d.litCount = 0
	d.depth = 0
	d.atLineEnd = false
	d.maxLiteral = d.c.srv.opts.MaxLiteralBytes
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = &syntaxError{fmt.Sprintf(format, args...)}
	}
}

func (d *decoder) setErr(err error) {
	if d.err == nil {
		d.err = err
	}
}

// peek returns the next byte without consuming it; 0 on error.
func (d *decoder) peek() byte {
	if d.err != nil {
		return 0
	}
	b, err := d.br.Peek(1)
	if err != nil {
		d.setErr(err)
		return 0
	}
	return b[0]
}

// stringAhead reports whether a quoted string or a literal starts here.
// "~" starts a literal8 only as "~{" (RFC 3516): alone it is an ordinary
// ATOM-CHAR, so "~backup" is a mailbox name.
func (d *decoder) stringAhead() bool {
	switch d.peek() {
	case '"', '{':
		return true
	case '~':
		b, err := d.br.Peek(2)
		return err == nil && b[1] == '{'
	}
	return false
}

// ahead reports whether the next bytes are s, without consuming them.
func (d *decoder) ahead(s string) bool {
	if d.err != nil {
		return false
	}
	b, err := d.br.Peek(len(s))
	return err == nil && string(b) == s
}

func (d *decoder) readByte() byte {
	if d.err != nil {
		return 0
	}
	if d.lineBytes >= d.c.srv.opts.MaxLineBytes {
		d.setErr(errLineTooLong)
		return 0
	}
	b, err := d.br.ReadByte()
	if err != nil {
		d.setErr(err)
		return 0
	}
	d.lineBytes++
	return b
}

// maybe consumes c if it is next.
func (d *decoder) maybe(c byte) bool {
	if d.peek() == c && d.err == nil {
		d.readByte()
		return true
	}
	return false
}

func (d *decoder) expect(c byte) {
	if d.err != nil {
		return
	}
	if got := d.peek(); got != c || d.err != nil {
		if d.err == nil {
			d.fail("expected %q, got %q", c, got)
		}
		return
	}
	d.readByte()
}

func (d *decoder) sp() { d.expect(' ') }

// crlf consumes the end of the command. A lone LF is tolerated.
func (d *decoder) crlf() {
	if d.maybe('\r') {
		d.expect('\n')
	} else {
		d.expect('\n')
	}
	if d.err == nil {
		d.atLineEnd = true
	}
}

// end checks that the command line is complete and returns the first error.
func (d *decoder) end() error {
	d.crlf()
	return d.err
}

// discardLine skips the rest of a failed command: up to and including the
// next LF, also skipping the octets of a non-synchronising literal that
// ends a line. It gives up (returns false) on a line longer than allowed.
func (d *decoder) discardLine() bool {
	if d.atLineEnd {
		return true
	}
	max := d.c.srv.opts.MaxLineBytes
	var tail []byte
	for n := 0; ; n++ {
		if n > max {
			return false
		}
		b, err := d.br.ReadByte()
		if err != nil {
			return false
		}
		if b != '\n' {
			if len(tail) < 32 {
				tail = append(tail, b)
			} else {
				tail = append(tail[1:], b)
			}
			continue
		}
		// Was it "{n+}\r\n"? Then skip n octets and continue with the line.
		s := strings.TrimSuffix(string(tail), "\r")
		if i := strings.LastIndexByte(s, '{'); i >= 0 && strings.HasSuffix(s, "+}") {
			size, err := strconv.ParseInt(s[i+1:len(s)-2], 10, 64)
			if err == nil && size <= d.c.srv.opts.MaxLiteralBytes {
				if _, err := io.CopyN(io.Discard, d.br, size); err != nil {
					return false
				}
				tail = tail[:0]
				n = 0
				continue
			}
			return false
		}
		return true
	}
}

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

// atom reads 1*ATOM-CHAR.
func (d *decoder) atom() string { return d.chars(isAtomChar, "atom") }

func (d *decoder) chars(ok func(byte) bool, what string) string {
	if d.err != nil {
		return ""
	}
	var sb []byte
	for {
		c := d.peek()
		if d.err != nil {
			if errors.Is(d.err, io.EOF) && len(sb) > 0 {
				return string(sb)
			}
			return ""
		}
		if !ok(c) {
			break
		}
		sb = append(sb, d.readByte())
	}
	if len(sb) == 0 {
		d.fail("expected %s", what)
	}
	return string(sb)
}

// tag reads a command tag: 1*<ASTRING-CHAR except "+">.
func (d *decoder) tag() string {
	return d.chars(func(c byte) bool { return (isAtomChar(c) || c == ']') && c != '+' }, "tag")
}

// number reads a number (RFC 9051 number, 32 bits unless wide).
func (d *decoder) number64() uint64 {
	s := d.chars(func(c byte) bool { return c >= '0' && c <= '9' }, "number")
	if d.err != nil {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		d.fail("number out of range")
		return 0
	}
	return n
}

func (d *decoder) number() uint32 {
	n := d.number64()
	if n > 1<<32-1 {
		d.fail("number out of range")
		return 0
	}
	return uint32(n)
}

// nzNumber reads a non-zero 32-bit number.
func (d *decoder) nzNumber() uint32 {
	n := d.number()
	if n == 0 && d.err == nil {
		d.fail("expected non-zero number")
	}
	return n
}

// quoted reads a quoted string; the opening quote is next.
func (d *decoder) quoted() string {
	d.expect('"')
	var sb []byte
	for d.err == nil {
		c := d.readByte()
		switch c {
		case '"':
			return string(sb)
		case '\\':
			c = d.readByte()
			if c != '"' && c != '\\' {
				d.fail("bad escape in quoted string")
				return ""
			}
		case '\r', '\n', 0:
			d.fail("bad character in quoted string")
			return ""
		}
		sb = append(sb, c)
	}
	return ""
}

// literalHeader reads "{n}" / "{n+}" / "~{n}" and the CRLF after it, sends
// the continuation request for a synchronising literal once the size is
// accepted by max, and returns the size. binary reports "~".
func (d *decoder) literalHeader(max int64) (n int64, binary bool) {
	binary = d.maybe('~')
	d.expect('{')
	size := d.number64()
	nonSync := d.maybe('+') // RFC 7888 (LITERAL- uses the same syntax)
	d.expect('}')
	d.crlf()
	if d.err != nil {
		return 0, false
	}
	d.atLineEnd = false
	d.lineBytes = 0
	if d.litCount++; d.litCount > maxLiteralsPerCommand {
		d.setErr(&fatalError{"LIMIT", "too many literals in one command"})
		return 0, binary
	}
	if int64(size) > max {
		if nonSync {
			// The octets are on their way and cannot be skipped safely.
			d.setErr(&fatalError{"TOOBIG", "non-synchronizing literal too large"})
		} else {
			d.atLineEnd = true
			d.setErr(errLiteralTooBig)
		}
		return 0, binary
	}
	if !nonSync {
		if err := d.c.continuation("Ready"); err != nil {
			d.setErr(err)
			return 0, binary
		}
	}
	d.c.setReadDeadline(d.c.srv.opts.LiteralTimeout)
	return int64(size), binary
}

// literal reads a whole literal (bounded by the small caps).
func (d *decoder) literal() string {
	max := d.maxLiteral
	if rest := d.c.srv.opts.MaxCommandLiteralBytes - d.litTotal; rest < max {
		max = rest
	}
	n, _ := d.literalHeader(max)
	if d.err != nil {
		return ""
	}
	d.litTotal += n
	buf := make([]byte, n)
	if _, err := io.ReadFull(d.br, buf); err != nil {
		d.setErr(err)
		return ""
	}
	d.c.setReadDeadline(d.c.srv.opts.CommandTimeout)
	return string(buf)
}

// string reads a quoted string or a literal.
func (d *decoder) string() string {
	switch d.peek() {
	case '"':
		return d.quoted()
	case '{', '~':
		if d.stringAhead() {
			return d.literal()
		}
	}
	d.fail("expected string")
	return ""
}

// isAStringChar: ASTRING-CHAR, plus 8-bit octets, which clients send in
// unquoted UTF-8 mailbox names (accepted leniently; validated later).
func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' || c >= 0x80 }

// astring reads an atom (with "]") or a string.
func (d *decoder) astring() string {
	if d.stringAhead() {
		return d.string()
	}
	return d.chars(isAStringChar, "astring")
}

// nstring reads NIL or a string; ok is false for NIL.
func (d *decoder) nstring() (s string, ok bool) {
	if d.stringAhead() {
		return d.string(), true
	}
	a := d.atom()
	if d.err == nil && !strings.EqualFold(a, "NIL") {
		d.fail("expected NIL or string")
	}
	return "", false
}

// listMailbox reads list-mailbox: 1*list-char / string (list-char adds
// "%", "*" and "]" to ATOM-CHAR).
func (d *decoder) listMailbox() string {
	if d.stringAhead() {
		return d.string()
	}
	return d.chars(func(c byte) bool { return isAStringChar(c) || c == '%' || c == '*' }, "list-mailbox")
}

// list reads "(" [item *(SP item)] ")", calling item for each element.
// With empty false, "()" is a syntax error.
func (d *decoder) list(empty bool, item func()) {
	d.expect('(')
	if d.err != nil {
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > d.c.srv.opts.MaxNesting {
		d.fail("too deeply nested")
		return
	}
	if d.maybe(')') {
		if !empty {
			d.fail("empty list")
		}
		return
	}
	for d.err == nil {
		item()
		if d.maybe(')') {
			return
		}
		d.sp()
	}
}

// flagName reads a flag: "\" atom or atom (keyword).
func (d *decoder) flagName() string {
	if d.maybe('\\') {
		return `\` + d.atom()
	}
	return d.atom()
}

// dateTime reads a quoted date-time: "dd-Mon-yyyy hh:mm:ss +zzzz".
func (d *decoder) dateTime() time.Time {
	s := d.quoted()
	if d.err != nil {
		return time.Time{}
	}
	t, err := time.Parse("_2-Jan-2006 15:04:05 -0700", s)
	if err != nil {
		d.fail("bad date-time")
	}
	return t
}

// date reads a search date: date-text or quoted date-text (d-Mon-yyyy).
func (d *decoder) date() time.Time {
	var s string
	if d.peek() == '"' {
		s = d.quoted()
	} else {
		s = d.chars(func(c byte) bool { return isAtomChar(c) }, "date")
	}
	if d.err != nil {
		return time.Time{}
	}
	t, err := time.Parse("2-Jan-2006", s)
	if err != nil {
		d.fail("bad date")
	}
	return t
}
