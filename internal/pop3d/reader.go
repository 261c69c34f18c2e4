package pop3d

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Errors from the command reader. errLineTooLong and errBadSyntax are the
// client's mistakes and leave the reader usable; other errors end the
// connection.
var (
	errLineTooLong = errors.New("line too long")
	errBadSyntax   = errors.New("bad command syntax")
)

// maxArgs is the most arguments any POP3 command takes (TOP msg n).
const maxArgs = 2

// command is one parsed command line.
type command struct {
	Name string   // upper-cased keyword, 3-4 letters or digits (RFC 1939 §3)
	Args []string // space-separated arguments, at most maxArgs
	// Rest is everything after the keyword and one space, unsplit; PASS
	// takes it whole, because passwords may contain spaces.
	Rest string
}

// lineReader reads CRLF- (or LF-) terminated lines of bounded length.
type lineReader struct {
	br  *bufio.Reader
	max int    // longest line accepted, terminator included
	buf []byte // reused for lines that span buffer fills
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, readBufferBytes), max: max}
}

// readLine returns the next line without its terminator. The result is
// valid until the next call. A line longer than max is consumed up to and
// including its LF and reported as errLineTooLong, so the reader stays in
// step with the client. io.EOF before any byte of a line is returned as is;
// a partial line at EOF is io.ErrUnexpectedEOF.
func (lr *lineReader) readLine() ([]byte, error) {
	lr.buf = lr.buf[:0]
	tooLong := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if !tooLong {
			if len(lr.buf)+len(chunk) > lr.max {
				tooLong = true
				lr.buf = lr.buf[:0]
			} else if err == nil && len(lr.buf) == 0 {
				// The common case: the whole line is in the buffer.
				return trimEOL(chunk), nil
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, errLineTooLong
			}
			return trimEOL(lr.buf), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(lr.buf) == 0 && len(chunk) == 0 && !tooLong {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// hasLine reports whether a complete line is already buffered, so that
// reading it will not block.
func (lr *lineReader) hasLine() bool {
	n := lr.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := lr.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// parseCommand splits a command line (without its terminator) into a
// keyword and arguments. RFC 1939 §3: a keyword of 3-4 characters, then
// arguments separated by single spaces, all printable ASCII. We accept any
// run of spaces or tabs as a separator and ignore trailing ones, because
// real clients send them; we refuse control characters (NUL, bare CR) and
// split at most maxArgs+1 arguments (handlers check the count). Octets
// above 127 are allowed in arguments so that UTF-8 user names and passwords
// work.
func parseCommand(line []byte) (command, error) {
	for _, c := range line {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return command{}, errBadSyntax
		}
	}
	kw := line
	var rest []byte
	if i := bytes.IndexAny(line, " \t"); i >= 0 {
		kw, rest = line[:i], line[i+1:]
	}
	if len(kw) < 3 || len(kw) > 4 {
		return command{}, errBadSyntax
	}
	name := make([]byte, len(kw))
	for i, c := range kw {
		switch {
		case c >= 'a' && c <= 'z':
			name[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9': // digits: UTF8 (RFC 6856)
			name[i] = c
		default:
			return command{}, errBadSyntax
		}
	}
	cmd := command{Name: string(name), Rest: string(rest)}
	for _, f := range bytes.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '\t' }) {
		cmd.Args = append(cmd.Args, string(f))
		if len(cmd.Args) > maxArgs {
			break // too many for any command; the handler refuses it
		}
	}
	return cmd, nil
}
