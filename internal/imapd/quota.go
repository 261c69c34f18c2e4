package imapd

import (
	"strconv"

	"github.com/skrytka/skrytka/internal/imapwire"
	"github.com/skrytka/skrytka/internal/store"
)

// QUOTA (RFC 9208) with the STORAGE resource. An account has at most one
// limit, on the bytes of all its messages (store.Account.QuotaBytes, set
// by the administrator), so there is one quota root per account, named
// "" as in the RFC's examples, and every mailbox of the account is under
// it. An account without a limit has no quota root: GETQUOTAROOT lists
// none and GETQUOTA "" answers NO [NONEXISTENT]. Users cannot change
// their limit: QUOTASET is not offered and SETQUOTA is refused.

// quotaRoot is the name of an account's only quota root.
const quotaRoot = ""

// kib rounds n octets up to units of 1024 octets (RFC 9208: STORAGE
// is counted in those), so that a little usage never shows as none.
func kib(n int64) int64 { return (n + 1023) / 1024 }

// appendQuota appends `* QUOTA "" (STORAGE used limit)` for a.
func appendQuota(b []byte, a store.Account) []byte {
	b = append(b, "* QUOTA "...)
	b = imapwire.AppendAString(b, quotaRoot, false)
	b = append(b, " (STORAGE "...)
	b = strconv.AppendInt(b, kib(max(a.UsedBytes, 0)), 10)
	b = append(b, ' ')
	// The limit rounds down: never promise more room than there is.
	b = strconv.AppendInt(b, a.QuotaBytes/1024, 10)
	return append(b, ')')
}

// cmdGetQuotaRoot: RFC 9208 GETQUOTAROOT.
func cmdGetQuotaRoot(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	name, err := c.mailboxArg(d)
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
	a, err := c.srv.opts.Store.AccountByID(c.ctx, c.acct.ID)
	if err != nil {
		return err
	}
	b := append(c.out[:0], "* QUOTAROOT "...)
	b = imapwire.AppendAString(b, c.wireName(mb.Name), c.utf8)
	if a.QuotaBytes > 0 {
		b = append(b, ' ')
		b = imapwire.AppendAString(b, quotaRoot, false)
		b = append(b, "\r\n"...)
		b = appendQuota(b, a)
	}
	c.out = b
	c.send(b)
	return c.ok(cmd, "", "GETQUOTAROOT completed")
}

// cmdGetQuota: RFC 9208 GETQUOTA.
func cmdGetQuota(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	root := d.astring()
	if err := d.end(); err != nil {
		return err
	}
	a, err := c.srv.opts.Store.AccountByID(c.ctx, c.acct.ID)
	if err != nil {
		return err
	}
	if root != quotaRoot || a.QuotaBytes <= 0 {
		return no("NONEXISTENT", "no such quota root")
	}
	c.out = appendQuota(c.out[:0], a)
	c.send(c.out)
	return c.ok(cmd, "", "GETQUOTA completed")
}

// cmdSetQuota: RFC 9208 SETQUOTA. The arguments are checked, then refused:
// limits are the administrator's ("skrytka user quota").
func cmdSetQuota(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	d.astring()
	d.sp()
	d.list(true, func() {
		d.atom()
		d.sp()
		d.number64()
	})
	if err := d.end(); err != nil {
		return err
	}
	return no("NOPERM", "quota limits are set by the administrator")
}

// deletedStorage is the STATUS DELETED-STORAGE item (RFC 9208): the
// octets that expunging the mailbox's \Deleted messages would free.
func (c *conn) deletedStorage(mb store.Mailbox) (int64, error) {
	if mb.Deleted == 0 {
		return 0, nil
	}
	var n int64
	all := store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}
	err := c.srv.opts.Store.Messages(c.ctx, c.acct.ID, mb.ID, all, store.FetchOptions{}, func(m *store.Message) error {
		if m.Flags.Sys&store.FlagDeleted != 0 {
			n += m.Size
		}
		return nil
	})
	return n, err
}
