package postgres

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/skrytka/skrytka/internal/store"
)

// entry is one message entry to insert.
type entry struct {
	body int64
	size int64
	sys  store.SysFlags
	kws  []string // the destination mailbox's spellings
	date time.Time
}

// addEntries allocates UIDs and one ModSeq in m (locked, selectable),
// inserts the entries and adjusts m's counters. It does not touch the
// account's usage nor body references.
func (w *wtx) addEntries(m store.Mailbox, es []entry) ([]store.UID, store.ModSeq, error) {
	n := int64(len(es))
	if uint64(m.UIDNext)+uint64(n) > uint64(^uint32(0)) {
		return nil, 0, store.ErrTooManyItems
	}
	var unseen, deleted, size int64
	bodies := make([]int64, n)
	sizes := make([]int64, n)
	flags := make([]int32, n)
	kws := make([]string, n)
	dates := make([]time.Time, n)
	offs := make([]int32, n)
	for i, e := range es {
		if e.sys&store.FlagSeen == 0 {
			unseen++
		}
		if e.sys&store.FlagDeleted != 0 {
			deleted++
		}
		size += e.size
		bodies[i], sizes[i], flags[i], kws[i], dates[i] = e.body, e.size, int32(e.sys), strings.Join(e.kws, " "), e.date
		_, off := e.date.Zone()
		offs[i] = int32(off)
	}
	var first, modseq int64
	err := w.tx.QueryRow(w.ctx, `WITH x AS (
			UPDATE mailboxes SET uidnext = uidnext + $2, highest_modseq = highest_modseq + 1,
				messages = messages + $2, unseen = unseen + $3, deleted = deleted + $4, size = size + $5
			WHERE id = $1 RETURNING uidnext - $2 AS first, highest_modseq),
		ins AS (
			INSERT INTO messages (mailbox_id, uid, modseq, sys_flags, keywords, internal_date, date_offset, size, body_id)
			SELECT $1, x.first + t.i - 1, x.highest_modseq, t.f, string_to_array(t.k, ' '), t.d, t.o, t.s, t.b
			FROM x, unnest($6::bigint[], $7::bigint[], $8::int[], $9::text[], $10::timestamptz[], $11::int[]) WITH ORDINALITY AS t(b, s, f, k, d, o, i))
		SELECT first, highest_modseq FROM x`,
		m.ID, n, unseen, deleted, size, bodies, sizes, flags, kws, dates, offs).Scan(&first, &modseq)
	if err != nil {
		return nil, 0, err
	}
	uids := make([]store.UID, n)
	for i := range uids {
		uids[i] = store.UID(first + int64(i))
	}
	w.publish(store.Change{Kind: store.ChangeAppend, Account: m.Account, Mailbox: m.ID, UIDs: uids, ModSeq: store.ModSeq(modseq)})
	return uids, store.ModSeq(modseq), nil
}

// inZone returns t in the fixed zone of offset seconds east of UTC.
func inZone(t time.Time, off int32) time.Time {
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}

// refBodies adds references to bodies, locking their rows in id order.
func (w *wtx) refBodies(ids []int64) error {
	counts := map[int64]int64{}
	for _, id := range ids {
		counts[id]++
	}
	keys := make([]int64, 0, len(counts))
	for id := range counts {
		keys = append(keys, id)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	ns := make([]int64, len(keys))
	for i, k := range keys {
		ns[i] = counts[k]
	}
	want := int64(len(keys))
	w.deferExec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != want {
			return store.ErrNotFound // a body vanished: the staged body's entries were all expunged
		}
		return nil
	}, `UPDATE bodies b SET refs = b.refs + d.n
		FROM (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS t(id, n) ORDER BY id) AS d
		WHERE b.id = d.id`, keys, ns)
	return nil
}

// addUsage charges delta bytes to the (locked) account.
func (w *wtx) addUsage(acct store.AccountID, delta int64) error {
	if delta == 0 {
		return nil
	}
	w.deferExec(nil, `UPDATE accounts SET used_bytes = used_bytes + $2 WHERE id = $1`, acct, delta)
	return nil
}

