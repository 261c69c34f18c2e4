package imapd

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/skrytka/skrytka/internal/store"
)

// mailboxSelecter is implemented by a store that can answer SELECT in one
// call without work per message (the embedded store's SelectMailbox):
// the mailbox, its UIDs as ranges shared read-only with the caller, and
// its keywords. Other stores are asked Mailbox, SelectState and Keywords.
type mailboxSelecter interface {
	// unseen is the first UID without \Seen, 0 if none.
	SelectMailbox(ctx context.Context, acct store.AccountID, name string) (mb store.Mailbox, runs store.UIDSet, keywords []string, unseen store.UID, err error)
}

// selectState reads what SELECT needs of the mailbox name. unseen is the
// first UID without \Seen if the store told it, else 0.
func (c *conn) selectState(name string) (mb store.Mailbox, t *tracker, keywords []string, unseen store.UID, err error) {
	st := c.srv.opts.Store
	if ms, ok := st.(mailboxSelecter); ok {
		mb, runs, keywords, unseen, err := ms.SelectMailbox(c.ctx, c.acct.ID, name)
		if err != nil {
			return store.Mailbox{}, nil, nil, 0, err
		}
		return mb, newSharedTracker(runs), keywords, unseen, nil
	}
	mb, err = st.Mailbox(c.ctx, c.acct.ID, name)
	if err != nil {
		return store.Mailbox{}, nil, nil, 0, err
	}
	if mb.NoSelect {
		return store.Mailbox{}, nil, nil, 0, store.ErrNoSelect
	}
	mb, uids, err := st.SelectState(c.ctx, c.acct.ID, mb.ID)
	if err != nil {
		return store.Mailbox{}, nil, nil, 0, err
	}
	// RFC 9051 §7.3.5: FLAGS lists the flags defined in the mailbox, which
	// includes the keywords in use, so clients learn its tags.
	keywords, err = st.Keywords(c.ctx, c.acct.ID, mb.ID)
	if err != nil {
		return store.Mailbox{}, nil, nil, 0, err
	}
	return mb, newTracker(uids), keywords, 0, nil
}

// sendFlags sends FLAGS and PERMANENTFLAGS with the keywords the session
// knows of (RFC 9051 §7.3.5, §7.1).
func (c *conn) sendFlags(s *selected) {
	c.out = append(c.out[:0], `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft`...)
	for _, k := range s.keywords {
		c.out = append(append(c.out, ' '), k...)
	}
	c.out = append(c.out, ')')
	c.send(c.out)
	if s.readOnly {
		c.sendString("* OK [PERMANENTFLAGS ()] read-only mailbox")
		return
	}
	c.out = append(c.out[:0], `* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft`...)
	for _, k := range s.keywords {
		c.out = append(append(c.out, ' '), k...)
	}
	c.out = append(c.out, ` \*)] flags permitted`...)
	c.send(c.out)
}

// sendNum sends one line made of a, n and b.
func (c *conn) sendNum(a string, n uint64, b string) {
	c.out = append(append(appendNum(append(c.out[:0], a...), n), b...), "\r\n"...)
	c.bw.Write(c.out)
}

// selected is the state of the selected mailbox.
type selected struct {
	mbox     store.Mailbox // as of SELECT (ID, Name, UIDValidity)
	readOnly bool
	t        *tracker
	// modseq is the sync cursor: changes up to it have been taken in.
	modseq store.ModSeq
	dirty  bool
	// pendingExpunge: UIDs gone in the store but still numbered here,
	// waiting for a command during which EXPUNGE may be sent.
	pendingExpunge []store.UID
	// pendingFlags: flag changes by others, to send as FETCH.
	pendingFlags []store.FlagUpdate
	// reported: flag states this session already sent (its own STORE).
	reported   map[store.UID]store.ModSeq
	sentExists uint32
	// recent: UIDs that are \Recent in this session (rev1 only).
	recent store.UIDSet
	// searchRes is the saved SEARCH result ($, RFC 5182).
	searchRes store.UIDSet
	// keywords are the keywords this session announced in FLAGS and
	// PERMANENTFLAGS; one it has not announced yet is announced before
	// the first response that shows it (RFC 9051 §7.3.5).
	keywords    []string
	newKeywords bool // keywords grew: send FLAGS and PERMANENTFLAGS
}

