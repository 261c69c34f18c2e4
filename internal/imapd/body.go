package imapd

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/skrytka/skrytka/internal/imapwire"
	"github.com/skrytka/skrytka/internal/mailparse"
	"github.com/skrytka/skrytka/internal/store"
)

// maxHeaderBytes caps the header bytes read to answer HEADER.FIELDS.
const maxHeaderBytes = 1 << 20

// bodySource serves body sections of one message, opening it lazily.
type bodySource struct {
	c  *conn
	m  *store.Message
	mr store.MessageReader
}

func (bs *bodySource) close() {
	if bs.mr != nil {
		bs.mr.Close()
	}
}

func (bs *bodySource) open() error {
	if bs.mr != nil {
		return nil
	}
	c := bs.c
	mr, err := c.srv.opts.Store.OpenMessage(c.ctx, c.acct.ID, c.sel.mbox.ID, bs.m.UID)
	if err != nil {
		return err
	}
	bs.mr = mr
	return nil
}

// streamError is an error after a response began: the connection must end.
type streamError struct{ err error }

func (e *streamError) Error() string { return "streaming body: " + e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// write writes the value of a body item (a literal, or NIL when the
// section does not exist). Errors before any byte of the value was written
// become NIL; later ones are fatal to the connection.
func (bs *bodySource) write(it *fetchItem) error {
	c := bs.c
	if err := bs.open(); err != nil {
		c.log.Warn("open message", "uid", bs.m.UID, "err", err)
		c.bw.WriteString("NIL")
		return nil
	}
	info := bs.m.Parsed
	size := bs.mr.Size()
	switch it.kind {
	case fBinary, fBinarySize:
		return bs.writeBinary(it, info, size)
	}
	sec := it.sec
	if len(sec.part) == 0 && (sec.spec == "" || info == nil) {
		if sec.spec != "" && info == nil {
			c.bw.WriteString("NIL")
			return nil
		}
		return bs.writeRange(0, size, it)
	}
	var start, end int64
	ok := info != nil
	if ok {
		start, end, ok = imapwire.SectionRange(info, sec.part, sec.spec)
	}
	if !ok {
		// RFC 9051 §6.4.5: a missing part yields an empty string.
		c.bw.WriteString(`""`)
		return nil
	}
	if strings.HasPrefix(sec.spec, "HEADER.FIELDS") {
		if end-start > maxHeaderBytes {
			end = start + maxHeaderBytes
		}
		hdr := make([]byte, end-start)
		if _, err := bs.mr.ReadAt(hdr, start); err != nil && !errors.Is(err, io.EOF) {
			c.bw.WriteString("NIL")
			return nil
		}
		out := imapwire.FilterHeader(hdr, sec.fields, sec.spec == "HEADER.FIELDS.NOT")
		return bs.writeBytes(out, it)
	}
	return bs.writeRange(start, end, it)
}

// partialRange applies <off.n> to a value of size n.
func partialRange(it *fetchItem, size int64) (off, n int64) {
	if !it.partial {
		return 0, size
	}
	if it.off >= size {
		return size, 0
	}
	n = size - it.off
	if it.n < n {
		n = it.n
	}
	return it.off, n
}

func (bs *bodySource) writeRange(start, end int64, it *fetchItem) error {
	if end < start {
		end = start
	}
	off, n := partialRange(it, end-start)
	bs.c.bw.Write(imapwire.AppendLiteralHeader(nil, n, false))
	if n == 0 {
		return nil
	}
	if _, err := io.Copy(bs.c.bw, io.NewSectionReader(bs.mr, start+off, n)); err != nil {
		return &streamError{err}
	}
	return nil
}

func (bs *bodySource) writeBytes(v []byte, it *fetchItem) error {
	off, n := partialRange(it, int64(len(v)))
	bs.c.bw.Write(imapwire.AppendLiteralHeader(nil, n, false))
	_, err := bs.c.bw.Write(v[off : off+n])
	if err != nil {
		return &streamError{err}
	}
	return nil
}

// errUnknownCTE: BINARY of a part whose encoding we cannot undo
// (RFC 3516 §4.3: NO [UNKNOWN-CTE]).
var errUnknownCTE = errors.New("unknown content-transfer-encoding")

// decoder for a part's transfer encoding.
func cteReader(enc string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "7bit", "8bit", "binary":
		return r, nil
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &b64Cleaner{r: bufio.NewReader(r)}), nil
	case "quoted-printable":
		return quotedprintable.NewReader(r), nil
	}
	return nil, errUnknownCTE
}

// b64Cleaner drops characters outside the base64 alphabet (line breaks,
// junk) as RFC 2045 §6.8 tells decoders to.
type b64Cleaner struct{ r *bufio.Reader }

func (b *b64Cleaner) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := b.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
			p[n] = c
			n++
		}
	}
	return n, nil
}

// writeBinary serves BINARY[part] and BINARY.SIZE[part] (RFC 3516):
// the decoded content, as a literal8 when it holds NUL octets.
func (bs *bodySource) writeBinary(it *fetchItem, info *mailparse.Info, size int64) error {
	c := bs.c
	var start, end int64
	enc := ""
	if len(it.sec.part) == 0 {
		start, end = 0, size
	} else {
		var p *mailparse.Part
		ok := info != nil
		if ok {
			p, ok = imapwire.FindPart(info, it.sec.part)
		}
		if !ok {
			c.bw.WriteString("NIL")
			return nil
		}
		start, end, enc = p.BodyStart, p.End, p.Encoding
		if p.Type == "multipart" || p.Type == "message" {
			enc = ""
		}
	}
	open := func() (io.Reader, error) {
		return cteReader(enc, io.NewSectionReader(bs.mr, start, end-start))
	}
	// First pass: decoded size and whether a NUL octet occurs.
	r, err := open()
	if err != nil {
		// checkBinary refused unknown encodings before the response began.
		c.bw.WriteString("NIL")
		return nil
	}
	cnt := &countNUL{}
	if _, err := io.Copy(cnt, r); err != nil {
		// Undecodable content: serve what decodes (RFC 3516 leaves this to
		// the server); here the count covers the decodable prefix.
		c.log.Debug("binary decode", "uid", bs.m.UID, "err", err)
	}
	if it.kind == fBinarySize {
		c.bw.Write(appendUint(nil, uint64(cnt.n)))
		return nil
	}
	off, n := partialRange(it, cnt.n)
	c.bw.Write(imapwire.AppendLiteralHeader(nil, n, cnt.nul))
	if n == 0 {
		return nil
	}
	r, _ = open()
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return &streamError{err}
	}
	if _, err := io.CopyN(c.bw, r, n); err != nil {
		return &streamError{fmt.Errorf("binary: %w", err)}
	}
	return nil
}

type countNUL struct {
	n   int64
	nul bool
}

func (w *countNUL) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if !w.nul && bytes.IndexByte(p, 0) >= 0 {
		w.nul = true
	}
	return len(p), nil
}

// checkBinary reports NO [UNKNOWN-CTE] for a BINARY item on a part whose
// transfer encoding we cannot undo (RFC 3516 §4.3). It runs before any
// byte of the message's FETCH response is written.
func checkBinary(m *store.Message, it *fetchItem) error {
	if len(it.sec.part) == 0 || m.Parsed == nil {
		return nil
	}
	p, ok := imapwire.FindPart(m.Parsed, it.sec.part)
	if !ok || p.Type == "multipart" || p.Type == "message" {
		return nil
	}
	if _, err := cteReader(p.Encoding, nil); err != nil {
		return no("UNKNOWN-CTE", "unknown Content-Transfer-Encoding")
	}
	return nil
}
