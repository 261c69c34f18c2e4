package imapd

import (
	"strings"

	"github.com/skrytka/skrytka/internal/store"
)

// mailboxArg reads a mailbox astring and decodes it.
func (c *conn) mailboxArg(d *decoder) (string, error) {
	raw := d.astring()
	if d.err != nil {
		return "", nil
	}
	return c.decodeMailbox(raw)
}

// cmdCreate: RFC 9051 §6.3.4, with USE (RFC 6154 §3).
func cmdCreate(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	name, nameErr := c.mailboxArg(d)
	use := store.SpecialNone
	var useErr error
	if d.maybe(' ') {
		d.list(false, func() {
			opt := strings.ToUpper(d.atom())
			if opt != "USE" {
				d.fail("unknown CREATE parameter")
				return
			}
			d.sp()
			d.list(true, func() {
				f := d.flagName()
				u, ok := specialUses[strings.ToLower(f)]
				if !ok {
					useErr = no("USEATTR", "unsupported special-use attribute")
				} else if use != store.SpecialNone {
					useErr = no("USEATTR", "only one special-use attribute per mailbox")
				}
				use = u
			})
		})
	}
	if err := d.end(); err != nil {
		return err
	}
	if nameErr != nil {
		return nameErr
	}
	if useErr != nil {
		return useErr
	}
	// RFC 9051 §6.3.4: a trailing separator declares intent to create
	// children; the name itself is created without it.
	name = strings.TrimSuffix(name, store.Separator)
	if name == "" {
		return no("CANNOT", "invalid mailbox name")
	}
	if name == store.InboxName {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	if _, err := c.srv.opts.Store.CreateMailbox(c.ctx, c.acct.ID, name, use); err != nil {
		return err
	}
	return c.ok(cmd, "", "CREATE completed")
}

var specialUses = map[string]store.SpecialUse{
	`\all`:     store.SpecialAll,
	`\archive`: store.SpecialArchive,
	`\drafts`:  store.SpecialDrafts,
	`\flagged`: store.SpecialFlagged,
	`\junk`:    store.SpecialJunk,
	`\sent`:    store.SpecialSent,
	`\trash`:   store.SpecialTrash,
}

// cmdDelete: RFC 9051 §6.3.5.
func cmdDelete(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	name, err := c.mailboxArg(d)
	if err := d.end(); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	if name == store.InboxName {
		return no("CANNOT", "INBOX cannot be deleted")
	}
	if err := c.srv.opts.Store.DeleteMailbox(c.ctx, c.acct.ID, name); err != nil {
		return err
	}
	return c.ok(cmd, "", "DELETE completed")
}

// cmdRename: RFC 9051 §6.3.6.
func cmdRename(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	from, err1 := c.mailboxArg(d)
	d.sp()
	to, err2 := c.mailboxArg(d)
	if err := d.end(); err != nil {
		return err
	}
	if err1 != nil {
		return err1
	}
	if err2 != nil {
		return err2
	}
	to = strings.TrimSuffix(to, store.Separator)
	if to == store.InboxName {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	if err := c.srv.opts.Store.RenameMailbox(c.ctx, c.acct.ID, from, to); err != nil {
		return err
	}
	return c.ok(cmd, "", "RENAME completed")
}

// cmdSubscribe: RFC 9051 §6.3.7.
func cmdSubscribe(c *conn, cmd *command) error { return subscribe(c, cmd, true) }

// cmdUnsubscribe: RFC 9051 §6.3.8.
func cmdUnsubscribe(c *conn, cmd *command) error { return subscribe(c, cmd, false) }

func subscribe(c *conn, cmd *command, on bool) error {
	d := cmd.d
	d.sp()
	name, err := c.mailboxArg(d)
	if err := d.end(); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	if on {
		// RFC 9051 §6.3.7 lets a server refuse names that do not exist.
		if _, err := c.srv.opts.Store.Mailbox(c.ctx, c.acct.ID, name); err != nil {
			return err
		}
	}
	if err := c.srv.opts.Store.SetSubscribed(c.ctx, c.acct.ID, name, on); err != nil {
		return err
	}
	return c.ok(cmd, "", cmd.name+" completed")
}
