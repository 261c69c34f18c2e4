package imapd

import (
	"slices"
	"strconv"
	"strings"

	"github.com/skrytka/skrytka/internal/imapwire"
	"github.com/skrytka/skrytka/internal/store"
)

// statusItems reads "(" status-att *(SP status-att) ")".
func (d *decoder) statusItems() []string {
	var items []string
	d.list(false, func() {
		it := strings.ToUpper(d.atom())
		switch it {
		case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT", "HIGHESTMODSEQ", "APPENDLIMIT",
			"DELETED-STORAGE":
			items = append(items, it)
		default:
			d.fail("unknown STATUS item %s", it)
		}
	})
	return items
}

// cmdStatus: RFC 9051 §6.3.11, STATUS=SIZE (RFC 8438), APPENDLIMIT
// (RFC 7889), HIGHESTMODSEQ (RFC 7162), DELETED-STORAGE (RFC 9208).
func cmdStatus(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	name, err := c.mailboxArg(d)
	d.sp()
	items := d.statusItems()
	if err := d.end(); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	mb, err := c.srv.opts.Store.Mailbox(c.ctx, c.acct.ID, name)
	if err != nil {
		return err
	}
	if mb.NoSelect {
		return no("NONEXISTENT", "mailbox cannot hold messages")
	}
	if err := c.sendStatus(mb, items); err != nil {
		return err
	}
	return c.ok(cmd, "", "STATUS completed")
}

func (c *conn) sendStatus(mb store.Mailbox, items []string) error {
	var delStorage int64
	if slices.Contains(items, "DELETED-STORAGE") {
		var err error
		if delStorage, err = c.deletedStorage(mb); err != nil {
			return err
		}
	}
	b := append(c.out[:0], "* STATUS "...)
	b = imapwire.AppendAString(b, c.wireName(mb.Name), c.utf8)
	b = append(b, " ("...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, it...)
		b = append(b, ' ')
		var n int64
		switch it {
		case "MESSAGES":
			n = int64(mb.Messages)
		case "UIDNEXT":
			n = int64(mb.UIDNext)
		case "UIDVALIDITY":
			n = int64(mb.UIDValidity)
		case "UNSEEN":
			n = int64(mb.Unseen)
		case "DELETED":
			n = int64(mb.Deleted)
		case "SIZE":
			n = mb.Size
		case "HIGHESTMODSEQ":
			n = int64(mb.HighestModSeq)
		case "APPENDLIMIT":
			n = c.srv.opts.AppendLimit
		case "RECENT":
			n = int64(c.countRecent(mb))
		case "DELETED-STORAGE":
			n = delStorage
		}
		b = strconv.AppendInt(b, n, 10)
	}
	b = append(b, ')')
	c.out = b
	c.send(b)
	return nil
}

// countRecent counts messages not yet claimed as \Recent by any session.
func (c *conn) countRecent(mb store.Mailbox) int {
	if mb.RecentUID == 0 || mb.RecentUID >= mb.UIDNext {
		return 0
	}
	_, uids, err := c.srv.opts.Store.SelectState(c.ctx, c.acct.ID, mb.ID)
	if err != nil {
		return 0
	}
	n := 0
	for _, u := range uids {
		if u >= mb.RecentUID {
			n++
		}
	}
	return n
}
