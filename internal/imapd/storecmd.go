package imapd

import (
	"errors"
	"slices"
	"strings"

	"github.com/skrytka/skrytka/internal/store"
)

// resolve turns a parsed set into UIDs known to this session.
func (c *conn) resolve(cmd *command, set numSet) (store.UIDSet, error) {
	s := c.sel
	if set.dollar {
		// RFC 5182 §2.1: "$" is the saved result, intersected with the
		// messages that still exist.
		var out store.UIDSet
		for _, r := range s.searchRes {
			out = s.t.appendUIDRange(out, r.Start, r.Stop)
		}
		return out, nil
	}
	if cmd.uid {
		return s.t.uidsToSet(set), nil
	}
	uids, ok := s.t.seqToUIDs(set)
	if !ok {
		return nil, bad("", "invalid message sequence number")
	}
	return uids, nil
}

// cmdStore: RFC 9051 §6.4.6, UNCHANGEDSINCE (RFC 7162 §3.1.3).
func cmdStore(c *conn, cmd *command) error {
	d := cmd.d
	cmd.noExpunge = !cmd.uid
	d.sp()
	set := d.seqSet()
	d.sp()
	var unchangedSince store.ModSeq
	hasUnchanged := false
	if d.peek() == '(' {
		d.list(false, func() {
			if strings.ToUpper(d.atom()) != "UNCHANGEDSINCE" {
				d.fail("unknown STORE modifier")
				return
			}
			d.sp()
			unchangedSince = store.ModSeq(d.number64())
			hasUnchanged = true
		})
		d.sp()
	}
	item := strings.ToUpper(d.atom())
	d.sp()
	var names []string
	if d.peek() == '(' {
		names = d.flagList()
	} else {
		for d.err == nil {
			names = append(names, d.flagName())
			if !d.maybe(' ') {
				break
			}
		}
	}
	if err := d.end(); err != nil {
		return err
	}
	var op store.FlagOp
	switch strings.TrimSuffix(item, ".SILENT") {
	case "FLAGS":
		op = store.FlagsReplace
	case "+FLAGS":
		op = store.FlagsAdd
	case "-FLAGS":
		op = store.FlagsRemove
	default:
		return bad("", "unknown STORE item")
	}
	silent := strings.HasSuffix(item, ".SILENT")
	flags, err := parseFlags(names)
	if err != nil {
		return err
	}
	s := c.sel
	if s.readOnly {
		return no("CANNOT", "mailbox is read-only")
	}
	uids, err := c.resolve(cmd, set)
	if err != nil {
		return err
	}
	if hasUnchanged {
		c.condstore = true // RFC 7162 §3.1: a CONDSTORE-enabling command
	}
	var modified []store.UID
	if len(uids) > 0 {
		since := unchangedSince
		if hasUnchanged && since == 0 {
			// Every message has a modseq above 0 (RFC 7162 §3.1.3).
			modified = listUIDs(s, uids)
		} else {
			res, err := c.srv.opts.Store.SetFlags(c.ctx, c.acct.ID, s.mbox.ID, uids, op, flags, since)
			if err != nil {
				return err
			}
			modified = res.Modified
			if len(flags.Keywords) > 0 && op != store.FlagsRemove && len(res.Updated) > 0 && !s.knowsKeywords(flags.Keywords) {
				// RFC 9051 §7.3.5: announce the new keyword before the
				// FETCH responses that show it.
				c.learnKeywords(s, flags.Keywords)
				c.sendFlags(s)
				s.newKeywords = false
			}
			if s.reported == nil {
				s.reported = make(map[store.UID]store.ModSeq, len(res.Updated))
			}
			for _, u := range res.Updated {
				s.reported[u.UID] = u.ModSeq
				// RFC 7162 §3.1.3: with UNCHANGEDSINCE even .SILENT stores
				// report the new MODSEQ.
				if silent && !hasUnchanged {
					continue
				}
				if seq := s.t.seq(u.UID); seq > 0 {
					c.sendFlagsFetch(seq, u.UID, u.Flags, u.ModSeq, s, true)
				}
			}
			if !silent && !hasUnchanged {
				// RFC 9051 §6.4.6: the current flags of the messages the
				// STORE did not change are reported too.
				if err := c.reportUnchanged(uids, res); err != nil {
					return err
				}
			}
		}
	}
	if len(modified) > 0 {
		code := []byte("MODIFIED ")
		if cmd.uid {
			code = appendUIDList(code, modified)
		} else {
			seqs := make([]store.UID, 0, len(modified))
			for _, u := range modified {
				seqs = append(seqs, store.UID(s.t.seq(u)))
			}
			code = appendUIDList(code, seqs)
		}
		return c.ok(cmd, string(code), "conditional STORE failed for some messages")
	}
	return c.ok(cmd, "", "STORE completed")
}

