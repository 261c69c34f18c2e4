package imapd

import (
	"errors"
	"slices"
	"strings"

	"github.com/skrytka/skrytka/internal/store"
)

// pollChanges takes the change hints that arrived, without blocking.
func (c *conn) pollChanges() {
	if c.sub == nil {
		return
	}
	for {
		select {
		case ch, ok := <-c.sub.C():
			if !ok {
				c.sub = nil
				return
			}
			c.noteChange(ch)
		default:
			return
		}
	}
}

func (c *conn) noteChange(ch store.Change) {
	s := c.sel
	if s == nil {
		return
	}
	// Mailbox-list changes are rare and may have deleted the selected
	// mailbox: re-read then too.
	if ch.Kind == store.ChangeOverflow || ch.Kind == store.ChangeMailboxes {
		s.dirty = true
		return
	}
	if ch.Mailbox != s.mbox.ID || s.dirty {
		return
	}
	switch {
	case ch.ModSeq != 0 && ch.ModSeq <= s.modseq:
		// Committed before the state this session last read (every
		// change raises the mailbox's modseq by one, in commit order).
	case ch.ModSeq == s.modseq+1 && s.alreadyShown(ch):
		// The next change, and this session already showed all of it
		// (its own STORE or EXPUNGE): no need to read it back.
		s.modseq = ch.ModSeq
		if ch.Kind == store.ChangeFlags {
			for _, u := range ch.UIDs {
				delete(s.reported, u) // the cursor is past it now
			}
		}
	default:
		s.dirty = true
	}
}

// alreadyShown reports whether the session's view already holds all of
// ch: flag states it reported at ch.ModSeq, or UIDs it already removed.
// A change without UIDs is never taken as shown.
func (s *selected) alreadyShown(ch store.Change) bool {
	if len(ch.UIDs) == 0 {
		return false
	}
	switch ch.Kind {
	case store.ChangeFlags:
		for _, u := range ch.UIDs {
			if ms, ok := s.reported[u]; !ok || ms < ch.ModSeq {
				return false
			}
		}
		return true
	case store.ChangeExpunge:
		for _, u := range ch.UIDs {
			if s.t.contains(u) || slices.Contains(s.pendingExpunge, u) {
				return false
			}
		}
		return true
	}
	return false
}

// sendUpdates writes the selected mailbox's pending changes: FETCH for flag
// changes, EXPUNGE or VANISHED (if allowed), EXISTS and RECENT.
func (c *conn) sendUpdates(allowExpunge bool) {
	c.pollChanges()
	s := c.sel
	if s == nil {
		return
	}
	if s.dirty {
		if err := c.syncSelected(s); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				// The mailbox was deleted or renamed away by another session.
				c.sendString("* BYE [CLOSED] mailbox no longer exists")
				c.sel = nil
				c.state = stateLogout
				return
			}
			c.log.Warn("reading mailbox changes", "err", err)
		}
	}
	if s.newKeywords {
		// RFC 9051 §7.3.5: the new keyword is announced before the FETCH
		// that shows it.
		c.sendFlags(s)
		s.newKeywords = false
	}
	for _, u := range s.pendingFlags {
		seq := s.t.seq(u.UID)
		if seq == 0 {
			continue
		}
		c.sendFlagsFetch(seq, u.UID, u.Flags, u.ModSeq, s, false)
	}
	s.pendingFlags = s.pendingFlags[:0]
	if allowExpunge && len(s.pendingExpunge) > 0 {
		c.sendExpunged(s, s.pendingExpunge)
		s.pendingExpunge = s.pendingExpunge[:0]
	}
	if n := s.t.count(); n != s.sentExists {
		c.sendf("* %d EXISTS", n)
		if !c.rev2 {
			c.sendf("* %d RECENT", s.recentCount())
		}
		s.sentExists = n
	}
}

// sendExpunged removes uids (ascending) from the tracker and reports them:
// VANISHED under QRESYNC (RFC 7162 §3.2.10), else one EXPUNGE each.
func (c *conn) sendExpunged(s *selected, uids []store.UID) {
	var gone []store.UID
	for _, u := range uids {
		seq := s.t.remove(u)
		if seq == 0 {
			continue
		}
		if !c.qresync {
			c.sendf("* %d EXPUNGE", seq)
		}
		gone = append(gone, u)
	}
	if c.qresync && len(gone) > 0 {
		b := append(c.out[:0], "* VANISHED "...)
		b = appendUIDList(b, gone)
		c.out = b
		c.send(b)
	}
	s.sentExists = s.t.count()
}

