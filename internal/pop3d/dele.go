package pop3d

import (
	"context"
)

// cmdDELE is RFC 1939 §5 DELE msg: mark for deletion at UPDATE.
func (c *conn) cmdDELE(cmd command) error {
	if len(cmd.Args) != 1 {
		c.badCommand("DELE takes one argument")
		return nil
	}
	n, m := c.message(cmd.Args[0])
	if m == nil {
		return nil
	}
	m.deleted = true
	c.reply("+OK message %d deleted", n)
	return nil
}

// cmdRSET is RFC 1939 §5 RSET: unmark every deleted message.
func (c *conn) cmdRSET(cmd command) error {
	if len(cmd.Args) != 0 {
		c.badCommand("RSET takes no arguments")
		return nil
	}
	for i := range c.sess.msgs {
		c.sess.msgs[i].deleted = false
	}
	n, size := c.sess.counts()
	c.reply("+OK maildrop has %d messages (%d octets)", n, size)
	return nil
}

// cmdNOOP is RFC 1939 §5 NOOP.
func (c *conn) cmdNOOP(cmd command) error {
	if len(cmd.Args) != 0 {
		c.badCommand("NOOP takes no arguments")
		return nil
	}
	c.reply("+OK")
	return nil
}

// cmdQUIT is RFC 1939 §4 and §6 QUIT. In TRANSACTION it enters UPDATE: the
// deletions are applied as one store operation, then the lock is released
// and the connection closes.
func (c *conn) cmdQUIT(cmd command) error {
	c.state, c.user = stateDone, ""
	if c.sess == nil {
		c.reply("+OK %s POP3 server signing off", c.srv.opts.Hostname)
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, storeTimeout)
	defer cancel()
	n, err := c.sess.update(ctx)
	if err != nil {
		// RFC 1939 §6: "-ERR some deleted messages not removed". The
		// store operation is atomic, so in fact none was.
		we := mapError(err)
		c.log.Log(c.ctx, we.Level, "update failed", "err", err)
		code := we.Code
		if code == "" {
			code = "SYS/TEMP"
		}
		c.reply("-ERR [%s] deleted messages not removed, try again later", code)
		return nil
	}
	c.log.Info("logout", "deleted", n)
	if n == 0 {
		c.reply("+OK %s POP3 server signing off", c.srv.opts.Hostname)
	} else {
		c.reply("+OK %s POP3 server signing off (%d messages deleted)", c.srv.opts.Hostname, n)
	}
	return nil
}
