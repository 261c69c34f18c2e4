package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/skrytka/skrytka/internal/store"
)

// childRange bounds the names strictly under name (byte order, COLLATE
// "C"): every child starts with name+"/" and sorts before name+"0".
func childRange(name string) (lo, hi string) { return name + "/", name + "0" }

// Mailboxes implements store.Store.
func (s *Store) Mailboxes(ctx context.Context, acct store.AccountID) ([]store.Mailbox, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = $1 ORDER BY name`, acct)
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
	if s.isClosed() {
		return store.Mailbox{}, store.ErrClosed
	}
	n, err := store.CanonicalMailboxName(name)
	if err != nil {
		return store.Mailbox{}, store.ErrNotFound
	}
	m, err := scanMailbox(s.pool.QueryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = $1 AND name = $2`, acct, n))
	return m, translate(err)
}

// MailboxByID implements store.Store.
func (s *Store) MailboxByID(ctx context.Context, acct store.AccountID, id store.MailboxID) (store.Mailbox, error) {
	if s.isClosed() {
		return store.Mailbox{}, store.ErrClosed
	}
	m, err := scanMailbox(s.pool.QueryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = $1 AND id = $2`, acct, id))
	return m, translate(err)
}

func (w *wtx) insertMailbox(acct store.AccountID, name string, use store.SpecialUse) error {
	_, err := w.tx.Exec(w.ctx, `INSERT INTO mailboxes (account_id, name, special_use, uidvalidity)
		VALUES ($1, $2, $3, nextval('uidvalidity_seq') % 4294967295 + 1)`, acct, name, string(use))
	return err
}

// createParents creates the missing ancestors of name as real mailboxes.
func (w *wtx) createParents(acct store.AccountID, name string) error {
	parts := strings.Split(name, store.Separator)
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], store.Separator)
		if _, err := w.mailboxByName(acct, parent); errors.Is(err, store.ErrNotFound) {
			if err := w.insertMailbox(acct, parent, store.SpecialNone); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	return nil
}

// createMailbox creates name and its missing parents; over a \Noselect
// placeholder it makes the placeholder real. The account row must be
// locked.
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
		if err := w.tx.QueryRow(w.ctx, `SELECT count(*) FROM mailboxes WHERE account_id = $1 AND special_use = $2`, acct, string(use)).Scan(&n); err != nil {
			return store.Mailbox{}, err
		}
		if n > 0 {
			return store.Mailbox{}, store.ErrSpecialUse
		}
	}
	if err := w.createParents(acct, name); err != nil {
		return store.Mailbox{}, err
	}
	m, err := w.mailboxByName(acct, name)
	switch {
	case err == nil && m.NoSelect:
		if _, err := w.tx.Exec(w.ctx, `UPDATE mailboxes SET noselect = false, special_use = $2 WHERE id = $1`, m.ID, string(use)); err != nil {
			return store.Mailbox{}, err
		}
	case err == nil:
		return store.Mailbox{}, store.ErrExists
	case errors.Is(err, store.ErrNotFound):
		if err := w.insertMailbox(acct, name, use); err != nil {
			return store.Mailbox{}, err
		}
	default:
		return store.Mailbox{}, err
	}
	w.publish(store.Change{Kind: store.ChangeMailboxes, Account: acct})
	return w.mailboxByName(acct, name)
}

// CreateMailbox implements store.Store. A trailing separator is ignored
// (RFC 3501 §6.3.3).
func (s *Store) CreateMailbox(ctx context.Context, acct store.AccountID, name string, use store.SpecialUse) (store.Mailbox, error) {
	if len(name) > 1 {
		name = strings.TrimSuffix(name, store.Separator)
	}
	var m store.Mailbox
	err := s.write(ctx, func(w *wtx) error {
		if _, _, err := w.lockAccount(acct); err != nil {
			return err
		}
		var err error
		m, err = w.createMailbox(acct, name, use)
		return err
	})
	return m, err
}

func (w *wtx) hasChildren(acct store.AccountID, name string) (bool, error) {
	lo, hi := childRange(name)
	var b bool
	err := w.tx.QueryRow(w.ctx, `SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = $1 AND name >= $2 AND name < $3)`, acct, lo, hi).Scan(&b)
	return b, err
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
		if _, _, err := w.lockAccount(acct); err != nil {
			return err
		}
		m, err := w.mailboxByName(acct, n)
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
		if _, err := w.expunge(m, nil, nil); err != nil {
			return err
		}
		if children {
			_, err = w.tx.Exec(w.ctx, `UPDATE mailboxes SET noselect = true, special_use = '' WHERE id = $1`, m.ID)
		} else {
			_, err = w.tx.Exec(w.ctx, `DELETE FROM mailboxes WHERE id = $1`, m.ID)
		}
		if err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMailboxes, Account: acct})
		return nil
	})
}

// RenameMailbox implements store.Store.
func (s *Store) RenameMailbox(ctx context.Context, acct store.AccountID, oldName, newName string) error {
	oldN, err := store.CanonicalMailboxName(oldName)
	if err != nil {
		return store.ErrNotFound
	}
	if len(newName) > 1 {
		newName = strings.TrimSuffix(newName, store.Separator)
	}
	newN, err := store.CanonicalMailboxName(newName)
	if err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		if _, _, err := w.lockAccount(acct); err != nil {
			return err
		}
		m, err := w.mailboxByName(acct, oldN)
		if err != nil {
			return err
		}
		if _, err := w.mailboxByName(acct, newN); err == nil {
			return store.ErrExists
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if oldN == store.InboxName {
			return w.renameInbox(m, newN)
		}
		if newN == store.InboxName || strings.HasPrefix(newN, oldN+store.Separator) {
			return store.ErrCannotRename
		}
		lo, hi := childRange(oldN)
		rows, err := w.tx.Query(w.ctx, `SELECT name FROM mailboxes WHERE account_id = $1 AND name >= $2 AND name < $3`, acct, lo, hi)
		if err != nil {
			return err
		}
		var children []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return err
			}
			children = append(children, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range children {
			if _, err := store.CanonicalMailboxName(newN + c[len(oldN):]); err != nil {
				return err
			}
		}
		if _, err := w.tx.Exec(w.ctx, `UPDATE mailboxes SET name = $2 || substr(name, char_length($3) + 1)
			WHERE account_id = $1 AND (name = $3 OR (name >= $4 AND name < $5))`, acct, newN, oldN, lo, hi); err != nil {
			return err
		}
		if err := w.createParents(acct, newN); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMailboxes, Account: acct})
		return nil
	})
}

// renameInbox moves every INBOX message into a new mailbox newName and
// leaves INBOX empty; INBOX's children stay where they are (RFC 3501
// §6.3.5).
func (w *wtx) renameInbox(inbox store.Mailbox, newName string) error {
	dst, err := w.createMailbox(inbox.Account, newName, store.SpecialNone)
	if err != nil {
		return err
	}
	if inbox.Messages == 0 {
		return nil
	}
	starts, stops := []int64{1}, []int64{int64(^uint32(0))}
	_, err = w.copyMessages(inbox, dst, starts, stops, true)
	return err
}

// SetSubscribed implements store.Store.
func (s *Store) SetSubscribed(ctx context.Context, acct store.AccountID, name string, subscribed bool) error {
	n, err := store.CanonicalMailboxName(name)
	if err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		if _, _, err := w.lockAccount(acct); err != nil {
			return err
		}
		q := `DELETE FROM subscriptions WHERE account_id = $1 AND name = $2`
		if subscribed {
			q = `INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`
		}
		if _, err := w.tx.Exec(w.ctx, q, acct, n); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMailboxes, Account: acct})
		return nil
	})
}

// Subscriptions implements store.Store.
func (s *Store) Subscriptions(ctx context.Context, acct store.AccountID) ([]string, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name`, acct)
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
	return out, translate(rows.Err())
}
