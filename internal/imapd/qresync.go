package imapd

import (
	"github.com/skrytka/skrytka/internal/store"
)

// qresyncParams is the QRESYNC parameter of SELECT/EXAMINE (RFC 7162
// §3.2.5): uidvalidity, modseq, optional known UIDs and sequence match
// data (which we do not need: expunged UIDs are remembered).
type qresyncParams struct {
	uidValidity uint32
	modseq      store.ModSeq
	known       numSet
	hasKnown    bool
}

func (d *decoder) qresyncParams() *qresyncParams {
	q := &qresyncParams{}
	d.expect('(')
	d.depth++
	defer func() { d.depth-- }()
	q.uidValidity = d.nzNumber()
	d.sp()
	q.modseq = store.ModSeq(d.number64())
	if d.maybe(' ') {
		if d.peek() != '(' {
			q.known = d.seqSet()
			q.hasKnown = !q.known.dollar
			if q.known.dollar {
				d.fail("$ is not allowed here")
			}
			d.maybe(' ')
		}
		if d.peek() == '(' {
			d.expect('(')
			d.seqSet()
			d.sp()
			d.seqSet()
			d.expect(')')
		}
	}
	d.expect(')')
	return q
}

// qresyncSelect sends VANISHED (EARLIER) and FETCH for what changed since
// the client's modseq (RFC 7162 §3.2.5.1).
func (c *conn) qresyncSelect(s *selected, qr *qresyncParams) error {
	delta, err := c.srv.opts.Store.Changes(c.ctx, c.acct.ID, s.mbox.ID, qr.modseq)
	if err != nil {
		return err
	}
	var known store.UIDSet
	if qr.hasKnown {
		known = resolveRaw(qr.known, s.mbox.UIDNext-1)
	}
	in := func(u store.UID) bool { return !qr.hasKnown || setContains(known, u) }
	var gone []store.UID
	for _, u := range delta.Vanished {
		if in(u) && !s.t.contains(u) {
			gone = append(gone, u)
		}
	}
	if len(gone) > 0 {
		b := append(c.out[:0], "* VANISHED (EARLIER) "...)
		b = appendUIDList(b, gone)
		c.out = b
		c.send(b)
	}
	for i := range delta.Messages {
		m := &delta.Messages[i]
		if !in(m.UID) {
			continue
		}
		if seq := s.t.seq(m.UID); seq > 0 {
			c.sendFlagsFetch(seq, m.UID, m.Flags, m.ModSeq, s, true)
		}
	}
	return nil
}

// resolveRaw turns a UID set into ranges without restricting it to the
// messages that exist ("*" is max).
func resolveRaw(set numSet, max store.UID) store.UIDSet {
	var out store.UIDSet
	for _, r := range set.ranges {
		lo, hi := r.normalise(uint32(max))
		out = append(out, store.UIDRange{Start: store.UID(lo), Stop: store.UID(hi)})
	}
	return normaliseSet(out)
}

// sendVanishedEarlier answers the VANISHED modifier of UID FETCH
// (RFC 7162 §3.2.6): UIDs in set expunged since the modseq.
func (c *conn) sendVanishedEarlier(set numSet, since store.ModSeq) error {
	s := c.sel
	if set.dollar {
		return bad("", "$ is not allowed with VANISHED")
	}
	delta, err := c.srv.opts.Store.Changes(c.ctx, c.acct.ID, s.mbox.ID, since)
	if err != nil {
		return err
	}
	within := resolveRaw(set, delta.Mailbox.UIDNext-1)
	var gone []store.UID
	for _, u := range delta.Vanished {
		if setContains(within, u) && !s.t.contains(u) {
			gone = append(gone, u)
		}
	}
	if len(gone) > 0 {
		b := append(c.out[:0], "* VANISHED (EARLIER) "...)
		b = appendUIDList(b, gone)
		c.out = b
		c.send(b)
	}
	return nil
}
