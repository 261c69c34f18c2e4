package imapd

import (
	"sort"

	"github.com/skrytka/skrytka/internal/store"
)

// tracker maps the session's message sequence numbers to UIDs for the
// selected mailbox. It stores runs of consecutive UIDs, so a mailbox of
// 100,000 messages with few gaps costs a few bytes, and the worst case
// (every other UID expunged) 8 bytes per message plus 4 for the index.
//
// SELECT may hand it runs shared with the store's cache and with other
// sessions (shared): they are copied before the first change
// (copy-on-write), so selecting a big mailbox costs no work per message.
type tracker struct {
	runs   store.UIDSet // ascending, disjoint, not adjacent
	shared bool         // runs belong to someone else: copy before writing
	// before[i] is the number of messages in runs[:i]; valid when !dirty.
	before []uint32
	dirty  bool
	n      uint32
}

func newTracker(uids []store.UID) *tracker {
	t := &tracker{}
	for _, u := range uids {
		t.add(u)
	}
	return t
}

// newSharedTracker tracks the UIDs in runs (normalised ranges) without
// copying them; runs must not change while it is in use.
func newSharedTracker(runs store.UIDSet) *tracker {
	return &tracker{runs: runs, shared: true, dirty: true, n: uint32(setCount(runs))}
}

// own makes runs the tracker's own before a change.
func (t *tracker) own() {
	if t.shared {
		t.runs = append(make(store.UIDSet, 0, len(t.runs)+8), t.runs...)
		t.shared = false
	}
}

func (t *tracker) count() uint32 { return t.n }

// max returns the highest UID, 0 if empty.
func (t *tracker) max() store.UID {
	if len(t.runs) == 0 {
		return 0
	}
	return t.runs[len(t.runs)-1].Stop
}

// add appends uid, which must be above max().
func (t *tracker) add(uid store.UID) {
	if uid <= t.max() {
		return
	}
	t.own()
	t.n++
	if k := len(t.runs); k > 0 && t.runs[k-1].Stop+1 == uid {
		t.runs[k-1].Stop = uid
		return
	}
	if !t.dirty {
		t.before = append(t.before, t.n-1)
	}
	t.runs = append(t.runs, store.UIDRange{Start: uid, Stop: uid})
}

func (t *tracker) index() {
	if !t.dirty && len(t.before) == len(t.runs) {
		return
	}
	t.before = t.before[:0]
	var n uint32
	for _, r := range t.runs {
		t.before = append(t.before, n)
		n += uint32(r.Stop-r.Start) + 1
	}
	t.dirty = false
}

// find returns the run index holding uid, or -1.
func (t *tracker) find(uid store.UID) int {
	i := sort.Search(len(t.runs), func(i int) bool { return t.runs[i].Stop >= uid })
	if i < len(t.runs) && t.runs[i].Start <= uid {
		return i
	}
	return -1
}

// seq returns the sequence number of uid, 0 if absent.
func (t *tracker) seq(uid store.UID) uint32 {
	i := t.find(uid)
	if i < 0 {
		return 0
	}
	t.index()
	return t.before[i] + uint32(uid-t.runs[i].Start) + 1
}

// uid returns the UID at sequence number seq (1-based), 0 if out of range.
func (t *tracker) uid(seq uint32) store.UID {
	if seq == 0 || seq > t.n {
		return 0
	}
	t.index()
	i := sort.Search(len(t.before), func(i int) bool { return t.before[i] >= seq }) - 1
	return t.runs[i].Start + store.UID(seq-1-t.before[i])
}

// remove deletes uid and returns the sequence number it had (0 if absent).
func (t *tracker) remove(uid store.UID) uint32 {
	seq := t.seq(uid)
	if seq == 0 {
		return 0
	}
	t.own()
	i := t.find(uid)
	r := t.runs[i]
	switch {
	case r.Start == r.Stop:
		t.runs = append(t.runs[:i], t.runs[i+1:]...)
	case uid == r.Start:
		t.runs[i].Start++
	case uid == r.Stop:
		t.runs[i].Stop--
	default:
		t.runs = append(t.runs, store.UIDRange{})
		copy(t.runs[i+2:], t.runs[i+1:])
		t.runs[i] = store.UIDRange{Start: r.Start, Stop: uid - 1}
		t.runs[i+1] = store.UIDRange{Start: uid + 1, Stop: r.Stop}
	}
	t.n--
	t.dirty = true
	return seq
}