// cmdSelect handles SELECT and EXAMINE: RFC 9051 §6.3.2, §6.3.3; CONDSTORE
// and QRESYNC parameters (RFC 7162 §3.1.8, §3.2.5).
func cmdSelect(c *conn, cmd *command) error {
	d := cmd.d
	readOnly := cmd.name == "EXAMINE"
	d.sp()
	name, nameErr := c.mailboxArg(d)
	var condstore bool
	var qr *qresyncParams
	if d.maybe(' ') {
		d.list(false, func() {
			switch strings.ToUpper(d.atom()) {
			case "CONDSTORE":
				condstore = true
			case "QRESYNC":
				d.sp()
				qr = d.qresyncParams()
			default:
				d.fail("unknown SELECT parameter")
			}
		})
	}
	if err := d.end(); err != nil {
		return err
	}
	if qr != nil && !c.qresync {
		// RFC 7162 §3.2.5: QRESYNC must be enabled first.
		return bad("", "QRESYNC is not enabled")
	}
	if c.sel != nil {
		// RFC 7162 §3.2.11, RFC 9051 §7.1: the old mailbox is closed.
		c.sel = nil
		c.state = stateAuth
		c.sendString("* OK [CLOSED] previous mailbox closed")
	}
	if nameErr != nil {
		return nameErr
	}
	if condstore {
		c.condstore = true
	}
	st := c.srv.opts.Store
	mb, t, keywords, unseen, err := c.selectState(name)
	if err != nil {
		return err
	}
	s := &selected{
		mbox:     mb,
		readOnly: readOnly,
		t:        t,
		modseq:   mb.HighestModSeq,
		keywords: keywords,
	}
	if !c.rev2 && t.count() > 0 {
		last := t.max()
		first := mb.RecentUID
		// Claiming is a write: skip it when nothing is left to claim.
		if !readOnly && (first == 0 || first <= last) {
			if first, err = st.ClaimRecent(c.ctx, c.acct.ID, mb.ID); err != nil {
				// \Recent is advisory; a failed claim (a write: the disk
				// may be full) must not stop a user from opening mail.
				c.log.Warn("claim recent", "mailbox", mb.Name, "err", err)
				first = 0
			}
		}
		if first != 0 && first <= last {
			s.recent = store.UIDSet{{Start: first, Stop: last}}
		}
	}
	c.sendFlags(s)
	c.sendNum("* ", uint64(s.t.count()), " EXISTS")
	s.sentExists = s.t.count()
	if !c.rev2 {
		c.sendNum("* ", uint64(s.recentCount()), " RECENT")
		if mb.Unseen > 0 {
			seq := s.t.seq(unseen)
			if unseen == 0 {
				seq = c.firstUnseen(s)
			}
			if seq > 0 {
				c.sendNum("* OK [UNSEEN ", uint64(seq), "] first unseen")
			}
		}
	}
	c.sendNum("* OK [UIDVALIDITY ", uint64(mb.UIDValidity), "] UIDs valid")
	c.sendNum("* OK [UIDNEXT ", uint64(mb.UIDNext), "] predicted next UID")
	c.sendNum("* OK [HIGHESTMODSEQ ", uint64(mb.HighestModSeq), "] highest modseq")
	if c.rev2 {
		// RFC 9051 §6.3.2: a LIST response with the mailbox's name.
		b := append(c.out[:0], "* LIST ("...)
		if mb.SpecialUse != store.SpecialNone {
			b = append(b, mb.SpecialUse...)
		}
		b = append(b, ") \"/\" "...)
		c.out = c.appendMailboxName(b, mb.Name)
		c.send(c.out)
	}
	if qr != nil && qr.uidValidity == mb.UIDValidity {
		if err := c.qresyncSelect(s, qr); err != nil {
			return err
		}
	}
	c.sel = s
	c.state = stateSelected
	code := "READ-WRITE"
	if readOnly {
		code = "READ-ONLY"
	}
	return c.ok(cmd, code, cmd.name+" completed")
}

func (s *selected) recentCount() uint32 {
	var n uint32
	for _, r := range s.recent {
		n += uint32(setCount(s.t.appendUIDRange(nil, r.Start, r.Stop)))
	}
	return n
}

func (s *selected) isRecent(uid store.UID) bool { return setContains(s.recent, uid) }

var errStop = errors.New("stop")

// firstUnseen finds the sequence number of the first message without
// \Seen (RFC 3501 §6.3.1 UNSEEN); it reads flags only.
func (c *conn) firstUnseen(s *selected) uint32 {
	max := s.t.max()
	if max == 0 {
		return 0
	}
	var found store.UID
	err := c.srv.opts.Store.Messages(c.ctx, c.acct.ID, s.mbox.ID, store.UIDSet{{Start: 1, Stop: max}}, store.FetchOptions{}, func(m *store.Message) error {
		if m.Flags.Sys&store.FlagSeen == 0 {
			found = m.UID
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0
	}
	return s.t.seq(found)
}

// cmdClose handles CLOSE (RFC 9051 §6.4.1: expunge silently unless
// read-only) and UNSELECT (RFC 3691).
func cmdClose(c *conn, cmd *command) error {
	if err := cmd.d.end(); err != nil {
		return err
	}
	s := c.sel
	if cmd.name == "CLOSE" && !s.readOnly {
		if _, err := c.expungeDeleted(s, nil); err != nil {
			return err
		}
	}
	c.sel = nil
	c.state = stateAuth
	return c.ok(cmd, "", cmd.name+" completed")
}

func (c *conn) appendMailboxName(b []byte, name string) []byte {
	return appendAStringName(b, c.wireName(name), c.utf8)
}

func appendNum(b []byte, n uint64) []byte { return strconv.AppendUint(b, n, 10) }
