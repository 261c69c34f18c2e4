package imapd

import (
	"strings"
)

// cmdNoop: RFC 9051 §6.1.2. Pending mailbox changes go out with the reply.
func cmdNoop(c *conn, cmd *command) error {
	if err := cmd.d.end(); err != nil {
		return err
	}
	c.forceSync()
	return c.ok(cmd, "", "NOOP completed")
}

// cmdCheck: RFC 3501 §6.4.1 (rev1 only; a NOOP here).
func cmdCheck(c *conn, cmd *command) error {
	if err := cmd.d.end(); err != nil {
		return err
	}
	c.forceSync()
	return c.ok(cmd, "", "CHECK completed")
}

// cmdLogout: RFC 9051 §6.1.3.
func cmdLogout(c *conn, cmd *command) error {
	if err := cmd.d.end(); err != nil {
		return err
	}
	c.sendString("* BYE logging out")
	c.sel = nil
	c.state = stateLogout
	if c.acct.ID != 0 {
		c.log.Info("logout")
	}
	return c.ok(cmd, "", "LOGOUT completed")
}

// cmdID: RFC 2971. Allowed in every state (offlineimap sends it before
// login). The client's values are logged at debug level, ours are fixed.
func cmdID(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	var fields []string
	if d.peek() == '(' {
		d.list(true, func() {
			k, _ := d.nstring()
			d.sp()
			v, _ := d.nstring()
			if len(fields) < 60 {
				fields = append(fields, k, v)
			}
		})
	} else {
		d.nstring()
	}
	if err := d.end(); err != nil {
		return err
	}
	if len(fields) > 0 {
		c.log.Debug("client id", "id", strings.Join(fields, " "))
	}
	b := append(c.out[:0], `* ID ("name" "Skrytka" "vendor" "Skrytka")`...)
	c.out = b
	c.send(b)
	return c.ok(cmd, "", "ID completed")
}

// cmdEnable: RFC 5161, RFC 9051 §6.3.1.
func cmdEnable(c *conn, cmd *command) error {
	d := cmd.d
	var names []string
	for d.err == nil {
		d.sp()
		names = append(names, d.atom())
		if d.peek() != ' ' {
			break
		}
	}
	if err := d.end(); err != nil {
		return err
	}
	var on []string
	for _, n := range names {
		switch strings.ToUpper(n) {
		case "IMAP4REV2":
			if !c.rev2 {
				c.rev2, c.utf8 = true, true
				on = append(on, "IMAP4rev2")
			}
		case "CONDSTORE":
			if !c.condstoreEnabled {
				c.condstoreEnabled, c.condstore = true, true
				on = append(on, "CONDSTORE")
			}
		case "QRESYNC":
			// RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
			if !c.qresync {
				c.qresync, c.condstore = true, true
				on = append(on, "QRESYNC")
			}
		case "UTF8=ACCEPT":
			if !c.utf8Accept {
				c.utf8Accept, c.utf8 = true, true
				on = append(on, "UTF8=ACCEPT")
			}
		}
	}
	b := append(c.out[:0], "* ENABLED"...)
	for _, n := range on {
		b = append(b, ' ')
		b = append(b, n...)
	}
	c.out = b
	c.send(b)
	return c.ok(cmd, "", "ENABLE completed")
}

// cmdNamespace: RFC 2342, RFC 9051 §6.3.10. One personal namespace, no
// shared or other users' namespaces.
func cmdNamespace(c *conn, cmd *command) error {
	if err := cmd.d.end(); err != nil {
		return err
	}
	b := append(c.out[:0], `* NAMESPACE (("" "/")) NIL NIL`...)
	c.out = b
	c.send(b)
	return c.ok(cmd, "", "NAMESPACE completed")
}

// forceSync makes the next reply re-read the selected mailbox even without
// a change hint: clients poll with NOOP and expect current news.
func (c *conn) forceSync() {
	if c.sel != nil {
		c.sel.dirty = true
	}
}