func overQuota(quota, used, add int64) bool { return quota > 0 && add > 0 && used+add > quota }

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, acct store.AccountID, mbox store.MailboxID, msgs []store.AppendMessage) (store.AppendResult, error) {
	var res store.AppendResult
	if len(msgs) == 0 {
		return res, nil
	}
	sts := make([]*staged, len(msgs))
	for i, am := range msgs {
		st, err := s.stagedOf(am.Body)
		if err != nil {
			return res, err
		}
		if err := checkFlags(am.Flags); err != nil {
			return res, err
		}
		sts[i] = st
	}
	now := time.Now()
	err := s.write(ctx, func(w *wtx) error {
		// Bodies first, before any lock: a large body does not hold the
		// mailbox while it streams.
		ids := make([]int64, len(sts))
		for i, st := range sts {
			id, err := w.storeBody(st)
			if err != nil {
				return err
			}
			ids[i] = id
		}
		quota, used, m, err := w.lockAccountMailbox(acct, mbox)
		if err != nil {
			return err
		}
		var total int64
		es := make([]entry, len(msgs))
		for i, am := range msgs {
			kws, err := w.keywordNames(m.ID, am.Flags.Keywords)
			if err != nil {
				return err
			}
			d := am.InternalDate
			if d.IsZero() {
				d = now
			}
			es[i] = entry{body: ids[i], size: sts[i].size, sys: am.Flags.Sys, kws: kws, date: d}
			total += sts[i].size
		}
		if overQuota(quota, used, total) {
			return store.ErrOverQuota
		}
		uids, modseq, err := w.addEntries(m, es)
		if err != nil {
			return err
		}
		if err := w.addUsage(acct, total); err != nil {
			return err
		}
		if err := w.refBodies(ids); err != nil {
			return err
		}
		res = store.AppendResult{UIDValidity: m.UIDValidity, UIDs: uids, ModSeq: modseq}
		for i, st := range sts {
			st, id := st, ids[i]
			w.after = append(w.after, func() { st.committed(id) })
		}
		return nil
	})
	if err != nil {
		return store.AppendResult{}, err
	}
	return res, nil
}

// errNothingDelivered aborts Deliver's transaction when every target
// failed on its own; the per-target errors are the result.
var errNothingDelivered = errors.New("postgres: no target accepted the message")

