package imapd

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/skrytka/skrytka/internal/mailparse"
	"github.com/skrytka/skrytka/internal/store"
)

// SORT (RFC 5256): the messages a search program matches, ordered by
// ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT or TO, or by DISPLAYFROM and
// DISPLAYTO (SORT=DISPLAY, RFC 5957), each optionally REVERSE;
// ties keep mailbox order. Strings compare under i;ascii-casemap, the
// RFC's default collation. Webmail clients (Roundcube among them) sort
// on the server when SORT is offered instead of fetching every
// envelope. THREAD is not built.

type sortKey struct {
	name    string
	reverse bool
}

// sortRec is what the keys of one message compare.
type sortRec struct {
	uid      store.UID
	size     int64
	arrival  time.Time
	date     time.Time
	subject  string
	from, to string
	cc       string
	// displayFrom and displayTo: the first address's decoded display
	// name, or its addr-spec when it has none (RFC 5957).
	displayFrom string
	displayTo   string
}

// cmdSort: RFC 5256 SORT and UID SORT.
func cmdSort(c *conn, cmd *command) error {
	d := cmd.d
	cmd.noExpunge = !cmd.uid
	d.sp()
	var keys []sortKey
	reverse := false
	d.list(false, func() {
		for d.err == nil {
			name := strings.ToUpper(d.atom())
			switch name {
			case "REVERSE":
				if reverse {
					d.fail("REVERSE twice")
				}
				reverse = true
			case "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO":
				keys = append(keys, sortKey{name, reverse})
				reverse = false
			default:
				d.fail("unknown sort key %s", name)
			}
			if d.peek() != ' ' {
				break
			}
			d.sp()
		}
		if reverse {
			d.fail("REVERSE without a sort key")
		}
	})
	d.sp()
	if err := d.searchCharset(); err != nil {
		return err
	}
	prog := c.searchKeys(d, "")
	if err := d.end(); err != nil {
		return err
	}
	uids, _, err := c.runSearch(prog)
	if err != nil {
		return err
	}
	recs, err := c.sortRecs(uids, keys)
	if err != nil {
		return err
	}
	slices.SortStableFunc(recs, func(a, b sortRec) int {
		for _, k := range keys {
			r := compareBy(k.name, &a, &b)
			if k.reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return cmp.Compare(a.uid, b.uid)
	})
	s := c.sel
	b := append(c.out[:0], "* SORT"...)
	for _, r := range recs {
		b = append(b, ' ')
		if cmd.uid {
			b = appendUint(b, uint64(r.uid))
		} else {
			b = appendUint(b, uint64(s.t.seq(r.uid)))
		}
	}
	c.out = b
	c.send(b)
	return c.ok(cmd, "", "SORT completed")
}

// sortRecs reads what keys need for each of uids (ascending).
func (c *conn) sortRecs(uids []store.UID, keys []sortKey) ([]sortRec, error) {
	needParsed := false
	for _, k := range keys {
		switch k.name {
		case "CC", "DATE", "FROM", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO":
			needParsed = true
		}
	}
	recs := make([]sortRec, 0, len(uids))
	st := c.srv.opts.Store
	for _, chunk := range splitSet(store.UIDSetOf(uids...), fetchBatch) {
		err := st.Messages(c.ctx, c.acct.ID, c.sel.mbox.ID, chunk, store.FetchOptions{Parsed: needParsed}, func(m *store.Message) error {
			r := sortRec{uid: m.UID, size: m.Size, arrival: m.InternalDate, date: m.InternalDate}
			if p := m.Parsed; p != nil {
				if !p.Date.IsZero() {
					r.date = p.Date
				}
				r.subject = asciiLower(baseSubject(p.Envelope.Subject))
				r.from = firstMailbox(p.Envelope.From)
				r.to = firstMailbox(p.Envelope.To)
				r.cc = firstMailbox(p.Envelope.Cc)
				r.displayFrom = firstDisplay(p.Envelope.From)
				r.displayTo = firstDisplay(p.Envelope.To)
			}
			recs = append(recs, r)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return recs, nil
}

func compareBy(key string, a, b *sortRec) int {
	switch key {
	case "ARRIVAL":
		return a.arrival.Compare(b.arrival)
	case "DATE":
		return a.date.Compare(b.date)
	case "SIZE":
		return cmp.Compare(a.size, b.size)
	case "SUBJECT":
		return strings.Compare(a.subject, b.subject)
	case "FROM":
		return strings.Compare(a.from, b.from)
	case "TO":
		return strings.Compare(a.to, b.to)
	case "CC":
		return strings.Compare(a.cc, b.cc)
	case "DISPLAYFROM":
		return strings.Compare(a.displayFrom, b.displayFrom)
	case "DISPLAYTO":
		return strings.Compare(a.displayTo, b.displayTo)
	}
	return 0
}

// firstMailbox is the local part of the first address of l, lower-cased
// (ASCII only, as i;ascii-casemap compares); "" when there is none.
func firstMailbox(l []mailparse.Address) string {
	for _, a := range l {
		if a.GroupStart || a.GroupEnd {
			continue
		}
		return asciiLower(a.Mailbox)
	}
	return ""
}

// firstDisplay is the decoded display name of the first address of l,
// or its addr-spec when it has none, ASCII lower-cased; "" when l has no
// address.
func firstDisplay(l []mailparse.Address) string {
	for _, a := range l {
		if a.GroupStart || a.GroupEnd {
			continue
		}
		if name := strings.TrimSpace(mailparse.DecodeHeaderValue(a.Name)); name != "" {
			return asciiLower(name)
		}
		return asciiLower(a.Mailbox + "@" + a.Host)
	}
	return ""
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// baseSubject extracts the base subject of a raw Subject value (RFC 5256,
// "Base Subject"): encoded-words decoded, white space runs made one space, then
// trailing "(fwd)", leading "Re:", "Fw:", "Fwd:" (each possibly after
// and with [blob]s), a leading [blob] that is not all there is, and a
// "[fwd: ...]" wrapper removed, repeatedly, until none is left.
func baseSubject(raw string) string {
	s := strings.Join(strings.Fields(mailparse.DecodeHeaderValue(raw)), " ")
	for {
		// (2) subj-trailer: "(fwd)" or white space at the end.
		for {
			t := strings.TrimRight(s, " ")
			if len(t) >= 5 && strings.EqualFold(t[len(t)-5:], "(fwd)") {
				s = t[:len(t)-5]
				continue
			}
			s = t
			break
		}
		// (3) and (4), until neither removes anything.
		for {
			t := strings.TrimLeft(s, " ")
			if rest, ok := cutLeader(t); ok {
				s = rest
				continue
			}
			if rest, ok := cutBlob(t); ok && strings.TrimSpace(rest) != "" {
				s = rest
				continue
			}
			s = t
			break
		}
		// (5) a "[fwd:" ... "]" wrapper.
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			continue
		}
		return s
	}
}

// cutBlob removes a leading subj-blob: "[" *BLOBCHAR "]" *WSP.
func cutBlob(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return s, false
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return s, false
	}
	return strings.TrimLeft(s[end+2:], " "), true
}

// cutLeader removes a leading subj-refwd after any subj-blobs:
// *subj-blob ("re" / "fw" / "fwd") *WSP [subj-blob] ":".
func cutLeader(s string) (string, bool) {
	t := s
	for {
		rest, ok := cutBlob(t)
		if !ok {
			break
		}
		t = rest
	}
	lower := strings.ToLower(t)
	switch {
	case strings.HasPrefix(lower, "fwd"):
		t = t[3:]
	case strings.HasPrefix(lower, "fw"), strings.HasPrefix(lower, "re"):
		t = t[2:]
	default:
		return s, false
	}
	t = strings.TrimLeft(t, " ")
	if rest, ok := cutBlob(t); ok {
		t = rest
	}
	if !strings.HasPrefix(t, ":") {
		return s, false
	}
	return t[1:], true
}