func listUIDs(s *selected, set store.UIDSet) []store.UID {
	var out []store.UID
	s.t.each(set, func(u store.UID) bool {
		out = append(out, u)
		return len(out) < 1<<20
	})
	return out
}

// cmdCopy handles COPY and MOVE (RFC 9051 §6.4.7, §6.4.8; RFC 6851) with
// COPYUID (RFC 4315).
func cmdCopy(c *conn, cmd *command) error {
	d := cmd.d
	move := strings.HasSuffix(cmd.name, "MOVE")
	d.sp()
	set := d.seqSet()
	d.sp()
	name, nameErr := c.mailboxArg(d)
	if err := d.end(); err != nil {
		return err
	}
	if nameErr != nil {
		return nameErr
	}
	s := c.sel
	if move && s.readOnly {
		return no("CANNOT", "mailbox is read-only")
	}
	uids, err := c.resolve(cmd, set)
	if err != nil {
		return err
	}
	st := c.srv.opts.Store
	dst, err := st.Mailbox(c.ctx, c.acct.ID, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return no("TRYCREATE", "no such mailbox")
		}
		return err
	}
	if dst.NoSelect {
		return no("CANNOT", "mailbox cannot hold messages")
	}
	if len(uids) == 0 {
		return c.ok(cmd, "", cmd.name+" completed")
	}
	var res store.CopyResult
	if move {
		res, err = st.Move(c.ctx, c.acct.ID, s.mbox.ID, dst.ID, uids)
	} else {
		res, err = st.Copy(c.ctx, c.acct.ID, s.mbox.ID, dst.ID, uids)
	}
	if err != nil {
		return err
	}
	if dst.ID == s.mbox.ID {
		s.dirty = true
	}
	var code string
	if len(res.SrcUIDs) > 0 {
		b := []byte("COPYUID ")
		b = appendUint(b, uint64(res.UIDValidity))
		b = append(b, ' ')
		b = appendUIDSetList(b, res.SrcUIDs)
		b = append(b, ' ')
		b = appendUIDSetList(b, res.DstUIDs)
		code = string(b)
	}
	if move {
		if code != "" {
			// RFC 6851 §4.3: COPYUID goes in an untagged OK before the
			// expunges.
			c.sendString("* OK [" + code + "] moved")
			code = ""
		}
		src := append([]store.UID(nil), res.SrcUIDs...)
		sortUIDs(src)
		c.sendExpunged(s, src)
	}
	return c.ok(cmd, code, cmd.name+" completed")
}

// appendUIDSetList appends UIDs in their given order, compressing only
// ascending runs (COPYUID pairs src and dst UIDs by position).
func appendUIDSetList(b []byte, uids []store.UID) []byte {
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUint(b, uint64(uids[i]))
		if j > i {
			b = append(b, ':')
			b = appendUint(b, uint64(uids[j]))
		}
		i = j + 1
	}
	return b
}

// cmdExpunge handles EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE
// (RFC 4315 §2.1).
func cmdExpunge(c *conn, cmd *command) error {
	d := cmd.d
	var only store.UIDSet
	var set numSet
	if cmd.uid {
		d.sp()
		set = d.seqSet()
	}
	if err := d.end(); err != nil {
		return err
	}
	s := c.sel
	if s.readOnly {
		return no("CANNOT", "mailbox is read-only")
	}
	if cmd.uid {
		var err error
		if only, err = c.resolve(cmd, set); err != nil {
			return err
		}
		if len(only) == 0 {
			return c.ok(cmd, "", "EXPUNGE completed")
		}
	}
	gone, err := c.expungeDeleted(s, only)
	if err != nil {
		return err
	}
	sortUIDs(gone)
	c.sendExpunged(s, gone)
	return c.ok(cmd, "", "EXPUNGE completed")
}

func sortUIDs(u []store.UID) { slices.Sort(u) }

// reportUnchanged sends FETCH FLAGS for messages in uids that SetFlags left
// as they were (their flags already matched).
func (c *conn) reportUnchanged(uids store.UIDSet, res store.FlagResult) error {
	s := c.sel
	done := make(map[store.UID]bool, len(res.Updated)+len(res.Modified))
	for _, u := range res.Updated {
		done[u.UID] = true
	}
	for _, u := range res.Modified {
		done[u] = true
	}
	if setCount(uids) == len(done) {
		return nil
	}
	for _, chunk := range splitSet(uids, fetchBatch) {
		var same []store.FlagUpdate
		err := c.srv.opts.Store.Messages(c.ctx, c.acct.ID, s.mbox.ID, chunk, store.FetchOptions{}, func(m *store.Message) error {
			if !done[m.UID] {
				same = append(same, store.FlagUpdate{UID: m.UID, Flags: copyFlags(m.Flags), ModSeq: m.ModSeq})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, u := range same {
			if seq := s.t.seq(u.UID); seq > 0 {
				c.sendFlagsFetch(seq, u.UID, u.Flags, u.ModSeq, s, true)
			}
		}
	}
	return nil
}
