package embedded

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/skrytka/skrytka/internal/store"
)

const mailboxCols = `id, account_id, name, special_use, noselect, uidvalidity, uidnext, highest_modseq, messages, unseen, deleted, size, recent_uid`

func scanMailbox(sc interface{ Scan(...any) error }) (store.Mailbox, error) {
	var m store.Mailbox
	err := sc.Scan(mboxDest(&m)...)
	return m, err
}

// mboxDest returns scan destinations for mailboxCols into m.
func mboxDest(m *store.Mailbox) []any {
	return []any{&m.ID, &m.Account, &m.Name, (*string)(&m.SpecialUse), &m.NoSelect, &m.UIDValidity, &m.UIDNext,
		&m.HighestModSeq, &m.Messages, &m.Unseen, &m.Deleted, &m.Size, &m.RecentUID}
}

// childRange returns the bounds of the names strictly under name: every
// child starts with name+"/" and sorts before name+"0" ('0' follows '/').
func childRange(name string) (lo, hi string) { return name + "/", name + "0" }

// Mailboxes implements store.Store.
func (s *Store) Mailboxes(ctx context.Context, acct store.AccountID) ([]store.Mailbox, error) {
	st, err := s.rstmt(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? ORDER BY name`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, acct)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []store.Mailbox
	for rows.Next() {
		m, err := scanMailbox(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, m)
	}
	return out, translate(rows.Err())
}

// Mailbox implements store.Store.
func (s *Store) Mailbox(ctx context.Context, acct store.AccountID, name string) (store.Mailbox, error) {
	n, err := store.CanonicalMailboxName(name)
	if err != nil {
		return store.Mailbox{}, store.ErrNotFound
	}
	st, err := s.rstmt(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND name = ?`)
	if err != nil {
		return store.Mailbox{}, err
	}
	m, err := scanMailbox(st.QueryRowContext(ctx, acct, n))
	return m, translate(err)
}

