package mailparse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/textproto"
	"strings"
)

// Parse reads a whole message (CRLF line endings) from r and returns its
// metadata. It reads r sequentially and keeps only headers in memory, so a
// large message costs no more than its largest header block.
//
// This first version parses the top-level header only; the MIME walk is
// being written (see the IMAP issue's note).
func Parse(r io.Reader) (*Info, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	var hdr bytes.Buffer
	var off int64
	for {
		line, err := br.ReadSlice('\n')
		off += int64(len(line))
		if len(line) > 0 && hdr.Len() < 1<<20 {
			hdr.Write(line)
		}
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
		if err == nil && (string(line) == "\r\n" || string(line) == "\n") {
			break
		}
	}
	bodyStart := off
	var lines int64
	buf := make([]byte, 32*1024)
	for {
		n, err := br.Read(buf)
		off += int64(n)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if err != nil {
			break
		}
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(hdr.Bytes(), '\r', '\n'))))
	h, _ := tp.ReadMIMEHeader()
	info := &Info{}
	info.Envelope.Date = h.Get("Date")
	info.Envelope.Subject = h.Get("Subject")
	info.Envelope.MessageID = h.Get("Message-Id")
	info.Envelope.InReplyTo = h.Get("In-Reply-To")
	info.Root = Part{Type: "text", Subtype: "plain", Params: []Param{{"charset", "us-ascii"}}, BodyStart: bodyStart, End: off, Lines: lines}
	if ct := h.Get("Content-Type"); ct != "" {
		mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
		if t, st, ok := strings.Cut(mt, "/"); ok {
			info.Root.Type, info.Root.Subtype = t, st
		}
	}
	return info, nil
}

// Marshal encodes info for storage. Unmarshal reverses it.
func (info *Info) Marshal() ([]byte, error) { return json.Marshal(info) }

// Unmarshal decodes what Marshal produced.
func Unmarshal(b []byte) (*Info, error) {
	info := new(Info)
	if err := json.Unmarshal(b, info); err != nil {
		return nil, err
	}
	return info, nil
}

// ExtractText returns the searchable text of a message read from r: the
// header field values (unfolded, encoded-words decoded) and the body text
// (transfer encodings and charsets decoded, text parts only), both UTF-8,
// each cut at maxBytes (0: no limit). Case folding is the caller's.
//
// This first version returns the raw header and body; the decoding walk
// is being written with Parse.
func ExtractText(r io.Reader, info *Info, maxBytes int) (header, body string, err error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", "", err
	}
	if info != nil && info.Root.BodyStart <= int64(len(b)) {
		header, body = string(b[:info.Root.BodyStart]), string(b[info.Root.BodyStart:])
	} else {
		body = string(b)
	}
	if maxBytes > 0 {
		if len(header) > maxBytes {
			header = header[:maxBytes]
		}
		if len(body) > maxBytes {
			body = body[:maxBytes]
		}
	}
	return header, body, nil
}