// contains reports whether uid is tracked.
func (t *tracker) contains(uid store.UID) bool { return t.find(uid) >= 0 }

// seqToUIDs resolves a sequence-number set. ok is false if it names a
// sequence number above count (RFC 9051 §6.4.8: BAD). "*" on an empty
// mailbox resolves to the empty set.
func (t *tracker) seqToUIDs(s numSet) (store.UIDSet, bool) {
	var out store.UIDSet
	for _, r := range s.ranges {
		if t.n == 0 && (r.start == 0 || r.stop == 0) {
			continue
		}
		lo, hi := r.normalise(t.n)
		if hi > t.n || lo == 0 {
			return nil, false
		}
		out = t.appendSeqRange(out, lo, hi)
	}
	return normaliseSet(out), true
}

// appendSeqRange appends the UIDs of sequence numbers lo..hi (valid).
func (t *tracker) appendSeqRange(out store.UIDSet, lo, hi uint32) store.UIDSet {
	t.index()
	i := sort.Search(len(t.before), func(i int) bool { return t.before[i] >= lo }) - 1
	for seq := lo; seq <= hi && i < len(t.runs); i++ {
		r := t.runs[i]
		off := seq - 1 - t.before[i]
		take := uint32(r.Stop-r.Start) + 1 - off
		if seq+take-1 > hi {
			take = hi - seq + 1
		}
		start := r.Start + store.UID(off)
		out = append(out, store.UIDRange{Start: start, Stop: start + store.UID(take) - 1})
		seq += take
	}
	return out
}

// uidsToSet resolves a UID set against the tracked UIDs: "*" is the highest
// UID (RFC 9051 §6.4.8), and UIDs not in the session's view are dropped.
func (t *tracker) uidsToSet(s numSet) store.UIDSet {
	var out store.UIDSet
	max := t.max()
	if max == 0 {
		return nil
	}
	for _, r := range s.ranges {
		lo, hi := r.normalise(uint32(max))
		out = t.appendUIDRange(out, store.UID(lo), store.UID(hi))
	}
	return normaliseSet(out)
}

func (t *tracker) appendUIDRange(out store.UIDSet, lo, hi store.UID) store.UIDSet {
	i := sort.Search(len(t.runs), func(i int) bool { return t.runs[i].Stop >= lo })
	for ; i < len(t.runs) && t.runs[i].Start <= hi; i++ {
		r := t.runs[i]
		a, b := r.Start, r.Stop
		if a < lo {
			a = lo
		}
		if b > hi {
			b = hi
		}
		if a <= b {
			out = append(out, store.UIDRange{Start: a, Stop: b})
		}
	}
	return out
}

// uidsOf lists the tracked UIDs in s, ascending.
func (t *tracker) each(s store.UIDSet, fn func(store.UID) bool) {
	for _, r := range s {
		for u := r.Start; ; u++ {
			if !fn(u) {
				return
			}
			if u == r.Stop {
				break
			}
		}
	}
}

// normaliseSet sorts and merges ranges.
func normaliseSet(s store.UIDSet) store.UIDSet {
	if len(s) < 2 {
		return s
	}
	sort.Slice(s, func(i, j int) bool { return s[i].Start < s[j].Start })
	out := s[:1]
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		if last.Stop == ^store.UID(0) || r.Start <= last.Stop+1 {
			if r.Stop > last.Stop {
				last.Stop = r.Stop
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// setCount returns the number of UIDs in a normalised set.
func setCount(s store.UIDSet) int {
	n := 0
	for _, r := range s {
		n += int(r.Stop-r.Start) + 1
	}
	return n
}

// splitSet cuts a normalised set into chunks of at most n UIDs.
func splitSet(s store.UIDSet, n int) []store.UIDSet {
	var out []store.UIDSet
	var cur store.UIDSet
	left := n
	for _, r := range s {
		for r.Start <= r.Stop {
			size := int(r.Stop-r.Start) + 1
			if size <= left {
				cur = append(cur, r)
				left -= size
				break
			}
			cut := r.Start + store.UID(left) - 1
			cur = append(cur, store.UIDRange{Start: r.Start, Stop: cut})
			out = append(out, cur)
			cur, left = nil, n
			r.Start = cut + 1
		}
		if left == 0 {
			out = append(out, cur)
			cur, left = nil, n
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
