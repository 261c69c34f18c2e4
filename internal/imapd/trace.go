package imapd

import (
	"bytes"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// tracer logs the protocol exchange of one connection at debug level when
// Options.Trace is set. It redacts credentials (LOGIN arguments,
// AUTHENTICATE responses) and never logs literal contents (message
// bodies): those appear as "<n octets>".
type tracer struct {
	log    *slog.Logger
	dir    string // "C" or "S"
	line   []byte
	skip   int64 // literal octets still to pass unlogged
	authIn bool  // client side: the next line is a SASL response
}

type tracedReader struct {
	r io.Reader
	t *tracer
}

func (tr tracedReader) Read(p []byte) (int, error) {
	n, err := tr.r.Read(p)
	tr.t.feed(p[:n])
	return n, err
}

type tracedWriter struct {
	w io.Writer
	t *tracer
}

func (tw tracedWriter) Write(p []byte) (int, error) {
	n, err := tw.w.Write(p)
	tw.t.feed(p[:n])
	return n, err
}

func (t *tracer) feed(p []byte) {
	for len(p) > 0 {
		if t.skip > 0 {
			n := int64(len(p))
			if n > t.skip {
				n = t.skip
			}
			t.skip -= n
			p = p[n:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(t.line) < 4096 {
				t.line = append(t.line, p...)
			}
			return
		}
		if len(t.line) < 4096 {
			t.line = append(t.line, p[:i]...)
		}
		p = p[i+1:]
		t.emit(strings.TrimSuffix(string(t.line), "\r"))
		t.line = t.line[:0]
	}
}

func (t *tracer) emit(line string) {
	shown := line
	if t.dir == "C" {
		shown = t.redact(line)
	}
	if n, ok := literalAtEnd(line); ok {
		t.skip = n
		shown += " <" + strconv.FormatInt(n, 10) + " octets>"
	}
	t.log.Debug("trace", "dir", t.dir, "line", shown)
}

// redact hides credentials in a client line.
func (t *tracer) redact(line string) string {
	if t.authIn {
		t.authIn = false
		return "<redacted SASL response>"
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	switch strings.ToUpper(f[1]) {
	case "LOGIN":
		return f[0] + " LOGIN <redacted>"
	case "AUTHENTICATE":
		if len(f) == 3 {
			t.authIn = true
		}
		if len(f) >= 3 {
			return f[0] + " AUTHENTICATE " + f[2] + " <redacted>"
		}
	}
	return line
}

// literalAtEnd reports a literal announced at the end of a line:
// "{n}", "{n+}" or "~{n}".
func literalAtEnd(line string) (int64, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(line[i+1:len(line)-1], "+"), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
