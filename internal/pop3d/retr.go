package pop3d

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sync"
)

// cmdRETR is RFC 1939 §5 RETR msg: the message, dot-stuffed, streamed from
// the store through the connection's buffered writer.
func (c *conn) cmdRETR(cmd command) error {
	if len(cmd.Args) != 1 {
		c.badCommand("RETR takes one argument")
		return nil
	}
	n, m := c.message(cmd.Args[0])
	if m == nil {
		return nil
	}
	if err := c.sendMessage(n, m, -1); err != nil {
		return err
	}
	m.retrieved = true
	return nil
}

// cmdTOP is RFC 1939 §7 TOP msg n: the header, the blank line and the first
// n lines of the body.
func (c *conn) cmdTOP(cmd command) error {
	if len(cmd.Args) != 2 {
		c.badCommand("TOP takes two arguments")
		return nil
	}
	lines, ok := parseMsgNumber(cmd.Args[1])
	if !ok {
		c.badCommand("invalid line count")
		return nil
	}
	n, m := c.message(cmd.Args[0])
	if m == nil {
		return nil
	}
	return c.sendMessage(n, m, lines)
}

// sendMessage writes "+OK", the message (all of it if bodyLines < 0) and
// the terminating dot. If the store cannot open the message, the client gets
// -ERR. Once "+OK" is out, a failure can only be reported by closing the
// connection, so it is returned.
func (c *conn) sendMessage(n int, m *message, bodyLines int) error {
	s := c.sess
	r, err := s.st.OpenMessage(c.ctx, s.acct.ID, s.inbox, m.uid)
	if err != nil {
		c.replyError("open message", err)
		return nil
	}
	defer r.Close()
	if bodyLines < 0 {
		c.reply("+OK %d octets", m.size)
	} else {
		c.reply("+OK top of message %d follows", n)
	}
	if err := writeDotStuffed(c.bw, r, bodyLines); err != nil {
		c.log.Error("sending message failed", "err", err)
		return fmt.Errorf("sending message %d: %w", n, err)
	}
	return nil
}

// chunkPool holds the buffers messages are read into: 128 KiB, so a
// body stored inline (at most 64 KiB in the embedded store) is one read
// and a body file takes few read and write system calls.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// writeDotStuffed copies a stored message (CRLF line endings) to w as a
// POP3 multi-line response body (RFC 1939 §3): a "." is added before every
// line that starts with "."; a CRLF is added if the message does not end
// with one; then ".\r\n" ends it. If bodyLines >= 0, only the header, the
// empty line after it and bodyLines lines of the body are sent (TOP). The
// message is streamed in chunks: memory does not grow with its size.
func writeDotStuffed(w *bufio.Writer, r io.Reader, bodyLines int) error {
	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	buf := *bufp
	if bodyLines < 0 {
		return writeAllDotStuffed(w, r, buf)
	}

	bol := true       // at the beginning of a line
	inBody := false   // the empty line after the header was passed
	lineLen := 0      // octets of the current line so far, before LF
	firstCR := false  // the current line started with CR
	left := bodyLines // body lines still to send (TOP)
	done := false
	for !done {
		nr, rerr := r.Read(buf)
		chunk := buf[:nr]
		for len(chunk) > 0 {
			if bol {
				if inBody && bodyLines >= 0 && left <= 0 {
					done = true
					break
				}
				if chunk[0] == '.' {
					w.WriteByte('.')
				}
				bol, lineLen, firstCR = false, 0, chunk[0] == '\r'
			}
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				w.Write(chunk)
				lineLen += len(chunk)
				break
			}
			w.Write(chunk[:i+1])
			lineLen += i
			empty := lineLen == 0 || lineLen == 1 && firstCR
			if !inBody {
				inBody = empty
			} else {
				left--
			}
			bol = true
			chunk = chunk[i+1:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if !bol {
		w.WriteString("\r\n")
	}
	_, err := w.WriteString(".\r\n")
	return err
}

// writeAllDotStuffed is writeDotStuffed for a whole message (RETR). It
// looks for dots rather than for line ends: a dot is far rarer than a line
// end in mail (base64 has none), so one IndexByte call covers many lines,
// and a chunk without a dot at the start of a line goes to w in one piece.
// Each dot found is stuffed if it starts a line: it follows an LF in the
// chunk, or it is the chunk's first octet and the previous chunk ended
// with an LF.
func writeAllDotStuffed(w *bufio.Writer, r io.Reader, buf []byte) error {
	bol := true // the next octet starts a line
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			from := 0 // chunk[from:] is not written yet
			for i := 0; i < n; {
				j := bytes.IndexByte(chunk[i:], '.')
				if j < 0 {
					break
				}
				i += j
				if i > 0 && chunk[i-1] == '\n' || i == 0 && bol {
					w.Write(chunk[from:i])
					w.WriteByte('.')
					from = i // the original dot goes out with what follows
				}
				i++
			}
			w.Write(chunk[from:])
			bol = chunk[n-1] == '\n'
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if !bol {
		w.WriteString("\r\n")
	}
	_, err := w.WriteString(".\r\n")
	return err
}
