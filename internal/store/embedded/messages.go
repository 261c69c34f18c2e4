package embedded

import (
	"context"
	"errors"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

const insertMessage = `INSERT INTO messages(id, mailbox_id, uid, modseq, flags, keywords, internal_date, internal_tz, size, blob_id) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// allocIDs reserves n message IDs and returns the first. IDs are never
// reused: the counter only grows.
func (w *wtx) allocIDs(n int) (int64, error) {
	var first int64
	err := w.queryRow(`UPDATE meta SET value = value + ? WHERE key = 'next_message_id' RETURNING value - ?`, []any{n, n}, &first)
	return first, err
}

// checkQuota fails with ErrOverQuota if adding bytes to acct exceeds its
// quota.
func (w *wtx) checkQuota(acct store.AccountID, bytes int64) error {
	var quota, used int64
	if err := w.queryRow(`SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?`, []any{acct}, &quota, &used); err != nil {
		if isNoRows(err) {
			return store.ErrNotFound
		}
		return err
	}
	if quota > 0 && used+bytes > quota {
		return store.ErrOverQuota
	}
	return nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, acct store.AccountID, mbox store.MailboxID, msgs []store.AppendMessage) (store.AppendResult, error) {
	var res store.AppendResult
	if len(msgs) == 0 {
		m, err := s.MailboxByID(ctx, acct, mbox)
		res.UIDValidity = m.UIDValidity
		return res, err
	}
	bodies := make([]*staged, len(msgs))
	var total int64
	for i, m := range msgs {
		st, err := s.stagedOf(m.Body)
		if err != nil {
			return res, err
		}
		if err := checkFlags(m.Flags); err != nil {
			return res, err
		}
		bodies[i] = st
		total += st.size
	}
	err := s.write(ctx, func(w *wtx) error {
		m, err := w.selectable(acct, mbox)
		if err != nil {
			return err
		}
		if err := w.checkQuota(acct, total); err != nil {
			return err
		}
		res = store.AppendResult{UIDValidity: m.UIDValidity, ModSeq: m.HighestModSeq + 1, UIDs: make([]store.UID, 0, len(msgs))}
		uid := m.UIDNext
		id, err := w.allocIDs(len(msgs))
		if err != nil {
			return err
		}
		for i, msg := range msgs {
			if uid == 0 { // wrapped: the mailbox is out of UIDs
				return store.ErrTooManyItems
			}
			blob, err := w.insertBlob(bodies[i])
			if err != nil {
				return err
			}
			if err := w.insertMessage(id+int64(i), m.ID, uid, res.ModSeq, msg.Flags, msg.InternalDate, bodies[i].size, blob); err != nil {
				return err
			}
			res.UIDs = append(res.UIDs, uid)
			uid++
		}
		if _, err := w.exec(`UPDATE mailboxes SET uidnext = ?, highest_modseq = ? WHERE id = ?`, uid, res.ModSeq, m.ID); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeAppend, Account: acct, Mailbox: m.ID, UIDs: res.UIDs, ModSeq: res.ModSeq})
		return nil
	})
	if err != nil {
		return store.AppendResult{}, err
	}
	s.kickIndexer()
	return res, nil
}

func (w *wtx) insertMessage(id int64, mbox store.MailboxID, uid store.UID, modseq store.ModSeq, f store.Flags, date time.Time, size, blob int64) error {
	kws, err := w.keywordNames(mbox, f.Keywords)
	if err != nil {
		return err
	}
	if date.IsZero() {
		date = time.Now()
	}
	_, off := date.Zone()
	_, err = w.exec(insertMessage, id, mbox, uid, modseq, f.Sys&sysMask, joinKeywords(kws), date.Unix(), off, size, blob)
	return err
}

// errNoneDelivered rolls a Deliver back when every target failed.
var errNoneDelivered = errors.New("embedded: no target accepted the message")

// Deliver implements store.Store.
func (s *Store) Deliver(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]error, error) {
	st, err := s.stagedOf(body)
	if err != nil {
		return nil, err
	}
	results := make([]error, len(targets))
	for i, t := range targets {
		results[i] = checkFlags(t.Flags)
	}
	now := time.Now()
	err = s.write(ctx, func(w *wtx) error {
		var blob int64
		ok := 0
		for i, t := range targets {
			if results[i] != nil && errors.Is(results[i], store.ErrBadFlag) {
				continue
			}
			results[i] = nil
			if blob == 0 {
				var err error
				if blob, err = w.insertBlob(st); err != nil {
					return err
				}
			}
			if _, err := w.exec(`SAVEPOINT target`); err != nil {
				return err
			}
			err := w.deliverOne(t, st.size, blob, now)
			if err != nil {
				if _, rerr := w.exec(`ROLLBACK TO target`); rerr != nil {
					return rerr
				}
				results[i] = translate(err)
			} else {
				ok++
			}
			if _, err := w.exec(`RELEASE target`); err != nil {
				return err
			}
		}
		if ok == 0 {
			return errNoneDelivered
		}
		return nil
	})
	if errors.Is(err, errNoneDelivered) {
		return results, nil
	}
	if err != nil {
		return nil, err
	}
	s.kickIndexer()
	return results, nil
}

func (w *wtx) deliverOne(t store.DeliveryTarget, size, blob int64, now time.Time) error {
	name := t.Mailbox
	if name == "" {
		name = store.InboxName
	}
	name, err := store.CanonicalMailboxName(name)
	if err != nil {
		return store.ErrNotFound
	}
	m, err := w.mailboxByName(t.Account, name)
	if isNoRows(err) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	if m.NoSelect {
		return store.ErrNoSelect
	}
	if m.UIDNext == 0 {
		return store.ErrTooManyItems
	}
	if err := w.checkQuota(t.Account, size); err != nil {
		return err
	}
	modseq := m.HighestModSeq + 1
	id, err := w.allocIDs(1)
	if err != nil {
		return err
	}
	if err := w.insertMessage(id, m.ID, m.UIDNext, modseq, t.Flags, now, size, blob); err != nil {
		return err
	}
	if _, err := w.exec(`UPDATE mailboxes SET uidnext = ?, highest_modseq = ? WHERE id = ?`, m.UIDNext+1, modseq, m.ID); err != nil {
		return err
	}
	w.publish(store.Change{Kind: store.ChangeAppend, Account: t.Account, Mailbox: m.ID, UIDs: []store.UID{m.UIDNext}, ModSeq: modseq})
	return nil
}

// ClaimRecent implements store.Store.
func (s *Store) ClaimRecent(ctx context.Context, acct store.AccountID, mbox store.MailboxID) (store.UID, error) {
	var first store.UID
	err := s.write(ctx, func(w *wtx) error {
		m, err := w.selectable(acct, mbox)
		if err != nil {
			return err
		}
		first = m.RecentUID
		if m.UIDNext > m.RecentUID {
			_, err = w.exec(`UPDATE mailboxes SET recent_uid = ? WHERE id = ?`, m.UIDNext, m.ID)
		}
		return err
	})
	return first, err
}

// msgRow is a message's mutable state as the writer sees it.
type msgRow struct {
	id       int64
	uid      store.UID
	modseq   store.ModSeq
	flags    store.SysFlags
	keywords string
	date     int64
	tz       int
	size     int64
	blob     int64
}

// rowsIn reads the messages of mbox in set (nil: all), in UID order.
func (w *wtx) rowsIn(mbox store.MailboxID, set store.UIDSet) ([]msgRow, error) {
	if set == nil {
		set = store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}
	}
	var out []msgRow
	for _, r := range normSet(set) {
		rows, err := w.query(`SELECT id, uid, modseq, flags, keywords, internal_date, internal_tz, size, blob_id FROM messages WHERE mailbox_id = ? AND uid >= ? AND uid <= ? ORDER BY uid`, mbox, r.Start, r.Stop)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var m msgRow
			if err := rows.Scan(&m.id, &m.uid, &m.modseq, &m.flags, &m.keywords, &m.date, &m.tz, &m.size, &m.blob); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (w *wtx) allUIDs(mbox store.MailboxID) ([]store.UID, error) {
	rows, err := w.rowsIn(mbox, nil)
	if err != nil {
		return nil, err
	}
	out := make([]store.UID, len(rows))
	for i, r := range rows {
		out[i] = r.uid
	}
	return out, nil
}

// SetFlags implements store.Store.
func (s *Store) SetFlags(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uids store.UIDSet, op store.FlagOp, flags store.Flags, unchangedSince store.ModSeq) (store.FlagResult, error) {
	if err := checkFlags(flags); err != nil {
		return store.FlagResult{}, err
	}
	if uids == nil {
		uids = store.UIDSet{} // nil is no UIDs, not all of them
	}
	var res store.FlagResult
	err := s.write(ctx, func(w *wtx) error {
		res = store.FlagResult{}
		m, err := w.selectable(acct, mbox)
		if err != nil {
			return err
		}
		rows, err := w.rowsIn(m.ID, uids)
		if err != nil {
			return err
		}
		var given []string
		if len(flags.Keywords) > 0 && op != store.FlagsRemove {
			if given, err = w.keywordNames(m.ID, flags.Keywords); err != nil {
				return err
			}
		} else {
			given = flags.Keywords
		}
		f := store.Flags{Sys: flags.Sys, Keywords: given}
		modseq := m.HighestModSeq + 1
		var changed []store.UID
		for _, r := range rows {
			if unchangedSince > 0 && r.modseq > unchangedSince {
				res.Modified = append(res.Modified, r.uid)
				continue
			}
			old := splitKeywords(r.keywords)
			sys, kws := store.ApplyFlags(r.flags, append([]string(nil), old...), op, f)
			if sys == r.flags && store.SameKeywords(kws, old) {
				continue
			}
			kw := joinKeywords(kws)
			if _, err := w.exec(`UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?`, sys, kw, modseq, m.ID, r.uid); err != nil {
				return err
			}
			res.Updated = append(res.Updated, store.FlagUpdate{UID: r.uid, Flags: store.Flags{Sys: sys, Keywords: splitKeywords(kw)}, ModSeq: modseq})
			changed = append(changed, r.uid)
		}
		if len(changed) > 0 {
			if _, err := w.exec(`UPDATE mailboxes SET highest_modseq = ? WHERE id = ?`, modseq, m.ID); err != nil {
				return err
			}
			w.publish(store.Change{Kind: store.ChangeFlags, Account: acct, Mailbox: m.ID, UIDs: changed, ModSeq: modseq})
		}
		return nil
	})
	if err != nil {
		return store.FlagResult{}, err
	}
	return res, nil
}

// Expunge implements store.Store.
func (s *Store) Expunge(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uids store.UIDSet) ([]store.UID, error) {
	var out []store.UID
	err := s.write(ctx, func(w *wtx) error {
		m, err := w.selectable(acct, mbox)
		if err != nil {
			return err
		}
		if uids == nil {
			uids = store.UIDSet{}
		}
		out, err = w.expungeWhere(m, uids)
		return err
	})
	return out, err
}

// expungeWhere removes the messages of m in set (nil: all), writing
// tombstones with a new ModSeq.
func (w *wtx) expungeWhere(m store.Mailbox, set store.UIDSet) ([]store.UID, error) {
	if set == nil {
		set = store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}
	}
	// Re-read: an earlier step of this transaction may have moved it on.
	m, err := w.mailbox(m.Account, m.ID)
	if err != nil {
		return nil, err
	}
	modseq := m.HighestModSeq + 1
	var removed []store.UID
	for _, r := range normSet(set) {
		rows, err := w.query(`SELECT uid FROM messages WHERE mailbox_id = ? AND uid >= ? AND uid <= ? ORDER BY uid`, m.ID, r.Start, r.Stop)
		if err != nil {
			return nil, err
		}
		n := len(removed)
		for rows.Next() {
			var u store.UID
			if err := rows.Scan(&u); err != nil {
				rows.Close()
				return nil, err
			}
			removed = append(removed, u)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(removed) == n {
			continue
		}
		if _, err := w.exec(`INSERT OR REPLACE INTO tombstones(mailbox_id, uid, modseq) SELECT mailbox_id, uid, ? FROM messages WHERE mailbox_id = ? AND uid >= ? AND uid <= ?`, modseq, m.ID, r.Start, r.Stop); err != nil {
			return nil, err
		}
		if _, err := w.exec(`DELETE FROM messages WHERE mailbox_id = ? AND uid >= ? AND uid <= ?`, m.ID, r.Start, r.Stop); err != nil {
			return nil, err
		}
	}
	if len(removed) == 0 {
		return nil, nil
	}
	if _, err := w.exec(`UPDATE mailboxes SET highest_modseq = ? WHERE id = ?`, modseq, m.ID); err != nil {
		return nil, err
	}
	w.publish(store.Change{Kind: store.ChangeExpunge, Account: m.Account, Mailbox: m.ID, UIDs: removed, ModSeq: modseq})
	var dead int
	if err := w.queryRow(`SELECT count(*) FROM (SELECT 1 FROM dead_files LIMIT 1)`, nil, &dead); err != nil {
		return nil, err
	}
	if dead > 0 {
		w.afterCommit(w.s.sweepDead)
	}
	return removed, nil
}

// Copy implements store.Store.
func (s *Store) Copy(ctx context.Context, acct store.AccountID, src, dst store.MailboxID, uids store.UIDSet) (store.CopyResult, error) {
	return s.copyOrMove(ctx, acct, src, dst, uids, false)
}

// Move implements store.Store.
func (s *Store) Move(ctx context.Context, acct store.AccountID, src, dst store.MailboxID, uids store.UIDSet) (store.CopyResult, error) {
	return s.copyOrMove(ctx, acct, src, dst, uids, true)
}

func (s *Store) copyOrMove(ctx context.Context, acct store.AccountID, src, dst store.MailboxID, uids store.UIDSet, move bool) (store.CopyResult, error) {
	var res store.CopyResult
	err := s.write(ctx, func(w *wtx) error {
		sm, err := w.selectable(acct, src)
		if err != nil {
			return err
		}
		dm, err := w.selectable(acct, dst)
		if err != nil {
			return err
		}
		if uids == nil {
			uids = store.UIDSet{}
		}
		res, err = w.copyMessages(sm, dm, uids, move)
		return err
	})
	if err != nil {
		return store.CopyResult{}, err
	}
	s.kickIndexer()
	return res, nil
}

// copyMessages copies (or moves) the messages of src in set to dst: new
// UIDs and entries in dst, the same bodies.
func (w *wtx) copyMessages(src, dst store.Mailbox, set store.UIDSet, move bool) (store.CopyResult, error) {
	res := store.CopyResult{UIDValidity: dst.UIDValidity}
	rows, err := w.rowsIn(src.ID, set)
	if err != nil {
		return res, err
	}
	if len(rows) == 0 {
		return res, nil
	}
	if !move {
		var total int64
		for _, r := range rows {
			total += r.size
		}
		if err := w.checkQuota(src.Account, total); err != nil {
			return res, err
		}
	}
	// Re-read dst: src may be dst.
	dst, err = w.mailbox(dst.Account, dst.ID)
	if err != nil {
		return res, err
	}
	modseq := dst.HighestModSeq + 1
	uid := dst.UIDNext
	id, err := w.allocIDs(len(rows))
	if err != nil {
		return res, err
	}
	res.SrcUIDs = make([]store.UID, 0, len(rows))
	res.DstUIDs = make([]store.UID, 0, len(rows))
	for _, r := range rows {
		if uid == 0 {
			return res, store.ErrTooManyItems
		}
		kws, err := w.keywordNames(dst.ID, splitKeywords(r.keywords))
		if err != nil {
			return res, err
		}
		if _, err := w.exec(insertMessage, id, dst.ID, uid, modseq, r.flags, joinKeywords(kws), r.date, r.tz, r.size, r.blob); err != nil {
			return res, err
		}
		res.SrcUIDs = append(res.SrcUIDs, r.uid)
		res.DstUIDs = append(res.DstUIDs, uid)
		uid++
		id++
	}
	if _, err := w.exec(`UPDATE mailboxes SET uidnext = ?, highest_modseq = ? WHERE id = ?`, uid, modseq, dst.ID); err != nil {
		return res, err
	}
	w.publish(store.Change{Kind: store.ChangeAppend, Account: dst.Account, Mailbox: dst.ID, UIDs: res.DstUIDs, ModSeq: modseq})
	if move {
		if _, err := w.expungeWhere(src, store.UIDSetOf(res.SrcUIDs...)); err != nil {
			return res, err
		}
	}
	return res, nil
}