// Deliver implements store.Store.
func (s *Store) Deliver(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]error, error) {
	st, err := s.stagedOf(body)
	if err != nil {
		return nil, err
	}
	var errs []error
	now := time.Now()
	err = s.write(ctx, func(w *wtx) error {
		errs = make([]error, len(targets))
		for i, t := range targets {
			errs[i] = checkFlags(t.Flags)
		}
		id, err := w.storeBody(st)
		if err != nil {
			return err
		}
		if len(targets) == 1 && errs[0] == nil {
			return w.deliverOne(st, id, targets[0], now, errs)
		}
		// Accounts in id order, then their mailboxes in id order.
		type acctState struct {
			quota, used, add int64
			ok               bool
		}
		accts := map[store.AccountID]*acctState{}
		var order []store.AccountID
		for _, t := range targets {
			if _, ok := accts[t.Account]; !ok {
				accts[t.Account] = &acctState{}
				order = append(order, t.Account)
			}
		}
		sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
		for _, a := range order {
			q, u, err := w.lockAccount(a)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			*accts[a] = acctState{quota: q, used: u, ok: true}
		}
		mboxIDs := make([]store.MailboxID, len(targets))
		for i, t := range targets {
			if errs[i] != nil {
				continue
			}
			if !accts[t.Account].ok {
				errs[i] = store.ErrNotFound
				continue
			}
			name := t.Mailbox
			if name == "" {
				name = store.InboxName
			}
			n, err := store.CanonicalMailboxName(name)
			if err != nil {
				errs[i] = store.ErrNotFound
				continue
			}
			var mid int64
			err = w.tx.QueryRow(w.ctx, `SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2`, t.Account, n).Scan(&mid)
			if err != nil {
				if errors.Is(translate(err), store.ErrNotFound) {
					errs[i] = store.ErrNotFound
					continue
				}
				return err
			}
			mboxIDs[i] = store.MailboxID(mid)
		}
		var ids []store.MailboxID
		seen := map[store.MailboxID]bool{}
		for i, mid := range mboxIDs {
			if errs[i] == nil && !seen[mid] {
				seen[mid] = true
				ids = append(ids, mid)
			}
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		boxes := map[store.MailboxID]store.Mailbox{}
		for _, mid := range ids {
			var acct store.AccountID
			for i, x := range mboxIDs {
				if x == mid && errs[i] == nil {
					acct = targets[i].Account
					break
				}
			}
			m, err := w.lockMailbox(acct, mid)
			if err != nil {
				return err
			}
			boxes[mid] = m
		}
		perBox := map[store.MailboxID][]entry{}
		var refs int
		for i, t := range targets {
			if errs[i] != nil {
				continue
			}
			m := boxes[mboxIDs[i]]
			if m.NoSelect {
				errs[i] = store.ErrNoSelect
				continue
			}
			a := accts[t.Account]
			if overQuota(a.quota, a.used+a.add, st.size) {
				errs[i] = store.ErrOverQuota
				continue
			}
			kws, err := w.keywordNames(m.ID, t.Flags.Keywords)
			if err != nil {
				if errors.Is(err, store.ErrTooManyItems) {
					errs[i] = err
					continue
				}
				return err
			}
			a.add += st.size
			perBox[m.ID] = append(perBox[m.ID], entry{body: id, size: st.size, sys: t.Flags.Sys, kws: kws, date: now})
			refs++
		}
		if refs == 0 {
			return errNothingDelivered
		}
		for _, mid := range ids {
			if es := perBox[mid]; len(es) > 0 {
				if _, _, err := w.addEntries(boxes[mid], es); err != nil {
					return err
				}
			}
		}
		for _, a := range order {
			if err := w.addUsage(a, accts[a].add); err != nil {
				return err
			}
		}
		refIDs := make([]int64, refs)
		for i := range refIDs {
			refIDs[i] = id
		}
		if err := w.refBodies(refIDs); err != nil {
			return err
		}
		w.after = append(w.after, func() { st.committed(id) })
		return nil
	})
	if errors.Is(err, errNothingDelivered) {
		return errs, nil
	}
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// deliverOne is Deliver's common case, one target: the account and the
// mailbox are found and locked in one statement.
func (w *wtx) deliverOne(st *staged, body int64, t store.DeliveryTarget, now time.Time, errs []error) error {
	name := t.Mailbox
	if name == "" {
		name = store.InboxName
	}
	n, err := store.CanonicalMailboxName(name)
	if err != nil {
		errs[0] = store.ErrNotFound
		return errNothingDelivered
	}
	dest, finish := mailboxDest()
	var quota, used int64
	err = w.tx.QueryRow(w.ctx, `SELECT a.quota_bytes, a.used_bytes, `+prefixed("x", mailboxCols)+`
		FROM accounts a JOIN mailboxes x ON x.account_id = a.id
		WHERE a.id = $1 AND x.name = $2 FOR NO KEY UPDATE OF a, x`, t.Account, n).Scan(append([]any{&quota, &used}, dest...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		errs[0] = store.ErrNotFound
		return errNothingDelivered
	}
	if err != nil {
		return err
	}
	m := finish()
	switch {
	case m.NoSelect:
		errs[0] = store.ErrNoSelect
	case overQuota(quota, used, st.size):
		errs[0] = store.ErrOverQuota
	}
	if errs[0] != nil {
		return errNothingDelivered
	}
	kws, err := w.keywordNames(m.ID, t.Flags.Keywords)
	if errors.Is(err, store.ErrTooManyItems) {
		errs[0] = err
		return errNothingDelivered
	}
	if err != nil {
		return err
	}
	if _, _, err := w.addEntries(m, []entry{{body: body, size: st.size, sys: t.Flags.Sys, kws: kws, date: now}}); err != nil {
		return err
	}
	if err := w.addUsage(t.Account, st.size); err != nil {
		return err
	}
	if err := w.refBodies([]int64{body}); err != nil {
		return err
	}
	w.after = append(w.after, func() { st.committed(body) })
	return nil
}

// lockPair locks the account and then src and dst in id order.
func (w *wtx) lockPair(acct store.AccountID, src, dst store.MailboxID) (quota, used int64, sm, dm store.Mailbox, err error) {
	if quota, used, err = w.lockAccount(acct); err != nil {
		return
	}
	first, second := src, dst
	if second < first {
		first, second = second, first
	}
	a, err := w.lockSelectable(acct, first)
	if err != nil {
		return
	}
	b := a
	if second != first {
		if b, err = w.lockSelectable(acct, second); err != nil {
			return
		}
	}
	if a.ID == src {
		sm, dm = a, b
	} else {
		sm, dm = b, a
	}
	return
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
	starts, stops := normSet(uids)
	var res store.CopyResult
	err := s.write(ctx, func(w *wtx) error {
		quota, used, sm, dm, err := w.lockPair(acct, src, dst)
		if err != nil {
			return err
		}
		res = store.CopyResult{UIDValidity: dm.UIDValidity}
		if len(starts) == 0 {
			return nil
		}
		if !move {
			var total int64
			if err := w.tx.QueryRow(w.ctx, `SELECT coalesce(sum(m.size), 0)::bigint FROM `+uidRanges("$2", "$3")+`
				JOIN messages m ON m.uid BETWEEN r.lo AND r.hi WHERE m.mailbox_id = $1`, sm.ID, starts, stops).Scan(&total); err != nil {
				return err
			}
			if overQuota(quota, used, total) {
				return store.ErrOverQuota
			}
		}
		r, err := w.copyMessages(sm, dm, starts, stops, move)
		res.SrcUIDs, res.DstUIDs = r.SrcUIDs, r.DstUIDs
		return err
	})
	if err != nil {
		return store.CopyResult{}, err
	}
	return res, nil
}

// copyMessages copies (or moves) the messages of src in the UID ranges to
// dst; both mailboxes and the account are locked. Copies add account usage
// and body references; moves keep both.
func (w *wtx) copyMessages(src, dst store.Mailbox, starts, stops []int64, move bool) (store.CopyResult, error) {
	res := store.CopyResult{UIDValidity: dst.UIDValidity}
	rows, err := w.tx.Query(w.ctx, `SELECT m.uid, m.sys_flags, m.keywords, m.internal_date, m.date_offset, m.size, m.body_id
		FROM `+uidRanges("$2", "$3")+` JOIN messages m ON m.uid BETWEEN r.lo AND r.hi
		WHERE m.mailbox_id = $1 ORDER BY m.uid`, src.ID, starts, stops)
	if err != nil {
		return res, err
	}
	var es []entry
	var srcUIDs []store.UID
	var allKws []string
	for rows.Next() {
		var uid int64
		var e entry
		var sys, off int32
		if err := rows.Scan(&uid, &sys, &e.kws, &e.date, &off, &e.size, &e.body); err != nil {
			rows.Close()
			return res, err
		}
		e.date = inZone(e.date, off)
		e.sys = store.SysFlags(sys)
		srcUIDs = append(srcUIDs, store.UID(uid))
		allKws = append(allKws, e.kws...)
		es = append(es, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	if len(es) == 0 {
		return res, nil
	}
	if len(allKws) > 0 {
		canon, err := w.keywordNames(dst.ID, allKws)
		if err != nil {
			return res, err
		}
		byFold := make(map[string]string, len(canon))
		for _, k := range canon {
			byFold[strings.ToLower(k)] = k
		}
		for i := range es {
			for j, k := range es[i].kws {
				es[i].kws[j] = byFold[strings.ToLower(k)]
			}
			sortKeywords(es[i].kws)
		}
	}
	dstUIDs, _, err := w.addEntries(dst, es)
	if err != nil {
		return res, err
	}
	res.SrcUIDs, res.DstUIDs = srcUIDs, dstUIDs
	if move {
		r := sliceRanges(srcUIDs)
		if _, err := w.expunge(src, &r, &expungeOpts{keepUsage: true}); err != nil {
			return res, err
		}
		return res, nil
	}
	var total int64
	ids := make([]int64, len(es))
	for i, e := range es {
		total += e.size
		ids[i] = e.body
	}
	if err := w.addUsage(dst.Account, total); err != nil {
		return res, err
	}
	return res, w.refBodies(ids)
}

// sliceRanges turns sorted UIDs into normSet arrays.
func sliceRanges(uids []store.UID) [2][]int64 {
	set := store.UIDSetOf(uids...)
	a, b := normSet(set)
	return [2][]int64{a, b}
}

type expungeOpts struct {
	// keepUsage: the entries live on elsewhere (a move): keep the account
	// usage and the body references.
	keepUsage bool
}

// expunge removes the messages of m (locked) in the ranges (nil: all),
// leaving tombstones with a new ModSeq. It returns the UIDs removed.
func (w *wtx) expunge(m store.Mailbox, ranges *[2][]int64, o *expungeOpts) ([]store.UID, error) {
	if o == nil {
		o = &expungeOpts{}
	}
	q := `DELETE FROM messages m WHERE m.mailbox_id = $1 RETURNING m.uid, m.body_id, m.size, m.sys_flags`
	args := []any{m.ID}
	if ranges != nil {
		q = `DELETE FROM messages m USING ` + uidRanges("$2", "$3") + `
			WHERE m.mailbox_id = $1 AND m.uid BETWEEN r.lo AND r.hi RETURNING m.uid, m.body_id, m.size, m.sys_flags`
		args = append(args, ranges[0], ranges[1])
	}
	rows, err := w.tx.Query(w.ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var uids []store.UID
	var bodies []int64
	var size, unseen, deleted int64
	for rows.Next() {
		var uid, body, sz int64
		var sys int32
		if err := rows.Scan(&uid, &body, &sz, &sys); err != nil {
			rows.Close()
			return nil, err
		}
		uids = append(uids, store.UID(uid))
		bodies = append(bodies, body)
		size += sz
		if store.SysFlags(sys)&store.FlagSeen == 0 {
			unseen++
		}
		if store.SysFlags(sys)&store.FlagDeleted != 0 {
			deleted++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(uids) == 0 {
		return nil, nil
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	n := int64(len(uids))
	var modseq int64
	if err := w.tx.QueryRow(w.ctx, `UPDATE mailboxes SET highest_modseq = highest_modseq + 1,
		messages = messages - $2, unseen = unseen - $3, deleted = deleted - $4, size = size - $5
		WHERE id = $1 RETURNING highest_modseq`, m.ID, n, unseen, deleted, size).Scan(&modseq); err != nil {
		return nil, err
	}
	u64 := make([]int64, len(uids))
	for i, u := range uids {
		u64[i] = int64(u)
	}
	if _, err := w.tx.Exec(w.ctx, `INSERT INTO tombstones (mailbox_id, uid, modseq) SELECT $1, u, $2 FROM unnest($3::bigint[]) AS t(u)
		ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq`, m.ID, modseq, u64); err != nil {
		return nil, err
	}
	if !o.keepUsage {
		if err := w.addUsage(m.Account, -size); err != nil {
			return nil, err
		}
		if err := w.unrefBodies(bodies); err != nil {
			return nil, err
		}
	}
	w.publish(store.Change{Kind: store.ChangeExpunge, Account: m.Account, Mailbox: m.ID, UIDs: uids, ModSeq: store.ModSeq(modseq)})
	return uids, nil
}

// Expunge implements store.Store.
func (s *Store) Expunge(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uids store.UIDSet) ([]store.UID, error) {
	starts, stops := normSet(uids)
	var out []store.UID
	err := s.write(ctx, func(w *wtx) error {
		if _, _, err := w.lockAccount(acct); err != nil {
			return err
		}
		m, err := w.lockSelectable(acct, mbox)
		if err != nil {
			return err
		}
		if len(starts) == 0 {
			out = nil
			return nil
		}
		out, err = w.expunge(m, &[2][]int64{starts, stops}, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetFlags implements store.Store.
func (s *Store) SetFlags(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uids store.UIDSet, op store.FlagOp, flags store.Flags, unchangedSince store.ModSeq) (store.FlagResult, error) {
	if err := checkFlags(flags); err != nil {
		return store.FlagResult{}, err
	}
	starts, stops := normSet(uids)
	var res store.FlagResult
	err := s.write(ctx, func(w *wtx) error {
		res = store.FlagResult{}
		m, err := w.lockSelectable(acct, mbox)
		if err != nil {
			return err
		}
		if len(starts) == 0 {
			return nil
		}
		f := flags
		if op != store.FlagsRemove {
			if f.Keywords, err = w.keywordNames(m.ID, flags.Keywords); err != nil {
				return err
			}
		}
		rows, err := w.tx.Query(w.ctx, `SELECT m.uid, m.modseq, m.sys_flags, m.keywords
			FROM `+uidRanges("$2", "$3")+` JOIN messages m ON m.uid BETWEEN r.lo AND r.hi
			WHERE m.mailbox_id = $1 ORDER BY m.uid`, m.ID, starts, stops)
		if err != nil {
			return err
		}
		var chUIDs []int64
		var chSys []int32
		var chKws []string
		var dUnseen, dDeleted int64
		for rows.Next() {
			var uid, modseq int64
			var sys int32
			var kws []string
			if err := rows.Scan(&uid, &modseq, &sys, &kws); err != nil {
				rows.Close()
				return err
			}
			if unchangedSince > 0 && store.ModSeq(modseq) > unchangedSince {
				res.Modified = append(res.Modified, store.UID(uid))
				continue
			}
			old := store.SysFlags(sys)
			nsys, nkws := store.ApplyFlags(old, kws, op, f)
			if nsys == old && store.SameKeywords(kws, nkws) {
				continue
			}
			sortKeywords(nkws)
			nkws = nilIfEmpty(nkws)
			if old&store.FlagSeen != 0 && nsys&store.FlagSeen == 0 {
				dUnseen++
			} else if old&store.FlagSeen == 0 && nsys&store.FlagSeen != 0 {
				dUnseen--
			}
			if old&store.FlagDeleted == 0 && nsys&store.FlagDeleted != 0 {
				dDeleted++
			} else if old&store.FlagDeleted != 0 && nsys&store.FlagDeleted == 0 {
				dDeleted--
			}
			chUIDs = append(chUIDs, uid)
			chSys = append(chSys, int32(nsys))
			chKws = append(chKws, strings.Join(nkws, " "))
			res.Updated = append(res.Updated, store.FlagUpdate{UID: store.UID(uid), Flags: store.Flags{Sys: nsys, Keywords: nkws}})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(chUIDs) == 0 {
			return nil
		}
		var modseq int64
		if err := w.tx.QueryRow(w.ctx, `UPDATE mailboxes SET highest_modseq = highest_modseq + 1,
			unseen = unseen + $2, deleted = deleted + $3 WHERE id = $1 RETURNING highest_modseq`,
			m.ID, dUnseen, dDeleted).Scan(&modseq); err != nil {
			return err
		}
		if _, err := w.tx.Exec(w.ctx, `UPDATE messages m SET modseq = $2, sys_flags = t.f, keywords = string_to_array(t.k, ' ')
			FROM unnest($3::bigint[], $4::int[], $5::text[]) AS t(u, f, k)
			WHERE m.mailbox_id = $1 AND m.uid = t.u`, m.ID, modseq, chUIDs, chSys, chKws); err != nil {
			return err
		}
		uidList := make([]store.UID, len(res.Updated))
		for i := range res.Updated {
			res.Updated[i].ModSeq = store.ModSeq(modseq)
			uidList[i] = res.Updated[i].UID
		}
		w.publish(store.Change{Kind: store.ChangeFlags, Account: acct, Mailbox: m.ID, UIDs: uidList, ModSeq: store.ModSeq(modseq)})
		return nil
	})
	if err != nil {
		return store.FlagResult{}, err
	}
	return res, nil
}
