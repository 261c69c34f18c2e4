package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

const accountCols = `id, address, password_hash, quota_bytes, used_bytes, download_policy, created_at`

func scanAccount(sc interface{ Scan(...any) error }) (store.Account, error) {
	var a store.Account
	var created int64
	err := sc.Scan(&a.ID, &a.Address, &a.PasswordHash, &a.QuotaBytes, &a.UsedBytes, &a.DownloadPolicy, &created)
	a.CreatedAt = time.Unix(created, 0).UTC()
	return a, err
}

// CreateAccount implements store.Store.
func (s *Store) CreateAccount(ctx context.Context, address, passwordHash string) (store.Account, error) {
	address = strings.ToLower(strings.TrimSpace(address))
	if address == "" {
		return store.Account{}, fmt.Errorf("%w: empty address", store.ErrInvalidName)
	}
	now := time.Now().Unix()
	var id int64
	err := s.write(ctx, func(w *wtx) error {
		res, err := w.exec(`INSERT INTO accounts(address, password_hash, created_at) VALUES(?, ?, ?)`, address, passwordHash, now)
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		if _, err := w.createMailbox(store.AccountID(id), store.InboxName, store.SpecialNone); err != nil {
			return err
		}
		for _, d := range store.DefaultMailboxes {
			if _, err := w.createMailbox(store.AccountID(id), d.Name, d.Use); err != nil {
				return err
			}
			if _, err := w.exec(`INSERT OR IGNORE INTO subscriptions(account_id, name) VALUES(?, ?)`, id, d.Name); err != nil {
				return err
			}
		}
		if _, err := w.exec(`INSERT OR IGNORE INTO subscriptions(account_id, name) VALUES(?, ?)`, id, store.InboxName); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return store.Account{}, err
	}
	return s.AccountByID(ctx, store.AccountID(id))
}

// Account implements store.Store.
func (s *Store) Account(ctx context.Context, address string) (store.Account, error) {
	return s.oneAccount(ctx, `SELECT `+accountCols+` FROM accounts WHERE address = ?`, strings.ToLower(strings.TrimSpace(address)))
}

// AccountByID implements store.Store.
func (s *Store) AccountByID(ctx context.Context, id store.AccountID) (store.Account, error) {
	return s.oneAccount(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id)
}

func (s *Store) oneAccount(ctx context.Context, q string, arg any) (store.Account, error) {
	st, err := s.rstmt(ctx, q)
	if err != nil {
		return store.Account{}, err
	}
	a, err := scanAccount(st.QueryRowContext(ctx, arg))
	if err != nil {
		return store.Account{}, translate(err)
	}
	return a, nil
}

// Accounts implements store.Store.
func (s *Store) Accounts(ctx context.Context) ([]store.Account, error) {
	st, err := s.rstmt(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY address`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx)
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

func (s *Store) updateAccount(ctx context.Context, id store.AccountID, q string, arg any) error {
	return s.write(ctx, func(w *wtx) error {
		res, err := w.exec(q, arg, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

// SetPasswordHash implements store.Store.
func (s *Store) SetPasswordHash(ctx context.Context, id store.AccountID, hash string) error {
	return s.updateAccount(ctx, id, `UPDATE accounts SET password_hash = ? WHERE id = ?`, hash)
}

// SetQuota implements store.Store.
func (s *Store) SetQuota(ctx context.Context, id store.AccountID, quotaBytes int64) error {
	if quotaBytes < 0 {
		quotaBytes = 0
	}
	return s.updateAccount(ctx, id, `UPDATE accounts SET quota_bytes = ? WHERE id = ?`, quotaBytes)
}

// SetDownloadPolicy implements store.Store.
func (s *Store) SetDownloadPolicy(ctx context.Context, id store.AccountID, policy string) error {
	return s.updateAccount(ctx, id, `UPDATE accounts SET download_policy = ? WHERE id = ?`, policy)
}

// DeleteAccount implements store.Store.
func (s *Store) DeleteAccount(ctx context.Context, id store.AccountID) error {
	err := s.write(ctx, func(w *wtx) error {
		res, err := w.exec(`DELETE FROM accounts WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		for _, q := range []string{
			`DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?)`,
			`DELETE FROM tombstones WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?)`,
			`DELETE FROM keywords WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?)`,
			`DELETE FROM mailboxes WHERE account_id = ?`,
			`DELETE FROM subscriptions WHERE account_id = ?`,
		} {
			if _, err := w.exec(q, id); err != nil {
				return err
			}
		}
		w.publish(store.Change{Kind: store.ChangeMailboxes, Account: id})
		w.afterCommit(w.s.sweepDead)
		return nil
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}