// syncSelected re-reads what changed since the cursor.
func (c *conn) syncSelected(s *selected) error {
	delta, err := c.srv.opts.Store.Changes(c.ctx, c.acct.ID, s.mbox.ID, s.modseq)
	if err != nil {
		return err
	}
	var added []store.UID
	max := s.t.max()
	for i := range delta.Messages {
		m := &delta.Messages[i]
		if len(m.Flags.Keywords) > 0 && !s.knowsKeywords(m.Flags.Keywords) {
			c.learnKeywords(s, m.Flags.Keywords)
		}
		switch {
		case m.UID > max:
			added = append(added, m.UID)
		case s.t.contains(m.UID):
			if ms, ok := s.reported[m.UID]; ok && ms >= m.ModSeq {
				continue
			}
			s.pendingFlags = append(s.pendingFlags, store.FlagUpdate{
				UID: m.UID, Flags: copyFlags(m.Flags), ModSeq: m.ModSeq,
			})
		}
	}
	for _, u := range delta.Vanished {
		if s.t.contains(u) {
			s.pendingExpunge = append(s.pendingExpunge, u)
		}
	}
	slices.Sort(s.pendingExpunge)
	s.pendingExpunge = slices.Compact(s.pendingExpunge)
	for _, u := range added {
		s.t.add(u)
	}
	if len(added) > 0 && !c.rev2 {
		// \Recent (RFC 3501 §2.3.2): messages below RecentUID were claimed
		// by another session already; only a session that may still get
		// some pays for a claim (a write).
		first, last := added[0], added[len(added)-1]
		if delta.Mailbox.RecentUID > first {
			first = delta.Mailbox.RecentUID
		}
		if !s.readOnly && first <= last {
			r, err := c.srv.opts.Store.ClaimRecent(c.ctx, c.acct.ID, s.mbox.ID)
			if err != nil || r > first {
				first = r
				if err != nil {
					first = last + 1
				}
			}
		}
		if first <= last {
			s.recent = append(s.recent, store.UIDRange{Start: first, Stop: last})
		}
	}
	if delta.Mailbox.HighestModSeq > s.modseq {
		s.modseq = delta.Mailbox.HighestModSeq
	}
	s.reported = nil
	s.dirty = false
	return nil
}

// knowsKeywords reports whether the session announced every keyword in kw.
func (s *selected) knowsKeywords(kw []string) bool {
	for _, k := range kw {
		if !slices.ContainsFunc(s.keywords, func(a string) bool { return strings.EqualFold(a, k) }) {
			return false
		}
	}
	return true
}

// learnKeywords adds the keywords in kw that the session has not
// announced, in the store's order where it can tell, and marks FLAGS and
// PERMANENTFLAGS to be sent again before the next FETCH.
func (c *conn) learnKeywords(s *selected, kw []string) {
	all, err := c.srv.opts.Store.Keywords(c.ctx, c.acct.ID, s.mbox.ID)
	if err != nil {
		all = nil // the ones in kw are announced all the same
	}
	next := slices.Clone(s.keywords)
	for _, k := range append(all, kw...) {
		if !slices.ContainsFunc(next, func(a string) bool { return strings.EqualFold(a, k) }) {
			next = append(next, k)
		}
	}
	if len(next) != len(s.keywords) {
		s.keywords = next
		s.newKeywords = true
	}
}

func copyFlags(f store.Flags) store.Flags {
	return store.Flags{Sys: f.Sys, Keywords: slices.Clone(f.Keywords)}
}

// expungeDeleted expunges the messages with \Deleted (within only, if not
// nil) and returns their UIDs. Only flags are read.
func (c *conn) expungeDeleted(s *selected, only store.UIDSet) ([]store.UID, error) {
	st := c.srv.opts.Store
	mb, err := st.MailboxByID(c.ctx, c.acct.ID, s.mbox.ID)
	if err != nil {
		return nil, err
	}
	if mb.Deleted == 0 {
		return nil, nil
	}
	set := only
	if set == nil {
		max := s.t.max()
		if max == 0 {
			return nil, nil
		}
		set = store.UIDSet{{Start: 1, Stop: max}}
	}
	var del []store.UID
	err = st.Messages(c.ctx, c.acct.ID, s.mbox.ID, set, store.FetchOptions{}, func(m *store.Message) error {
		if m.Flags.Sys&store.FlagDeleted != 0 && s.t.contains(m.UID) {
			del = append(del, m.UID)
		}
		return nil
	})
	if err != nil || len(del) == 0 {
		return nil, err
	}
	return st.Expunge(c.ctx, c.acct.ID, s.mbox.ID, store.UIDSetOf(del...))
}
