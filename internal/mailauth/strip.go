package mailauth

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// maxFieldBytes bounds how much of one header field StripResults buffers to
// decide whether to drop it. A longer Authentication-Results field is
// judged on its first maxFieldBytes.
const maxFieldBytes = 16 << 10

// StripResults returns a reader that yields msg with every
// Authentication-Results header field whose authserv-id equals authservID
// (case-insensitively) removed from the header section: such a field
// arriving from outside is forged, since only we may speak for our name
// (RFC 8601 §5). Every other byte, including the whole body, passes
// unchanged. Fields are recognised only in the header section, which ends at
// the first empty line.
func StripResults(msg io.Reader, authservID string) io.Reader {
	return &stripper{r: bufio.NewReaderSize(msg, 4096), id: strings.ToLower(authservID)}
}

type stripper struct {
	r    *bufio.Reader
	id   string
	out  []byte // pending output
	body bool   // past the header section: copy through
	// passLine: the next bytes finish a physical line already passed on.
	passLine bool
	err      error
}

func (s *stripper) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.body {
			return s.r.Read(p)
		}
		s.next()
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// readLine reads one physical line (with its line ending); a line longer
// than the buffer comes back in pieces, with more set.
func (s *stripper) readLine() (line []byte, more bool, err error) {
	line, err = s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return line, true, nil
	}
	return line, false, err
}

// next reads one header field (with its continuation lines) and queues it
// for output unless it is a forged Authentication-Results field.
func (s *stripper) next() {
	if s.passLine {
		// The rest of an over-long physical line: copy it through.
		line, more, err := s.readLine()
		s.out, s.passLine, s.err = line, more, err
		return
	}
	field, complete, err := s.appendLine(nil)
	if len(field) == 0 {
		s.err = err
		return
	}
	if complete && isBlank(field) || err != nil {
		// End of the header section (or of a message without a body).
		s.out, s.body, s.err = field, true, err
		return
	}
	if !complete {
		// An over-long first line: judge the field on what we have.
		if s.id != "" && isResultsName(field) && authservIDOf(field) == s.id {
			s.out = s.out[:0]
			s.dropField()
			return
		}
		s.out, s.passLine = field, true
		return
	}
	if !isResultsName(field) {
		s.out = field
		return
	}
	// Gather continuation lines (starting with SP or HTAB).
	for {
		b, perr := s.r.Peek(1)
		if perr != nil || (b[0] != ' ' && b[0] != '\t') {
			break
		}
		field, complete, err = s.appendLine(field)
		if err != nil || !complete {
			break
		}
	}
	if s.id != "" && authservIDOf(field) == s.id {
		// Forged: drop the whole field, however long.
		s.out = s.out[:0]
		if !complete && err == nil {
			s.dropField()
		}
		s.err = err
		return
	}
	s.out, s.passLine, s.err = field, !complete && err == nil, err
}

// appendLine appends one physical line to field. complete is false when
// field grew beyond maxFieldBytes before the line ended.
func (s *stripper) appendLine(field []byte) ([]byte, bool, error) {
	for {
		line, more, err := s.readLine()
		field = append(field, line...)
		if err != nil || !more {
			return field, err == nil || len(line) > 0 && line[len(line)-1] == '\n', err
		}
		if len(field) > maxFieldBytes {
			return field, false, nil
		}
	}
}

// dropField discards the rest of the current physical line and any
// continuation lines after it.
func (s *stripper) dropField() {
	for {
		for {
			_, more, err := s.readLine()
			if err != nil {
				s.err = err
				return
			}
			if !more {
				break
			}
		}
		b, err := s.r.Peek(1)
		if err != nil || (b[0] != ' ' && b[0] != '\t') {
			return
		}
	}
}

func isBlank(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

const resultsName = "authentication-results"

// isResultsName reports whether a field starts with the name
// Authentication-Results followed by optional WSP and a colon.
func isResultsName(field []byte) bool {
	if len(field) < len(resultsName) || !bytes.EqualFold(field[:len(resultsName)], []byte(resultsName)) {
		return false
	}
	rest := bytes.TrimLeft(field[len(resultsName):], " \t")
	return len(rest) > 0 && rest[0] == ':'
}

// authservIDOf extracts the authserv-id (RFC 8601 §2.2: the first token of
// the field body, after optional CFWS, up to ";" or whitespace), lowercased.
func authservIDOf(field []byte) string {
	i := bytes.IndexByte(field, ':')
	v := field[i+1:]
	v = skipCFWS(v)
	end := 0
	for end < len(v) {
		c := v[end]
		if c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '(' {
			break
		}
		end++
	}
	id := v[:end]
	// authserv-id may be a quoted-string (it is a "value").
	if len(id) >= 2 && id[0] == '"' && id[len(id)-1] == '"' {
		id = id[1 : len(id)-1]
	}
	return strings.ToLower(strings.TrimSuffix(string(id), "."))
}

// skipCFWS skips whitespace, line breaks and (nested) comments.
func skipCFWS(v []byte) []byte {
	depth := 0
	for len(v) > 0 {
		c := v[0]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '\\' && depth > 0 && len(v) > 1:
			v = v[1:]
		case depth == 0:
			return v
		}
		v = v[1:]
	}
	return v
}
