package embedded

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/skrytka/skrytka/internal/mailparse"
	"github.com/skrytka/skrytka/internal/store"
)

// messagesPage is how many rows Messages reads per query. Rows are read in
// pages so that no read transaction stays open while the callback runs (a
// slow client must not hold a snapshot, nor a connection).
const messagesPage = 1024

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// readTx runs fn in a read transaction: one consistent snapshot.
//
// A transaction holds a reader connection while fn may need another one
// (preparing a statement the first time, see rstmt). If every connection
// were held by such a transaction, all would wait for each other for
// ever (seen: 32 logins at once on a fresh process). So at most
// opts.Readers transactions run at once, and the pool has one connection
// more: some connection is always held by work that waits for nothing.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	select {
	case s.txSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.txSlots }()
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	defer tx.Rollback()
	return translate(fn(tx))
}

// SelectState implements store.Store. The UIDs come from the message
// cache (cache.go), brought up to date in one read transaction.
func (s *Store) SelectState(ctx context.Context, acct store.AccountID, mbox store.MailboxID) (store.Mailbox, []store.UID, error) {
	m, snap, err := s.snapshot(ctx, acct, mbox)
	if err != nil {
		return store.Mailbox{}, nil, err
	}
	uids := make([]store.UID, len(snap.recs))
	for i := range snap.recs {
		uids[i] = snap.recs[i].uid
	}
	return m, uids, nil
}

// SelectMailbox is what IMAP SELECT needs, in one read transaction and
// without work per message: the mailbox named name (not NoSelect), its
// UIDs as ascending ranges of consecutive UIDs, and its keywords as
// Keywords returns them. The ranges are shared with the message cache
// and with every other caller: they must not be modified (appending to
// them copies, as their capacity equals their length).
//
// unseen is the UID of the first message without \Seen (0 if none), for
// RFC 3501's UNSEEN response code.
func (s *Store) SelectMailbox(ctx context.Context, acct store.AccountID, name string) (m store.Mailbox, runs store.UIDSet, keywords []string, unseen store.UID, err error) {
	n, err := store.CanonicalMailboxName(name)
	if err != nil {
		return store.Mailbox{}, nil, nil, 0, store.ErrNotFound
	}
	var snap *boxSnap
	err = s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		m, snap, err = s.snapshotTx(ctx, tx, mailboxByNameQuery, acct, n)
		if err != nil {
			return err
		}
		st, err := s.rstmt(ctx, keywordsQuery)
		if err != nil {
			return err
		}
		keywords, err = scanKeywords(tx.StmtContext(ctx, st).QueryContext(ctx, m.ID))
		return err
	})
	if err != nil {
		return store.Mailbox{}, nil, nil, 0, err
	}
	s.publish(m, snap)
	if m.Unseen > 0 {
		for i := range snap.recs {
			if snap.recs[i].sys&store.FlagSeen == 0 {
				unseen = snap.recs[i].uid
				break
			}
		}
	}
	return m, snap.runs, keywords, unseen, nil
}

// keywordsQuery lists a mailbox's keywords in the order of Keywords.
const keywordsQuery = `SELECT name FROM keywords WHERE mailbox_id = ? ORDER BY lname`

