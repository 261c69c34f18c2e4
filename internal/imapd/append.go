package imapd

import (
	"errors"
	"io"
	"strings"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// cmdAppend: RFC 9051 §6.3.12 with UIDPLUS APPENDUID (RFC 4315),
// LITERAL+ (RFC 7888), APPENDLIMIT (RFC 7889) and literal8 (RFC 3516).
// The message is streamed into the store's staging area, never held in
// memory; every path ends with a tagged reply.
func cmdAppend(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	name, nameErr := c.mailboxArg(d)
	d.sp()
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
	// RFC 6855 §4: "UTF8 (" literal8 ")" once UTF8=ACCEPT is enabled.
	utf8Data := false
	if c := d.peek(); c == 'U' || c == 'u' {
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
		return d.err
	}
	flags, flagErr := parseFlags(flagNames)
	st := c.srv.opts.Store
	var mb store.Mailbox
	var mbErr error
	if nameErr == nil {
		mb, mbErr = st.Mailbox(c.ctx, c.acct.ID, name)
		if mbErr == nil && mb.NoSelect {
			mbErr = store.ErrNoSelect
		}
	}
	// Refuse before the client sends the octets when we can: a
	// synchronising literal is then never sent.
	preErr := nameErr
	if preErr == nil && mbErr != nil {
		preErr = mbErr
		if errors.Is(mbErr, store.ErrNotFound) {
			preErr = no("TRYCREATE", "no such mailbox")
		}
	}
	if preErr == nil {
		preErr = flagErr
	}
	if preErr == nil && utf8Data && !c.utf8Accept {
		preErr = bad("", "UTF8 APPEND needs ENABLE UTF8=ACCEPT")
	}
	if preErr != nil && (d.peek() == '{' || d.peek() == '~') {
		if lit, sync := d.peekLiteralSync(); sync && lit {
			d.literalHeaderNoCont()
			return preErr
		}
	}
	n, _ := d.literalHeader(c.srv.opts.AppendLimit)
	if d.err != nil {
		if d.err == errLiteralTooBig {
			return no("TOOBIG", "message larger than APPENDLIMIT")
		}
		return d.err
	}
	body := io.LimitReader(d.br, n)
	if preErr != nil {
		if _, err := io.Copy(io.Discard, body); err != nil {
			return err
		}
		c.setReadDeadline(c.srv.opts.CommandTimeout)
		if utf8Data {
			d.expect(')')
		}
		if err := d.end(); err != nil {
			return err
		}
		return preErr
	}
	staged, err := st.Stage(c.ctx, body, c.srv.opts.AppendLimit)
	// Whatever Stage did, the literal must be consumed to stay in step.
	if _, cerr := io.Copy(io.Discard, body); cerr != nil {
		if staged != nil {
			staged.Discard()
		}
		return cerr
	}
	c.setReadDeadline(c.srv.opts.CommandTimeout)
	if utf8Data {
		d.expect(')')
	}
	if err != nil {
		if e := d.end(); e != nil {
			return e
		}
		return err
	}
	defer staged.Discard()
	if err := d.end(); err != nil {
		return err
	}
	res, err := st.Append(c.ctx, c.acct.ID, mb.ID, []store.AppendMessage{{Body: staged, Flags: flags, InternalDate: date}})
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
