package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/skrytka/skrytka/internal/mailparse"
	"github.com/skrytka/skrytka/internal/store"
)

// messagesBatch is how many rows Messages reads per query: rows are read
// into memory and the connection is returned before fn runs, so a slow
// client never holds a connection.
const messagesBatch = 500

// SelectState implements store.Store. One statement gives one snapshot.
func (s *Store) SelectState(ctx context.Context, acct store.AccountID, mbox store.MailboxID) (store.Mailbox, []store.UID, error) {
	if s.isClosed() {
		return store.Mailbox{}, nil, store.ErrClosed
	}
	var uids []int64
	dest, finish := mailboxDest()
	row := s.pool.QueryRow(ctx, `SELECT `+mailboxCols+`, coalesce((SELECT array_agg(uid ORDER BY uid) FROM messages WHERE mailbox_id = x.id), '{}')
		FROM mailboxes x WHERE id = $1 AND account_id = $2`, mbox, acct)
	err := row.Scan(append(dest, &uids)...)
	if err != nil {
		return store.Mailbox{}, nil, translate(err)
	}
	m := finish()
	if m.NoSelect {
		return store.Mailbox{}, nil, store.ErrNoSelect
	}
	out := make([]store.UID, len(uids))
	for i, u := range uids {
		out[i] = store.UID(u)
	}
	return m, out, nil
}

// ClaimRecent implements store.Store. It runs as one pipelined
// transaction without waiting for its commit to be flushed: losing the
// last claim in a database crash only shows some messages as \Recent
// again, and every SELECT would otherwise wait for a disk flush.
func (s *Store) ClaimRecent(ctx context.Context, acct store.AccountID, mbox store.MailboxID) (store.UID, error) {
	var old int64
	var noselect bool
	err := s.lazyCommit(ctx, func(b *pgx.Batch) func(pgx.BatchResults) error {
		b.Queue(`UPDATE mailboxes m SET recent_uid = m.uidnext
			FROM (SELECT id, recent_uid, noselect FROM mailboxes WHERE id = $1 AND account_id = $2 FOR NO KEY UPDATE) AS o
			WHERE m.id = o.id RETURNING o.recent_uid, o.noselect`, mbox, acct)
		return func(br pgx.BatchResults) error { return br.QueryRow().Scan(&old, &noselect) }
	})
	if err != nil {
		return 0, err
	}
	if noselect {
		return 0, store.ErrNoSelect
	}
	return store.UID(old), nil
}

// checkMailbox verifies that mbox belongs to acct.
func (s *Store) checkMailbox(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, acct store.AccountID, mbox store.MailboxID) error {
	var one int
	return translate(q.QueryRow(ctx, `SELECT 1 FROM mailboxes WHERE id = $1 AND account_id = $2`, mbox, acct).Scan(&one))
}

