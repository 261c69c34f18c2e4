package embedded

import (
	"context"
	"database/sql"
	"sort"
	"strings"
	"sync"

	"github.com/skrytka/skrytka/internal/store"
)

// The message cache keeps, per mailbox, the metadata of every message
// (everything in store.Message but Parsed) in UID order, so that SELECT
// and FETCH FLAGS of a big mailbox do not walk the B-tree row by row.
//
// Correctness does not depend on the writer telling the cache anything:
// every change to a mailbox's messages (append, copy, move, flag change,
// expunge) gives the changed rows, or the tombstones of the removed ones,
// a new ModSeq and raises the mailbox's highest_modseq in the same
// transaction. A reader reads the mailbox row and, in the same read
// transaction (one snapshot), either finds the cached snapshot at exactly
// that highest_modseq, or brings it up to date with the rows and
// tombstones whose ModSeq is above the cached one (the index on
// (mailbox_id, modseq) serves both), or loads the mailbox again. The
// message counter kept by triggers is checked against the result; a
// mismatch reloads. Snapshots are immutable once published, so nothing is
// locked while callers run.

// cacheMaxRecords bounds the records kept over all mailboxes (48
// bytes each); the least recently used mailboxes go first.
const cacheMaxRecords = 1 << 20

// msgRec is one cached message. It holds no pointer, so that the garbage
// collector neither zeroes nor scans the snapshots.
type msgRec struct {
	id     store.MessageID
	modseq store.ModSeq
	date   int64
	size   int64
	kw     uint32 // index in boxSnap.kwTab
	uid    store.UID
	tz     int32
	sys    store.SysFlags
}

// boxSnap is the state of one mailbox at highest_modseq modseq.
type boxSnap struct {
	validity uint32
	modseq   store.ModSeq
	recs     []msgRec // ascending UID; never modified once published
	kwTab    []string // distinct keyword strings as stored; [0] is ""
	// runs are the UIDs of recs as ranges of consecutive UIDs, clipped
	// (len == cap) so that a caller appending to them copies: SELECT
	// hands them to the session as they are.
	runs store.UIDSet
	// kwSplit[i] is kwTab[i] split into keywords (clipped), shared by
	// every message that has it: no allocation per message.
	kwSplit [][]string
}

// newBoxSnap builds a snapshot; runs nil means computed from recs.
func newBoxSnap(validity uint32, modseq store.ModSeq, recs []msgRec, kwTab []string, runs store.UIDSet) *boxSnap {
	if runs == nil {
		runs = runsOf(recs)
	}
	split := make([][]string, len(kwTab))
	for i, t := range kwTab {
		k := splitKeywords(t)
		split[i] = k[:len(k):len(k)]
	}
	return &boxSnap{validity: validity, modseq: modseq, recs: recs, kwTab: kwTab, runs: runs, kwSplit: split}
}

// runsOf returns the UIDs of recs as ranges of consecutive UIDs.
func runsOf(recs []msgRec) store.UIDSet {
	var out store.UIDSet
	for i := range recs {
		u := recs[i].uid
		if k := len(out); k > 0 && out[k-1].Stop+1 == u {
			out[k-1].Stop = u
			continue
		}
		out = append(out, store.UIDRange{Start: u, Stop: u})
	}
	return out[:len(out):len(out)]
}

// kwInterner gives each distinct keyword string (space-separated, as
// stored) an index. It starts from a published table without writing to
// it: the table is clipped, so appending copies.
type kwInterner struct {
	tab []string
	idx map[string]uint32
}

func newInterner(tab []string) *kwInterner {
	if len(tab) == 0 {
		tab = []string{""}
	}
	return &kwInterner{tab: tab[:len(tab):len(tab)]}
}

func (in *kwInterner) id(s string) uint32 {
	if s == "" {
		return 0
	}
	if in.idx == nil {
		in.idx = make(map[string]uint32, len(in.tab))
		for i, t := range in.tab {
			in.idx[t] = uint32(i)
		}
	}
	if i, ok := in.idx[s]; ok {
		return i
	}
	s = strings.Clone(s)
	in.tab = append(in.tab, s)
	in.idx[s] = uint32(len(in.tab) - 1)
	return uint32(len(in.tab) - 1)
}

type cacheEntry struct {
	snap *boxSnap
	used uint64 // tick of the last use, for eviction
}

