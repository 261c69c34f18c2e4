package postgres

import (
	"context"

	"github.com/skrytka/skrytka/internal/store"
)

// Keywords implements store.Store.
func (s *Store) Keywords(ctx context.Context, acct store.AccountID, mbox store.MailboxID) ([]string, error) {
	if _, err := s.MailboxByID(ctx, acct, mbox); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT keyword FROM keywords WHERE mailbox_id = $1 ORDER BY folded`, mbox)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, translate(err)
		}
		out = append(out, k)
	}
	return out, translate(rows.Err())
}