// dedupUIDs removes repeats from a sorted slice, in place.
func dedupUIDs(u []store.UID) []store.UID {
	out := u[:0]
	for i, x := range u {
		if i == 0 || x != u[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// ownMailbox checks that mbox belongs to acct.
func (s *Store) ownMailbox(ctx context.Context, acct store.AccountID, mbox store.MailboxID) (store.Mailbox, error) {
	m, err := s.MailboxByID(ctx, acct, mbox)
	if err != nil {
		return m, err
	}
	if m.NoSelect {
		return m, store.ErrNoSelect
	}
	return m, nil
}

// zones caches one *time.Location per UTC offset: internal dates come in
// a handful of offsets, and FixedZone allocates.
var zones sync.Map // int -> *time.Location

func zoneTime(unix int64, off int) time.Time {
	loc, ok := zones.Load(off)
	if !ok {
		loc, _ = zones.LoadOrStore(off, time.FixedZone("", off))
	}
	return time.Unix(unix, 0).In(loc.(*time.Location))
}

// Messages implements store.Store.
func (s *Store) Messages(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uids store.UIDSet, opts store.FetchOptions, fn func(*store.Message) error) error {
	_, snap, err := s.snapshot(ctx, acct, mbox)
	if err != nil {
		return err
	}
	if !opts.Parsed {
		var m store.Message
		for _, r := range normSet(uids) {
			for i := snap.find(r.Start); i < len(snap.recs) && snap.recs[i].uid <= r.Stop; i++ {
				snap.message(i, mbox, &m)
				if err := fn(&m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// Parsed: the metadata comes from the snapshot and only the parsed
	// info is read, a page at a time, so that no read transaction stays
	// open while fn runs (a slow client must hold neither a snapshot nor a
	// connection). A message expunged since the snapshot has no row and
	// is skipped.
	st, err := s.rstmt(ctx, `SELECT m.uid, i.info FROM messages m JOIN infos i ON i.blob_id = m.blob_id WHERE m.mailbox_id = ? AND m.uid >= ? AND m.uid <= ? ORDER BY m.uid`)
	if err != nil {
		return err
	}
	recs := snap.recs
	idx := make([]int, 0, messagesPage)
	infos := make([]*mailparse.Info, 0, messagesPage)
	var m store.Message
	for _, r := range normSet(uids) {
		i := snap.find(r.Start)
		for i < len(recs) && recs[i].uid <= r.Stop {
			j := i
			for j < len(recs) && j-i < messagesPage && recs[j].uid <= r.Stop {
				j++
			}
			idx, infos = idx[:0], infos[:0]
			rows, err := st.QueryContext(ctx, mbox, recs[i].uid, recs[j-1].uid)
			if err != nil {
				return translate(err)
			}
			k := i
			for rows.Next() {
				var u store.UID
				var raw sql.RawBytes // decoded before the next row: no copy
				if err := rows.Scan(&u, &raw); err != nil {
					rows.Close()
					return translate(err)
				}
				for k < j && recs[k].uid < u {
					k++
				}
				if k < j && recs[k].uid == u {
					info, err := mailparse.Unmarshal(raw)
					if err != nil {
						rows.Close()
						return err
					}
					idx = append(idx, k)
					infos = append(infos, info)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return translate(err)
			}
			for n, k := range idx {
				snap.message(k, mbox, &m)
				m.Parsed = infos[n]
				infos[n] = nil
				if err := fn(&m); err != nil {
					return err
				}
			}
			i = j
		}
	}
	return nil
}

// changedQuery and vanishedQuery read what changed in a mailbox after a
// modseq (Changes, and the cache's catching up).
const (
	changedQuery  = `SELECT id, uid, modseq, flags, keywords, internal_date, internal_tz, size FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`
	vanishedQuery = `SELECT uid FROM tombstones WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`
)

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, acct store.AccountID, mbox store.MailboxID, since store.ModSeq) (store.Delta, error) {
	var d store.Delta
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		stmt := func(q string) (*sql.Stmt, error) {
			st, err := s.rstmt(ctx, q)
			if err != nil {
				return nil, err
			}
			return tx.StmtContext(ctx, st), nil
		}
		st, err := stmt(mailboxByIDQuery)
		if err != nil {
			return err
		}
		d.Mailbox, err = scanMailbox(st.QueryRowContext(ctx, acct, mbox))
		if err != nil {
			return err
		}
		if st, err = stmt(changedQuery); err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, mbox, since)
		if err != nil {
			return err
		}
		for rows.Next() {
			var m store.Message
			var kws string
			var date int64
			var tz int
			if err := rows.Scan(&m.ID, &m.UID, &m.ModSeq, &m.Flags.Sys, &kws, &date, &tz, &m.Size); err != nil {
				rows.Close()
				return err
			}
			m.Mailbox = mbox
			m.Flags.Keywords = splitKeywords(kws)
			m.InternalDate = zoneTime(date, tz)
			d.Messages = append(d.Messages, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if st, err = stmt(vanishedQuery); err != nil {
			return err
		}
		rows, err = st.QueryContext(ctx, mbox, since)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u store.UID
			if err := rows.Scan(&u); err != nil {
				return err
			}
			d.Vanished = append(d.Vanished, u)
		}
		return rows.Err()
	})
	if err != nil {
		return store.Delta{}, err
	}
	return d, nil
}