type msgCache struct {
	mu    sync.Mutex
	boxes map[store.MailboxID]*cacheEntry
	total int // records over all entries
	tick  uint64
}

func (c *msgCache) get(mbox store.MailboxID) *boxSnap {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.boxes[mbox]
	if e == nil {
		return nil
	}
	c.tick++
	e.used = c.tick
	return e.snap
}

// put publishes snap unless a newer one is already there.
func (c *msgCache) put(mbox store.MailboxID, snap *boxSnap) {
	if len(snap.recs) > cacheMaxRecords/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.boxes == nil {
		c.boxes = make(map[store.MailboxID]*cacheEntry)
	}
	c.tick++
	if e := c.boxes[mbox]; e != nil {
		if e.snap.validity == snap.validity && e.snap.modseq > snap.modseq {
			return
		}
		c.total -= len(e.snap.recs)
		e.snap, e.used = snap, c.tick
	} else {
		c.boxes[mbox] = &cacheEntry{snap: snap, used: c.tick}
	}
	c.total += len(snap.recs)
	for c.total > cacheMaxRecords {
		var oldest store.MailboxID
		var min uint64
		for id, e := range c.boxes {
			if id != mbox && (min == 0 || e.used < min) {
				oldest, min = id, e.used
			}
		}
		if min == 0 {
			break
		}
		c.total -= len(c.boxes[oldest].snap.recs)
		delete(c.boxes, oldest)
	}
}

// find returns the index of the first record with UID >= u.
func (b *boxSnap) find(u store.UID) int {
	return sort.Search(len(b.recs), func(i int) bool { return b.recs[i].uid >= u })
}

// message fills m from record i.
func (b *boxSnap) message(i int, mbox store.MailboxID, m *store.Message) {
	r := &b.recs[i]
	*m = store.Message{
		ID:           r.id,
		Mailbox:      mbox,
		UID:          r.uid,
		ModSeq:       r.modseq,
		Flags:        store.Flags{Sys: r.sys, Keywords: b.kwSplit[r.kw]},
		InternalDate: zoneTime(r.date, int(r.tz)),
		Size:         r.size,
	}
}

func recOf(m *store.Message, kw uint32, date int64, tz int) msgRec {
	return msgRec{id: m.ID, uid: m.UID, modseq: m.ModSeq, sys: m.Flags.Sys, kw: kw, date: date, tz: int32(tz), size: m.Size}
}

// mailboxByIDQuery and mailboxByNameQuery read one mailbox row of an
// account.
const (
	mailboxByIDQuery   = `SELECT ` + mailboxCols + ` FROM mailboxes WHERE account_id = ? AND id = ?`
	mailboxByNameQuery = `SELECT ` + mailboxCols + ` FROM mailboxes WHERE account_id = ? AND name = ?`
)

// snapshot returns the mailbox (checked to belong to acct and be
// selectable) and its messages, from one read transaction.
func (s *Store) snapshot(ctx context.Context, acct store.AccountID, mbox store.MailboxID) (store.Mailbox, *boxSnap, error) {
	var m store.Mailbox
	var snap *boxSnap
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		m, snap, err = s.snapshotTx(ctx, tx, mailboxByIDQuery, acct, mbox)
		return err
	})
	if err != nil {
		return store.Mailbox{}, nil, err
	}
	s.publish(m, snap)
	return m, snap, nil
}

// snapshotTx reads the mailbox row that q (mailboxByIDQuery or
// mailboxByNameQuery) selects with acct and key, and the messages as of
// that row, inside tx.
func (s *Store) snapshotTx(ctx context.Context, tx *sql.Tx, q string, acct store.AccountID, key any) (store.Mailbox, *boxSnap, error) {
	st, err := s.rstmt(ctx, q)
	if err != nil {
		return store.Mailbox{}, nil, err
	}
	m, err := scanMailbox(tx.StmtContext(ctx, st).QueryRowContext(ctx, acct, key))
	if err != nil {
		return store.Mailbox{}, nil, err
	}
	if m.NoSelect {
		return store.Mailbox{}, nil, store.ErrNoSelect
	}
	mbox := m.ID
	old := s.cache.get(mbox)
	if old != nil && old.validity == m.UIDValidity && old.modseq == m.HighestModSeq && len(old.recs) == int(m.Messages) {
		return m, old, nil
	}
	var snap *boxSnap
	if old != nil && old.validity == m.UIDValidity && old.modseq < m.HighestModSeq {
		snap, err = s.updateSnap(ctx, tx, mbox, old, m.HighestModSeq)
		if err != nil {
			return store.Mailbox{}, nil, err
		}
	}
	if snap == nil || len(snap.recs) != int(m.Messages) {
		snap, err = s.loadSnap(ctx, tx, mbox, m)
		if err != nil {
			return store.Mailbox{}, nil, err
		}
	}
	return m, snap, nil
}