// MailboxByID implements store.Store.
func (s *Store) MailboxByID(ctx context.Context, acct store.AccountID, id store.MailboxID) (store.Mailbox, error) {
	st, err := s.rstmt(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND id = ?`)
	if err != nil {
		return store.Mailbox{}, err
	}
	m, err := scanMailbox(st.QueryRowContext(ctx, acct, id))
	return m, translate(err)
}

// mailboxByName reads a mailbox inside the write transaction.
func (w *wtx) mailboxByName(acct store.AccountID, name string) (store.Mailbox, error) {
	var m store.Mailbox
	err := w.queryRow(`SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND name = ?`, []any{acct, name}, mboxDest(&m)...)
	return m, err
}

// mailbox reads a mailbox of acct inside the write transaction; a mailbox
// of another account is ErrNotFound.
func (w *wtx) mailbox(acct store.AccountID, id store.MailboxID) (store.Mailbox, error) {
	var m store.Mailbox
	err := w.queryRow(`SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND id = ?`, []any{acct, id}, mboxDest(&m)...)
	if errors.Is(err, sql.ErrNoRows) {
		return m, store.ErrNotFound
	}
	return m, err
}

// selectable is mailbox for operations that need a real mailbox.
func (w *wtx) selectable(acct store.AccountID, id store.MailboxID) (store.Mailbox, error) {
	m, err := w.mailbox(acct, id)
	if err == nil && m.NoSelect {
		err = store.ErrNoSelect
	}
	return m, err
}

func (w *wtx) nextUIDValidity() (uint32, error) {
	var v int64
	if err := w.queryRow(`UPDATE meta SET value = value + 1 WHERE key = 'next_uidvalidity' RETURNING value - 1`, nil, &v); err != nil {
		return 0, err
	}
	v &= 0xffffffff
	if v == 0 {
		v = 1
	}
	return uint32(v), nil
}

// createMailbox creates name (already normalised or not) and its missing
// parents; over a \Noselect placeholder it makes the placeholder real.
func (w *wtx) createMailbox(acct store.AccountID, name string, use store.SpecialUse) (store.Mailbox, error) {
	name, err := store.CanonicalMailboxName(name)
	if err != nil {
		return store.Mailbox{}, err
	}
	if !store.ValidSpecialUse(use) {
		return store.Mailbox{}, store.ErrSpecialUse
	}
	if use != store.SpecialNone {
		var n int
		if err := w.queryRow(`SELECT count(*) FROM mailboxes WHERE account_id = ? AND special_use = ?`, []any{acct, string(use)}, &n); err != nil {
			return store.Mailbox{}, err
		}
		if n > 0 {
			return store.Mailbox{}, store.ErrSpecialUse
		}
	}
	parts := strings.Split(name, store.Separator)
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], store.Separator)
		if _, err := w.mailboxByName(acct, parent); errors.Is(err, sql.ErrNoRows) {
			if err := w.insertMailbox(acct, parent, store.SpecialNone); err != nil {
				return store.Mailbox{}, err
			}
		} else if err != nil {
			return store.Mailbox{}, err
		}
	}
	m, err := w.mailboxByName(acct, name)
	switch {
	case err == nil && m.NoSelect:
		if _, err := w.exec(`UPDATE mailboxes SET noselect = 0, special_use = ? WHERE id = ?`, string(use), m.ID); err != nil {
			return store.Mailbox{}, err
		}
	case err == nil:
		return store.Mailbox{}, store.ErrExists
	case errors.Is(err, sql.ErrNoRows):
		if err := w.insertMailbox(acct, name, use); err != nil {
			return store.Mailbox{}, err
		}
	default:
		return store.Mailbox{}, err
	}
	w.publish(store.Change{Kind: store.ChangeMailboxes, Account: acct})
	return w.mailboxByName(acct, name)
}

func (w *wtx) insertMailbox(acct store.AccountID, name string, use store.SpecialUse) error {
	uv, err := w.nextUIDValidity()
	if err != nil {
		return err
	}
	_, err = w.exec(`INSERT INTO mailboxes(account_id, name, special_use, uidvalidity) VALUES(?, ?, ?, ?)`, acct, name, string(use), uv)
	return err
}

// CreateMailbox implements store.Store. A trailing separator is ignored
// (RFC 3501 §6.3.3).
func (s *Store) CreateMailbox(ctx context.Context, acct store.AccountID, name string, use store.SpecialUse) (store.Mailbox, error) {
	if len(name) > 1 {
		name = strings.TrimSuffix(name, store.Separator)
	}
	var m store.Mailbox
	err := s.write(ctx, func(w *wtx) error {
		if err := w.accountExists(acct); err != nil {
			return err
		}
		var err error
		m, err = w.createMailbox(acct, name, use)
		return err
	})
	return m, err
}

func (w *wtx) accountExists(acct store.AccountID) error {
	var n int
	err := w.queryRow(`SELECT 1 FROM accounts WHERE id = ?`, []any{acct}, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

func (w *wtx) hasChildren(acct store.AccountID, name string) (bool, error) {
	lo, hi := childRange(name)
	var n int
	err := w.queryRow(`SELECT count(*) FROM (SELECT 1 FROM mailboxes WHERE account_id = ? AND name >= ? AND name < ? LIMIT 1)`, []any{acct, lo, hi}, &n)
	return n > 0, err
}

// DeleteMailbox implements store.Store.
func (s *Store) DeleteMailbox(ctx context.Context, acct store.AccountID, name string) error {
	n, err := store.CanonicalMailboxName(name)
	if err != nil {
		return store.ErrNotFound
	}
	if n == store.InboxName {
		return store.ErrInboxSpecial
	}
	return s.write(ctx, func(w *wtx) error {
		m, err := w.mailboxByName(acct, n)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		children, err := w.hasChildren(acct, n)
		if err != nil {
			return err
		}
		if children && m.NoSelect {
			return store.ErrHasChildren
		}
		if _, err := w.expungeAll(m); err != nil {
			return err
		}
		if children {
			if _, err := w.exec(`UPDATE mailboxes SET noselect = 1, special_use = '' WHERE id = ?`, m.ID); err != nil {
				return err
			}
		} else {
			for _, q := range []string{
				`DELETE FROM tombstones WHERE mailbox_id = ?`,
				`DELETE FROM keywords WHERE mailbox_id = ?`,
				`DELETE FROM mailboxes WHERE id = ?`,
			} {
				if _, err := w.exec(q, m.ID); err != nil {
					return err
				}
			}
		}
		w.publish(store.Change{Kind: store.ChangeMailboxes, Account: acct})
		return nil
	})
}

// expungeAll removes every message of m, leaving tombstones, and publishes
// the expunge. It returns the UIDs removed.
func (w *wtx) expungeAll(m store.Mailbox) ([]store.UID, error) {
	return w.expungeWhere(m, nil)
}

// RenameMailbox implements store.Store.
func (s *Store) RenameMailbox(ctx context.Context, acct store.AccountID, oldName, newName string) error {
	oldN, err := store.CanonicalMailboxName(oldName)
	if err != nil {
		return store.ErrNotFound
	}
	newN, err := store.CanonicalMailboxName(newName)
	if err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		m, err := w.mailboxByName(acct, oldN)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := w.mailboxByName(acct, newN); err == nil {
			return store.ErrExists
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if oldN == store.InboxName {
			return w.renameInbox(m, newN)
		}
		if newN == store.InboxName || strings.HasPrefix(newN, oldN+store.Separator) {
			return store.ErrCannotRename
		}
		// The mailbox and its children, renamed in Go: SQL substr counts
		// characters, not bytes.
		lo, hi := childRange(oldN)
		rows, err := w.query(`SELECT id, name FROM mailboxes WHERE account_id = ? AND (name = ? OR (name >= ? AND name < ?))`, acct, oldN, lo, hi)
		if err != nil {
			return err
		}
		type renamed struct {
			id   store.MailboxID
			name string
		}
		var list []renamed
		for rows.Next() {
			var r renamed
			if err := rows.Scan(&r.id, &r.name); err != nil {
				rows.Close()
				return err
			}
			list = append(list, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range list {
			n, err := store.CanonicalMailboxName(newN + list[i].name[len(oldN):])
			if err != nil {
				return err
			}
			list[i].name = n
		}
		for _, r := range list {
			if _, err := w.exec(`UPDATE mailboxes SET name = ? WHERE id = ?`, r.name, r.id); err != nil {
				return err
			}
		}
		if err := w.createParents(acct, newN); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMailboxes, Account: acct})
		return nil
	})
}

func (w *wtx) createParents(acct store.AccountID, name string) error {
	parts := strings.Split(name, store.Separator)
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], store.Separator)
		if _, err := w.mailboxByName(acct, parent); errors.Is(err, sql.ErrNoRows) {
			if err := w.insertMailbox(acct, parent, store.SpecialNone); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	return nil
}

// renameInbox moves every INBOX message into a new mailbox newName and
// leaves INBOX empty; INBOX's children stay where they are (RFC 3501
// §6.3.5).
func (w *wtx) renameInbox(inbox store.Mailbox, newName string) error {
	dst, err := w.createMailbox(inbox.Account, newName, store.SpecialNone)
	if err != nil {
		return err
	}
	uids, err := w.allUIDs(inbox.ID)
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	_, err = w.copyMessages(inbox, dst, store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}, true)
	return err
}

// SetSubscribed implements store.Store.
func (s *Store) SetSubscribed(ctx context.Context, acct store.AccountID, name string, subscribed bool) error {
	n, err := store.CanonicalMailboxName(name)
	if err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		if err := w.accountExists(acct); err != nil {
			return err
		}
		q := `DELETE FROM subscriptions WHERE account_id = ? AND name = ?`
		if subscribed {
			q = `INSERT OR IGNORE INTO subscriptions(account_id, name) VALUES(?, ?)`
		}
		if _, err := w.exec(q, acct, n); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMailboxes, Account: acct})
		return nil
	})
}

// Subscriptions implements store.Store.
func (s *Store) Subscriptions(ctx context.Context, acct store.AccountID) ([]string, error) {
	st, err := s.rstmt(ctx, `SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, acct)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, translate(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}
