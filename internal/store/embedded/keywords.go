package embedded

import (
	"context"
	"database/sql"

	"github.com/skrytka/skrytka/internal/store"
)

// Keywords implements store.Store.
func (s *Store) Keywords(ctx context.Context, acct store.AccountID, mbox store.MailboxID) ([]string, error) {
	if _, err := s.MailboxByID(ctx, acct, mbox); err != nil {
		return nil, err
	}
	st, err := s.rstmt(ctx, keywordsQuery)
	if err != nil {
		return nil, err
	}
	return scanKeywords(st.QueryContext(ctx, mbox))
}

// scanKeywords reads the rows of keywordsQuery (never nil on success).
func scanKeywords(rows *sql.Rows, err error) ([]string, error) {
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
