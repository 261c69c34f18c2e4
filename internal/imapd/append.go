package imapd

import (
	"errors"
	"io"
	"strings"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// cmdAppend: RFC 9051 §6.3.12 with UIDPLUS APPENDUID (RFC 4315),
// MULTIAPPEND (RFC 3502), LITERAL+ (RFC 7888), APPENDLIMIT (RFC 7889),
// literal8 (RFC 3516) and UTF8 (RFC 6855 §4). Messages are streamed into
// the store's staging area, never held in memory, and added in one atomic
// store call; every path ends with a tagged reply.
func cmdAppend(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	name, nameErr := c.mailboxArg(d)
	if d.err != nil {
		return d.err
	}
	st := c.srv.opts.Store
	var mb store.Mailbox
	// The first error decides the reply; later messages are still read
	// (or refused before they are sent) to stay in step with the client.
	failed := nameErr
	if failed == nil {
		var err error
		mb, err = st.Mailbox(c.ctx, c.acct.ID, name)
		if err == nil && mb.NoSelect {
			err = store.ErrNoSelect
		}
		if errors.Is(err, store.ErrNotFound) {
			err = no("TRYCREATE", "no such mailbox")
		}
		failed = err
	}
	var msgs []store.AppendMessage
	defer func() {
		for _, m := range msgs {
			m.Body.Discard()
		}
	}()
	for i := 0; ; i++ {
		if i == 0 {
			d.sp()
		} else if !d.maybe(' ') {
			break
		}
		m, err := c.appendOne(d, failed)
		if d.err != nil {
			return d.err
		}
		if err != nil {
			if failed == nil {
				failed = err
			}
			if d.atLineEnd {
				// A synchronising literal was refused: the client sends
				// nothing more for this command.
				return failed
			}
			continue
		}
		if m.Body != nil {
			msgs = append(msgs, m)
		}
		if len(msgs) > maxAppendMessages && failed == nil {
			failed = no("LIMIT", "too many messages in one APPEND")
		}
	}
	if err := d.end(); err != nil {
		return err
	}
	if failed != nil {
		return failed
	}
	res, err := st.Append(c.ctx, c.acct.ID, mb.ID, msgs)
	if err != nil {
		return err
	}
	if c.sel != nil && c.sel.mbox.ID == mb.ID {
		c.sel.dirty = true
	}
	code := make([]byte, 0, 40)
	code = append(code, "APPENDUID "...)
	code = appendUint(code, uint64(res.UIDValidity))
	code = append(code, ' ')
	code = appendUIDList(code, res.UIDs)
	return c.ok(cmd, string(code), "APPEND completed")
}

// appendOne reads one message of an APPEND: [flags] [date] and the
// literal (or "UTF8 (" literal8 ")"). With failed set, or on an error, the
// octets are skipped (or, for a synchronising literal, refused so that the
// client does not send them: d.atLineEnd is then set). Syntax errors are
// left in d.err.
func (c *conn) appendOne(d *decoder, failed error) (store.AppendMessage, error) {
	var flagNames []string
	if d.peek() == '(' {
		flagNames = d.flagList()
		d.sp()
	}
	var date time.Time
	if d.peek() == '"' {
		date = d.dateTime()
		d.sp()
	}
	utf8Data := false
	if ch := d.peek(); ch == 'U' || ch == 'u' {
		if strings.ToUpper(d.atom()) != "UTF8" {
			d.fail("expected literal or UTF8")
		}
		d.sp()
		d.expect('(')
		if d.peek() != '~' {
			d.fail("UTF8 needs a literal8")
		}
		utf8Data = true
	}
	if d.err != nil {
		return store.AppendMessage{}, nil
	}
	flags, err := parseFlags(flagNames)
	if failed == nil && err != nil {
		failed = err
	}
	if failed == nil && utf8Data && !c.utf8Accept {
		failed = bad("", "UTF8 APPEND needs ENABLE UTF8=ACCEPT")
	}
	if failed != nil && (d.peek() == '{' || d.peek() == '~') {
		if lit, sync := d.peekLiteralSync(); sync && lit {
			d.literalHeaderNoCont()
			return store.AppendMessage{}, failed
		}
	}
	n, _ := d.literalHeader(c.srv.opts.AppendLimit)
	if d.err != nil {
		if d.err == errLiteralTooBig {
			d.err = nil
			return store.AppendMessage{}, no("TOOBIG", "message larger than APPENDLIMIT")
		}
		return store.AppendMessage{}, nil
	}
	body := io.LimitReader(d.br, n)
	var staged store.Staged
	if failed == nil {
		staged, err = c.srv.opts.Store.Stage(c.ctx, body, c.srv.opts.AppendLimit)
		if err != nil {
			failed = err
		}
	}
	// Whatever Stage did, the literal must be consumed to stay in step.
	if _, cerr := io.Copy(io.Discard, body); cerr != nil {
		if staged != nil {
			staged.Discard()
		}
		d.setErr(cerr)
		return store.AppendMessage{}, nil
	}
	c.setReadDeadline(c.srv.opts.CommandTimeout)
	if utf8Data {
		d.expect(')')
	}
	if failed != nil {
		if staged != nil {
			staged.Discard()
		}
		return store.AppendMessage{}, failed
	}
	return store.AppendMessage{Body: staged, Flags: flags, InternalDate: date}, nil
}

// peekLiteralSync looks at the literal header in the buffer without
// consuming it: lit reports a well-formed header, sync that it is
// synchronising.
func (d *decoder) peekLiteralSync() (lit, sync bool) {
	for i := 1; i < 32; i++ {
		b, err := d.br.Peek(i)
		if i == 1 && err == nil && b[0] == '~' {
			continue
		}
		if err != nil {
			return false, false
		}
		switch b[i-1] {
		case '}':
			return true, b[i-2] != '+'
		case '\n':
			return false, false
		}
	}
	return false, false
}

// literalHeaderNoCont consumes a synchronising literal header without
// sending the continuation, so the client does not send the octets.
func (d *decoder) literalHeaderNoCont() {
	d.maybe('~')
	d.expect('{')
	d.number64()
	d.expect('}')
	d.crlf()
}