// publish caches snap, read with m, if it is whole.
func (s *Store) publish(m store.Mailbox, snap *boxSnap) {
	if len(snap.recs) == int(m.Messages) {
		s.cache.put(m.ID, snap)
	}
}

// loadSnap reads every message of m.
func (s *Store) loadSnap(ctx context.Context, tx *sql.Tx, mbox store.MailboxID, m store.Mailbox) (*boxSnap, error) {
	st, err := s.rstmt(ctx, packedPageQuery)
	if err != nil {
		return nil, err
	}
	in := newInterner(nil)
	recs, err := packedRecs(ctx, tx.StmtContext(ctx, st), mbox, 1, ^store.UID(0), -1, make([]msgRec, 0, m.Messages), in)
	if err != nil {
		return nil, err
	}
	return newBoxSnap(m.UIDValidity, m.HighestModSeq, recs, in.tab, nil), nil
}

// updateSnap applies the changes after old.modseq up to modseq.
func (s *Store) updateSnap(ctx context.Context, tx *sql.Tx, mbox store.MailboxID, old *boxSnap, modseq store.ModSeq) (*boxSnap, error) {
	st, err := s.rstmt(ctx, changedQuery)
	if err != nil {
		return nil, err
	}
	rows, err := tx.StmtContext(ctx, st).QueryContext(ctx, mbox, old.modseq)
	if err != nil {
		return nil, err
	}
	var changed []msgRec
	in := newInterner(old.kwTab)
	for rows.Next() {
		var m store.Message
		var kws string
		var date int64
		var tz int
		if err := rows.Scan(&m.ID, &m.UID, &m.ModSeq, &m.Flags.Sys, &kws, &date, &tz, &m.Size); err != nil {
			rows.Close()
			return nil, err
		}
		changed = append(changed, recOf(&m, in.id(kws), date, tz))
		if len(changed) > len(old.recs)/2+1024 {
			rows.Close()
			return nil, nil // cheaper to load again
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if st, err = s.rstmt(ctx, vanishedQuery); err != nil {
		return nil, err
	}
	rows, err = tx.StmtContext(ctx, st).QueryContext(ctx, mbox, old.modseq)
	if err != nil {
		return nil, err
	}
	var gone []store.UID
	for rows.Next() {
		var u store.UID
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return nil, err
		}
		gone = append(gone, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(gone) == 0 {
		// Flag changes and appends only (the common case): copy and
		// patch; new UIDs are above every cached one.
		out := append(make([]msgRec, 0, len(old.recs)+len(changed)), old.recs...)
		ok, grew := true, false
		for _, c := range changed {
			i := sort.Search(len(out), func(i int) bool { return out[i].uid >= c.uid })
			switch {
			case i < len(out) && out[i].uid == c.uid:
				out[i] = c
			case i == len(out):
				out = append(out, c)
				grew = true
			default:
				ok = false
			}
		}
		if ok {
			runs := old.runs
			if grew {
				runs = nil
			}
			return newBoxSnap(old.validity, modseq, out, in.tab, runs), nil
		}
	}
	// Merge three UID-ordered lists: old records, changed or new
	// records (which win), and removed UIDs (dropped).
	out := make([]msgRec, 0, len(old.recs)+len(changed))
	i, j, k := 0, 0, 0
	for i < len(old.recs) || j < len(changed) {
		var r msgRec
		switch {
		case j == len(changed) || i < len(old.recs) && old.recs[i].uid < changed[j].uid:
			r = old.recs[i]
			i++
		case i == len(old.recs) || changed[j].uid < old.recs[i].uid:
			r = changed[j]
			j++
		default: // same UID
			r = changed[j]
			i++
			j++
		}
		for k < len(gone) && gone[k] < r.uid {
			k++
		}
		if k < len(gone) && gone[k] == r.uid {
			continue
		}
		out = append(out, r)
	}
	return newBoxSnap(old.validity, modseq, out, in.tab, nil), nil
}