// Messages implements store.Store.
func (s *Store) Messages(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uids store.UIDSet, opts store.FetchOptions, fn func(*store.Message) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	if err := s.checkMailbox(ctx, s.pool, acct, mbox); err != nil {
		return err
	}
	starts, stops := normSet(uids)
	if len(starts) == 0 {
		return nil
	}
	cols := `m.id, m.uid, m.modseq, m.sys_flags, m.keywords, m.internal_date, m.date_offset, m.size`
	join := ``
	if opts.Parsed {
		cols += `, b.parsed`
		join = ` JOIN bodies b ON b.id = m.body_id`
	}
	q := `SELECT ` + cols + ` FROM ` + uidRanges("$2", "$3") + ` JOIN messages m ON m.uid BETWEEN r.lo AND r.hi` + join + `
		WHERE m.mailbox_id = $1 AND m.uid > $4 ORDER BY m.uid LIMIT ` + fmt.Sprint(messagesBatch)
	var after int64
	for {
		batch, err := s.readMessages(ctx, q, opts.Parsed, mbox, mbox, starts, stops, after)
		if err != nil {
			return err
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		if len(batch) < messagesBatch {
			return nil
		}
		after = int64(batch[len(batch)-1].UID)
	}
}

func (s *Store) readMessages(ctx context.Context, q string, parsed bool, mbox store.MailboxID, args ...any) ([]store.Message, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []store.Message
	for rows.Next() {
		var m store.Message
		var id, uid, modseq int64
		var sys, off int32
		var kws []string
		var raw []byte
		dest := []any{&id, &uid, &modseq, &sys, &kws, &m.InternalDate, &off, &m.Size}
		if parsed {
			dest = append(dest, &raw)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, translate(err)
		}
		m.ID, m.Mailbox, m.UID, m.ModSeq = store.MessageID(id), mbox, store.UID(uid), store.ModSeq(modseq)
		m.Flags = store.Flags{Sys: store.SysFlags(sys), Keywords: nilIfEmpty(kws)}
		m.InternalDate = inZone(m.InternalDate, off)
		if parsed {
			info, err := mailparse.Unmarshal(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: stored metadata of message %d: %v", store.ErrUnavailable, id, err)
			}
			m.Parsed = info
		}
		out = append(out, m)
	}
	return out, translate(rows.Err())
}

// OpenMessage implements store.Store. Reads use ctx.
func (s *Store) OpenMessage(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uid store.UID) (store.MessageReader, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	var body, size int64
	if tb, ok := s.bodies.(*tableBodies); ok {
		// One round trip for the common case: the first chunk comes along
		// (for most messages it is the whole body).
		var first []byte
		err := s.pool.QueryRow(ctx, `SELECT m.body_id, b.size, c.data FROM messages m
			JOIN mailboxes x ON x.id = m.mailbox_id JOIN bodies b ON b.id = m.body_id
			LEFT JOIN body_chunks c ON c.body_id = m.body_id AND c.seq = 0
			WHERE m.mailbox_id = $1 AND x.account_id = $2 AND m.uid = $3`, mbox, acct, int64(uid)).Scan(&body, &size, &first)
		if err != nil {
			return nil, translate(err)
		}
		return tb.open(ctx, body, size, first), nil
	}
	err := s.pool.QueryRow(ctx, `SELECT m.body_id, b.size FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id JOIN bodies b ON b.id = m.body_id
		WHERE m.mailbox_id = $1 AND x.account_id = $2 AND m.uid = $3`, mbox, acct, int64(uid)).Scan(&body, &size)
	if err != nil {
		return nil, translate(err)
	}
	return s.bodies.Open(ctx, body, size)
}

// Changes implements store.Store. It reads in one snapshot.
func (s *Store) Changes(ctx context.Context, acct store.AccountID, mbox store.MailboxID, since store.ModSeq) (store.Delta, error) {
	var d store.Delta
	err := s.snapshot(ctx, func(b *pgx.Batch) func(pgx.BatchResults) error {
		b.Queue(`SELECT `+mailboxCols+` FROM mailboxes WHERE id = $1 AND account_id = $2`, mbox, acct)
		b.Queue(`SELECT id, uid, modseq, sys_flags, keywords, internal_date, date_offset, size
			FROM messages WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid`, mbox, int64(since))
		b.Queue(`SELECT uid FROM tombstones WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid`, mbox, int64(since))
		return func(br pgx.BatchResults) error {
			m, err := scanMailbox(br.QueryRow())
			if err != nil {
				return err
			}
			d.Mailbox = m
			rows, err := br.Query()
			if err != nil {
				return err
			}
			for rows.Next() {
				var msg store.Message
				var id, uid, modseq int64
				var sys, off int32
				var kws []string
				if err := rows.Scan(&id, &uid, &modseq, &sys, &kws, &msg.InternalDate, &off, &msg.Size); err != nil {
					rows.Close()
					return err
				}
				msg.ID, msg.Mailbox, msg.UID, msg.ModSeq = store.MessageID(id), mbox, store.UID(uid), store.ModSeq(modseq)
				msg.Flags = store.Flags{Sys: store.SysFlags(sys), Keywords: nilIfEmpty(kws)}
				msg.InternalDate = inZone(msg.InternalDate, off)
				d.Messages = append(d.Messages, msg)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			rows, err = br.Query()
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var uid int64
				if err := rows.Scan(&uid); err != nil {
					return err
				}
				d.Vanished = append(d.Vanished, store.UID(uid))
			}
			return rows.Err()
		}
	})
	if err != nil {
		return store.Delta{}, err
	}
	return d, nil
}
