package embedded

import (
	"context"
	"database/sql"
	"errors"
	"os"

	"github.com/skrytka/skrytka/internal/store"
)

// OpenMessage implements store.Store.
//
// The lookup is three index probes and at most one inline body
// (InlineMaxBytes), so it runs without ctx's cancellation: with a
// cancellable context the driver and database/sql each start a goroutine
// to watch it and install a progress handler for every query, which cost
// more than the query itself when POP3 opens message after message. A
// context that has already ended is still refused.
func (s *Store) OpenMessage(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uid store.UID) (store.MessageReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	st, err := s.rstmt(ctx, `SELECT b.size, b.file, b.data, x.noselect FROM messages m JOIN blobs b ON b.id = m.blob_id JOIN mailboxes x ON x.id = m.mailbox_id WHERE x.account_id = ? AND m.mailbox_id = ? AND m.uid = ?`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, acct, mbox, uid)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, translate(err)
		}
		return nil, store.ErrNotFound
	}
	var size int64
	var file sql.NullString
	var data sql.RawBytes // the driver's memory, valid until rows.Close
	var noselect bool
	if err := rows.Scan(&size, &file, &data, &noselect); err != nil {
		return nil, translate(err)
	}
	if file.Valid {
		f, err := s.openBlobFile(file.String)
		if errors.Is(err, os.ErrNotExist) {
			// Expunged and swept between the query and the open.
			return nil, store.ErrNotFound
		}
		if err != nil {
			return nil, translate(err)
		}
		return &messageReader{f: f, size: size}, nil
	}
	return newInlineReader(data, size), nil
}
