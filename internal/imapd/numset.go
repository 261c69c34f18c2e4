package imapd

import (
	"github.com/skrytka/skrytka/internal/store"
)

// numRange is one element of a sequence set; 0 stands for "*". Start and
// stop are in the order the client wrote them.
type numRange struct{ start, stop uint32 }

// numSet is a parsed sequence-set (RFC 9051 §9), or "$" (SEARCHRES,
// RFC 5182). It is never expanded: "1:4294967295" costs one range.
type numSet struct {
	ranges []numRange
	dollar bool
}

// seqSet reads a sequence-set or "$".
func (d *decoder) seqSet() numSet {
	if d.maybe('$') {
		return numSet{dollar: true}
	}
	var s numSet
	for d.err == nil {
		a := d.seqNumber()
		b := a
		if d.maybe(':') {
			b = d.seqNumber()
		}
		s.ranges = append(s.ranges, numRange{a, b})
		if !d.maybe(',') {
			break
		}
	}
	return s
}

func (d *decoder) seqNumber() uint32 {
	if d.maybe('*') {
		return 0
	}
	return d.nzNumber()
}

// isSeqSetStart reports whether c can begin a sequence set.
func isSeqSetStart(c byte) bool { return c == '*' || c == '$' || (c >= '0' && c <= '9') }

// normalise returns lo, hi with "*" replaced by star and lo <= hi.
func (r numRange) normalise(star uint32) (lo, hi uint32) {
	lo, hi = r.start, r.stop
	if lo == 0 {
		lo = star
	}
	if hi == 0 {
		hi = star
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// appendUIDSet appends the set in IMAP syntax (compact ranges).
func appendUIDSet(b []byte, s store.UIDSet) []byte {
	for i, r := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUint(b, uint64(r.Start))
		if r.Stop != r.Start {
			b = append(b, ':')
			b = appendUint(b, uint64(r.Stop))
		}
	}
	return b
}

// appendUIDList appends sorted UIDs compressed into ranges.
func appendUIDList(b []byte, uids []store.UID) []byte {
	return appendUIDSet(b, store.UIDSetOf(uids...))
}

func appendUint(b []byte, n uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}
