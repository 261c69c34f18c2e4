package postgres

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/skrytka/skrytka/internal/store"
)

const accountCols = `id, address, password_hash, quota_bytes, used_bytes, download_policy, created_at`

func scanAccount(row pgx.Row) (store.Account, error) {
	var a store.Account
	var id int64
	err := row.Scan(&id, &a.Address, &a.PasswordHash, &a.QuotaBytes, &a.UsedBytes, &a.DownloadPolicy, &a.CreatedAt)
	a.ID = store.AccountID(id)
	a.CreatedAt = a.CreatedAt.UTC()
	return a, err
}

func canonAddress(a string) string { return strings.ToLower(strings.TrimSpace(a)) }

// storable reports whether PostgreSQL can hold s in a text column (valid
// UTF-8 without NUL); a client-supplied name that is not is simply unknown.
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// CreateAccount implements store.Store.
func (s *Store) CreateAccount(ctx context.Context, address, passwordHash string) (store.Account, error) {
	if !storable(address) || !storable(passwordHash) {
		return store.Account{}, fmt.Errorf("%w: address or hash not valid UTF-8 text", store.ErrInvalidName)
	}
	address = canonAddress(address)
	if address == "" {
		return store.Account{}, fmt.Errorf("%w: empty address", store.ErrInvalidName)
	}
	var a store.Account
	err := s.write(ctx, func(w *wtx) error {
		tx := w.tx
		var err error
		a, err = scanAccount(tx.QueryRow(ctx, `INSERT INTO accounts (address, password_hash) VALUES ($1, $2) RETURNING `+accountCols, address, passwordHash))
		if err != nil {
			return err
		}
		if _, err := w.createMailbox(a.ID, store.InboxName, store.SpecialNone); err != nil {
			return err
		}
		names := []string{store.InboxName}
		for _, d := range store.DefaultMailboxes {
			if _, err := w.createMailbox(a.ID, d.Name, d.Use); err != nil {
				return err
			}
			names = append(names, d.Name)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO subscriptions (account_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, a.ID, names); err != nil {
			return err
		}
		return nil
	})
	return a, err
}

// Account implements store.Store.
func (s *Store) Account(ctx context.Context, address string) (store.Account, error) {
	if s.isClosed() {
		return store.Account{}, store.ErrClosed
	}
	if !storable(address) {
		return store.Account{}, store.ErrNotFound
	}
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE address = $1`, canonAddress(address)))
	return a, translate(err)
}

// AccountByID implements store.Store.
func (s *Store) AccountByID(ctx context.Context, id store.AccountID) (store.Account, error) {
	if s.isClosed() {
		return store.Account{}, store.ErrClosed
	}
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = $1`, id))
	return a, translate(err)
}

// Accounts implements store.Store.
func (s *Store) Accounts(ctx context.Context) ([]store.Account, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY address COLLATE "C"`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []store.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, a)
	}
	return out, translate(rows.Err())
}

func (s *Store) updateAccount(ctx context.Context, q string, args ...any) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// SetPasswordHash implements store.Store.
func (s *Store) SetPasswordHash(ctx context.Context, id store.AccountID, hash string) error {
	return s.updateAccount(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1`, id, hash)
}

// SetQuota implements store.Store. A negative quota is 0 (unlimited).
func (s *Store) SetQuota(ctx context.Context, id store.AccountID, quotaBytes int64) error {
	if quotaBytes < 0 {
		quotaBytes = 0
	}
	return s.updateAccount(ctx, `UPDATE accounts SET quota_bytes = $2 WHERE id = $1`, id, quotaBytes)
}

// SetDownloadPolicy implements store.Store.
func (s *Store) SetDownloadPolicy(ctx context.Context, id store.AccountID, policy string) error {
	return s.updateAccount(ctx, `UPDATE accounts SET download_policy = $2 WHERE id = $1`, id, policy)
}

// DeleteAccount implements store.Store. Bodies shared with other accounts
// lose one reference per deleted entry and survive while referenced.
func (s *Store) DeleteAccount(ctx context.Context, id store.AccountID) error {
	return s.write(ctx, func(w *wtx) error {
		tx := w.tx
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, id).Scan(&one); err != nil {
			return err
		}
		// Lock the account's mailboxes in id order (the global lock order)
		// so that no writer is half-way through one of them.
		if _, err := tx.Exec(ctx, `SELECT id FROM mailboxes WHERE account_id = $1 ORDER BY id FOR UPDATE`, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM messages m USING mailboxes x
			WHERE x.id = m.mailbox_id AND x.account_id = $1 RETURNING m.body_id`, id)
		if err != nil {
			return err
		}
		var bodies []int64
		for rows.Next() {
			var b int64
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return err
			}
			bodies = append(bodies, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := w.unrefBodies(bodies); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM accounts WHERE id = $1`, id); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMailboxes, Account: id})
		return nil
	})
}
