package pop3d

import (
	"strconv"
)

// parseMsgNumber parses a message-number argument: a decimal number
// without sign (RFC 1939 §3).
func parseMsgNumber(s string) (int, bool) {
	if len(s) == 0 || len(s) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// message resolves a message-number argument of a TRANSACTION command. It
// answers -ERR itself and returns nil when the number is malformed, out of
// range or deleted (RFC 1939 §5: a deleted message may not be referenced).
func (c *conn) message(arg string) (int, *message) {
	n, ok := parseMsgNumber(arg)
	if !ok {
		c.badCommand("invalid message number")
		return 0, nil
	}
	if n < 1 || n > len(c.sess.msgs) {
		c.reply("-ERR no such message")
		return 0, nil
	}
	m := &c.sess.msgs[n-1]
	if m.deleted {
		c.reply("-ERR message %d already deleted", n)
		return 0, nil
	}
	return n, m
}

// cmdSTAT is RFC 1939 §5 STAT: count and octets of undeleted messages.
func (c *conn) cmdSTAT(cmd command) error {
	if len(cmd.Args) != 0 {
		c.badCommand("STAT takes no arguments")
		return nil
	}
	n, size := c.sess.counts()
	c.reply("+OK %d %d", n, size)
	return nil
}

// cmdLIST is RFC 1939 §5 LIST [msg]: sizes in octets, which equal what
// RETR sends before dot-stuffing.
func (c *conn) cmdLIST(cmd command) error {
	return c.listing(cmd, "LIST", func(b []byte, m *message) []byte {
		return strconv.AppendInt(b, m.size, 10)
	})
}

// cmdUIDL is RFC 1939 §7 UIDL [msg].
func (c *conn) cmdUIDL(cmd command) error {
	return c.listing(cmd, "UIDL", func(b []byte, m *message) []byte {
		return append(b, uidl(m.id)...)
	})
}

// listing runs LIST and UIDL, which differ only in the value per message.
func (c *conn) listing(cmd command, name string, value func([]byte, *message) []byte) error {
	switch len(cmd.Args) {
	case 0:
		if name == "LIST" {
			n, size := c.sess.counts()
			c.reply("+OK %d messages (%d octets)", n, size)
		} else {
			c.reply("+OK unique-id listing follows")
		}
		var b []byte
		for i := range c.sess.msgs {
			m := &c.sess.msgs[i]
			if m.deleted {
				continue
			}
			b = strconv.AppendInt(b[:0], int64(i+1), 10)
			b = append(b, ' ')
			b = value(b, m)
			b = append(b, '\r', '\n')
			c.bw.Write(b)
		}
		c.reply(".")
	case 1:
		n, m := c.message(cmd.Args[0])
		if m == nil {
			return nil
		}
		b := []byte("+OK ")
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, ' ')
		b = value(b, m)
		b = append(b, '\r', '\n')
		c.bw.Write(b)
	default:
		c.badCommand(name + " takes at most one argument")
	}
	return nil
}
