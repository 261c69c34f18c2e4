package imapd

import (
	"errors"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skrytka/skrytka/internal/imapwire"
	"github.com/skrytka/skrytka/internal/mailparse"
	"github.com/skrytka/skrytka/internal/store"
)

// searchKey is one node of a parsed SEARCH program (RFC 9051 §6.4.4).
type searchKey struct {
	op   string
	kids []*searchKey
	str  string // needle, lower-cased
	hdr  string // HEADER field name
	n    int64
	date time.Time
	set  store.UIDSet // SET (sequence set, UID or $), resolved to UIDs
	flag store.SysFlags
	// hits holds the UIDs matched by a BODY/TEXT key (from SearchText).
	hits []store.UID
}

type searchProg struct {
	root       *searchKey
	needParsed bool
	needHeader bool // a HEADER key reads the raw header
	text       []*searchKey
	modseq     bool
	keys       int
}

// cmdSearch: RFC 9051 §6.4.4, ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
// MODSEQ (RFC 7162 §3.1.5).
func cmdSearch(c *conn, cmd *command) error {
	d := cmd.d
	cmd.noExpunge = !cmd.uid
	var ret []string
	esearch := c.rev2
	d.sp()
	// The first word may be RETURN, CHARSET or the first search key.
	var first string
	if c := d.peek(); c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
		first = strings.ToUpper(d.atom())
	}
	if first == "RETURN" {
		d.sp()
		esearch = true
		d.list(true, func() {
			o := strings.ToUpper(d.atom())
			switch o {
			case "MIN", "MAX", "ALL", "COUNT", "SAVE":
				ret = append(ret, o)
			default:
				d.fail("unknown SEARCH return option")
			}
		})
		d.sp()
		first = ""
		if c := d.peek(); c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			first = strings.ToUpper(d.atom())
		}
	}
	if first == "CHARSET" {
		d.sp()
		if err := d.searchCharset(); err != nil {
			return err
		}
		first = ""
	}
	prog := c.searchKeys(d, first)
	if err := d.end(); err != nil {
		return err
	}
	if esearch && len(ret) == 0 {
		ret = []string{"ALL"}
	}
	uids, maxMod, err := c.runSearch(prog)
	if err != nil {
		return err
	}
	s := c.sel
	if slices.Contains(ret, "SAVE") {
		// RFC 5182 §2.4: with MIN/MAX (and no ALL/COUNT) only those are
		// saved.
		saved := uids
		onlyMinMax := !slices.Contains(ret, "ALL") && !slices.Contains(ret, "COUNT") && (slices.Contains(ret, "MIN") || slices.Contains(ret, "MAX"))
		if onlyMinMax && len(uids) > 0 {
			saved = nil
			if slices.Contains(ret, "MIN") {
				saved = append(saved, uids[0])
			}
			if slices.Contains(ret, "MAX") && uids[len(uids)-1] != uids[0] {
				saved = append(saved, uids[len(uids)-1])
			}
		}
		s.searchRes = store.UIDSetOf(saved...)
	}
	nums := make([]store.UID, len(uids))
	for i, u := range uids {
		if cmd.uid {
			nums[i] = u
		} else {
			nums[i] = store.UID(s.t.seq(u))
		}
	}
	if !esearch {
		b := append(c.out[:0], "* SEARCH"...)
		for _, n := range nums {
			b = append(b, ' ')
			b = appendUint(b, uint64(n))
		}
		if prog.modseq && len(nums) > 0 {
			b = append(b, " (MODSEQ "...)
			b = appendUint(b, uint64(maxMod))
			b = append(b, ')')
		}
		c.out = b
		c.send(b)
		return c.ok(cmd, "", "SEARCH completed")
	}
	if len(ret) == 1 && ret[0] == "SAVE" {
		return c.ok(cmd, "", "SEARCH completed, result saved")
	}
	b := append(c.out[:0], "* ESEARCH (TAG "...)
	b = imapwire.AppendQuoted(b, cmd.tag)
	b = append(b, ')')
	if cmd.uid {
		b = append(b, " UID"...)
	}
	if len(nums) > 0 {
		for _, o := range ret {
			switch o {
			case "MIN":
				b = append(b, " MIN "...)
				b = appendUint(b, uint64(nums[0]))
			case "MAX":
				b = append(b, " MAX "...)
				b = appendUint(b, uint64(nums[len(nums)-1]))
			case "ALL":
				b = append(b, " ALL "...)
				b = appendUIDList(b, nums)
			}
		}
	}
	if slices.Contains(ret, "COUNT") {
		b = append(b, " COUNT "...)
		b = strconv.AppendInt(b, int64(len(nums)), 10)
	}
	if prog.modseq && len(nums) > 0 {
		b = append(b, " MODSEQ "...)
		b = appendUint(b, uint64(maxMod))
	}
	c.out = b
	c.send(b)
	return c.ok(cmd, "", "SEARCH completed")
}

// searchCharset reads the charset of a SEARCH or SORT and the space
// after it. For one we do not support it ends the command and returns
// NO [BADCHARSET].
func (d *decoder) searchCharset() error {
	cs := strings.ToUpper(d.astring())
	d.sp()
	if d.err == nil && cs != "UTF-8" && cs != "US-ASCII" {
		d.discardLine()
		d.atLineEnd = true
		return no("BADCHARSET (UTF-8 US-ASCII)", "unsupported charset")
	}
	return nil
}

// searchKeys reads one or more search keys separated by spaces (the
// first one's name already read when first is not ""), ANDed.
func (c *conn) searchKeys(d *decoder, first string) *searchProg {
	prog := &searchProg{}
	var keys []*searchKey
	for d.err == nil {
		keys = append(keys, c.searchKey(d, prog, 0, first))
		first = ""
		if !d.maybe(' ') {
			break
		}
	}
	prog.root = &searchKey{op: "AND", kids: keys}
	return prog
}

// searchKey parses one search-key.
func (c *conn) searchKey(d *decoder, p *searchProg, depth int, name string) *searchKey {
	p.keys++
	if p.keys > maxSearchKeys || depth > c.srv.opts.MaxNesting*4 {
		d.fail("search program too complex")
		return nil
	}
	s := c.sel
	if name != "" {
		return c.namedKey(d, p, depth, name)
	}
	ch := d.peek()
	if d.err != nil {
		return nil
	}
	if ch == '(' {
		k := &searchKey{op: "AND"}
		d.list(false, func() {
			for d.err == nil {
				k.kids = append(k.kids, c.searchKey(d, p, depth+1, ""))
				if d.peek() != ' ' {
					return
				}
				d.sp()
			}
		})
		return k
	}
	if isSeqSetStart(ch) {
		set := d.seqSet()
		k := &searchKey{op: "SET"}
		if set.dollar {
			k.set = s.searchRes
		} else {
			// Out-of-range sequence numbers simply match nothing.
			for _, r := range set.ranges {
				lo, hi := r.normalise(s.t.count())
				if lo == 0 {
					lo = 1
				}
				if hi > s.t.count() {
					hi = s.t.count()
				}
				if lo <= hi {
					k.set = s.t.appendSeqRange(k.set, lo, hi)
				}
			}
			k.set = normaliseSet(k.set)
		}
		return k
	}
	return c.namedKey(d, p, depth, strings.ToUpper(d.atom()))
}

// namedKey parses the rest of a search key whose name was read.
func (c *conn) namedKey(d *decoder, p *searchProg, depth int, name string) *searchKey {
	s := c.sel
	str := func() string { d.sp(); return strings.ToLower(d.astring()) }
	flagKey := func(f store.SysFlags, neg bool) *searchKey {
		k := &searchKey{op: "FLAG", flag: f}
		if neg {
			return &searchKey{op: "NOT", kids: []*searchKey{k}}
		}
		return k
	}
	switch name {
	case "ALL":
		return &searchKey{op: "ALL"}
	case "ANSWERED", "UNANSWERED":
		return flagKey(store.FlagAnswered, name[0] == 'U')
	case "DELETED", "UNDELETED":
		return flagKey(store.FlagDeleted, name[0] == 'U')
	case "DRAFT", "UNDRAFT":
		return flagKey(store.FlagDraft, name[0] == 'U')
	case "FLAGGED", "UNFLAGGED":
		return flagKey(store.FlagFlagged, name[0] == 'U')
	case "SEEN", "UNSEEN":
		return flagKey(store.FlagSeen, name[0] == 'U')
	case "RECENT":
		return &searchKey{op: "RECENT"}
	case "OLD":
		return &searchKey{op: "NOT", kids: []*searchKey{{op: "RECENT"}}}
	case "NEW":
		return &searchKey{op: "AND", kids: []*searchKey{{op: "RECENT"}, flagKey(store.FlagSeen, true)}}
	case "KEYWORD", "UNKEYWORD":
		d.sp()
		k := &searchKey{op: "KEYWORD", str: strings.ToLower(d.flagName())}
		if name == "UNKEYWORD" {
			return &searchKey{op: "NOT", kids: []*searchKey{k}}
		}
		return k
	case "BCC", "CC", "FROM", "TO", "SUBJECT":
		p.needParsed = true
		return &searchKey{op: name, str: str()}
	case "HEADER":
		p.needParsed, p.needHeader = true, true
		d.sp()
		h := d.astring()
		return &searchKey{op: "HEADER", hdr: h, str: str()}
	case "BODY", "TEXT":
		k := &searchKey{op: name, str: str()}
		p.text = append(p.text, k)
		return k
	case "LARGER", "SMALLER":
		d.sp()
		return &searchKey{op: name, n: int64(d.number64())}
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		d.sp()
		if strings.HasPrefix(name, "SENT") {
			p.needParsed = true
		}
		return &searchKey{op: name, date: d.date()}
	case "UID":
		d.sp()
		set := d.seqSet()
		k := &searchKey{op: "SET"}
		if set.dollar {
			k.set = s.searchRes
		} else {
			k.set = s.t.uidsToSet(set)
		}
		return k
	case "NOT":
		d.sp()
		return &searchKey{op: "NOT", kids: []*searchKey{c.searchKey(d, p, depth+1, "")}}
	case "OR":
		d.sp()
		a := c.searchKey(d, p, depth+1, "")
		d.sp()
		b := c.searchKey(d, p, depth+1, "")
		return &searchKey{op: "OR", kids: []*searchKey{a, b}}
	case "MODSEQ":
		// MODSEQ [entry-name entry-type-req] mod-sequence-valzer
		d.sp()
		if d.peek() == '"' {
			d.quoted()
			d.sp()
			d.atom()
			d.sp()
		}
		p.modseq = true
		c.condstore = true
		return &searchKey{op: "MODSEQ", n: int64(d.number64())}
	}
	if d.err == nil {
		d.fail("unknown search key %s", name)
	}
	return nil
}

// runSearch evaluates the program over the session's messages and returns
// matching UIDs in order and the highest modseq among them.
func (c *conn) runSearch(p *searchProg) ([]store.UID, store.ModSeq, error) {
	s := c.sel
	st := c.srv.opts.Store
	max := s.t.max()
	if max == 0 {
		return nil, 0, nil
	}
	for _, k := range p.text {
		scope := store.TextBody
		if k.op == "TEXT" {
			scope = store.TextAll
		}
		hits, err := st.SearchText(c.ctx, c.acct.ID, s.mbox.ID, nil, scope, k.str)
		if err != nil {
			return nil, 0, err
		}
		k.hits = hits
	}
	all := s.t.appendUIDRange(nil, 1, max)
	// Keys that must hold (top-level AND) and that the text index answers
	// exactly or as a superset narrow the messages to read: BODY/TEXT
	// exactly; FROM/TO/CC/BCC/SUBJECT through the header text when the
	// needle cannot straddle the way our address strings are built.
	var restrict []store.UID
	restricted := false
	narrow := func(hits []store.UID) {
		if !restricted {
			restrict, restricted = hits, true
			return
		}
		restrict = intersectSorted(restrict, hits)
	}
	for _, k := range p.root.kids {
		switch k.op {
		case "BODY", "TEXT":
			narrow(k.hits)
		case "FROM", "TO", "CC", "BCC", "SUBJECT":
			if !prefilterSafe(k.str) {
				continue
			}
			hits, err := st.SearchText(c.ctx, c.acct.ID, s.mbox.ID, restrictOrNil(restrict, restricted), store.TextHeader, k.str)
			if err != nil {
				return nil, 0, err
			}
			narrow(hits)
		}
	}
	if restricted {
		var set store.UIDSet
		for _, r := range store.UIDSetOf(restrict...) {
			set = s.t.appendUIDRange(set, r.Start, r.Stop)
		}
		all = set
	}
	var out []store.UID
	var maxMod store.ModSeq
	for _, chunk := range splitSet(all, fetchBatch) {
		var msgs []store.Message
		err := st.Messages(c.ctx, c.acct.ID, s.mbox.ID, chunk, store.FetchOptions{Parsed: p.needParsed}, func(m *store.Message) error {
			cp := *m
			cp.Flags = copyFlags(m.Flags)
			msgs = append(msgs, cp)
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
		for i := range msgs {
			m := &msgs[i]
			ev := evalCtx{c: c, m: m}
			ok := ev.eval(p.root)
			if ev.mr != nil {
				ev.mr.Close()
			}
			if ok {
				out = append(out, m.UID)
				if m.ModSeq > maxMod {
					maxMod = m.ModSeq
				}
			}
		}
	}
	return out, maxMod, nil
}

type evalCtx struct {
	c      *conn
	m      *store.Message
	mr     store.MessageReader
	header []byte
}

func (e *evalCtx) eval(k *searchKey) bool {
	m := e.m
	switch k.op {
	case "ALL":
		return true
	case "AND":
		for _, x := range k.kids {
			if !e.eval(x) {
				return false
			}
		}
		return true
	case "OR":
		return e.eval(k.kids[0]) || e.eval(k.kids[1])
	case "NOT":
		return !e.eval(k.kids[0])
	case "SET":
		return setContains(k.set, m.UID)
	case "FLAG":
		return m.Flags.Sys&k.flag != 0
	case "KEYWORD":
		for _, kw := range m.Flags.Keywords {
			if strings.EqualFold(kw, k.str) {
				return true
			}
		}
		return false
	case "RECENT":
		return !e.c.rev2 && e.c.sel.isRecent(m.UID)
	case "LARGER":
		return m.Size > k.n
	case "SMALLER":
		return m.Size < k.n
	case "MODSEQ":
		return int64(m.ModSeq) >= k.n
	case "BEFORE", "ON", "SINCE":
		return cmpDate(m.InternalDate, k.date, k.op)
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		t := m.InternalDate
		if m.Parsed != nil && !m.Parsed.Date.IsZero() {
			t = m.Parsed.Date
		}
		return cmpDate(t, k.date, strings.TrimPrefix(k.op, "SENT"))
	case "BODY", "TEXT":
		_, found := slices.BinarySearch(k.hits, m.UID)
		return found
	case "SUBJECT":
		if m.Parsed == nil {
			return false
		}
		return containsFold(mailparse.DecodeHeaderValue(m.Parsed.Envelope.Subject), k.str)
	case "FROM", "TO", "CC", "BCC":
		if m.Parsed == nil {
			return false
		}
		env := &m.Parsed.Envelope
		list := map[string][]mailparse.Address{"FROM": env.From, "TO": env.To, "CC": env.Cc, "BCC": env.Bcc}[k.op]
		return addressesContain(list, k.str)
	case "HEADER":
		return e.headerContains(k.hdr, k.str)
	}
	return false
}

func containsFold(hay, lowerNeedle string) bool {
	return strings.Contains(strings.ToLower(hay), lowerNeedle)
}

func addressesContain(list []mailparse.Address, needle string) bool {
	for _, a := range list {
		s := mailparse.DecodeHeaderValue(a.Name) + " <" + a.Mailbox + "@" + a.Host + ">"
		if containsFold(s, needle) {
			return true
		}
	}
	return false
}

// cmpDate compares dates ignoring time and zone (RFC 9051 §6.4.4).
func cmpDate(t, day time.Time, op string) bool {
	y, mo, d := t.Date()
	td := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	switch op {
	case "BEFORE":
		return td.Before(day)
	case "ON":
		return td.Equal(day)
	}
	return !td.Before(day)
}

func (e *evalCtx) headerContains(field, needle string) bool {
	if e.header == nil {
		m := e.m
		if m.Parsed == nil {
			return false
		}
		c := e.c
		mr, err := c.srv.opts.Store.OpenMessage(c.ctx, c.acct.ID, c.sel.mbox.ID, m.UID)
		if err != nil {
			return false
		}
		e.mr = mr
		n := m.Parsed.Root.BodyStart
		if n > maxHeaderBytes {
			n = maxHeaderBytes
		}
		buf := make([]byte, n)
		if _, err := mr.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
			return false
		}
		e.header = buf
	}
	got := imapwire.FilterHeader(e.header, []string{field}, false)
	if len(got) <= 2 {
		return false
	}
	if needle == "" {
		return true
	}
	for _, line := range strings.Split(string(got), "\r\n") {
		if i := strings.IndexByte(line, ':'); i >= 0 {
			line = line[i+1:]
		}
		if containsFold(mailparse.DecodeHeaderValue(strings.TrimSpace(line)), needle) {
			return true
		}
	}
	// Folded values: match on the whole unfolded text too.
	all := strings.ReplaceAll(string(got), "\r\n", "")
	return containsFold(mailparse.DecodeHeaderValue(all), needle)
}

// setContains is a binary search in a normalised set, so a key with
// thousands of ranges costs log(ranges) per message.
func setContains(s store.UIDSet, u store.UID) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].Stop >= u })
	return i < len(s) && s[i].Start <= u
}

// prefilterSafe reports whether a FROM/TO/CC/BCC/SUBJECT needle found by
// our matching is sure to occur in the store's header text too: it has
// no space, quote, backslash, angle bracket, parenthesis or comma, which
// differ between the raw header and the strings we match against.
func prefilterSafe(needle string) bool {
	return needle != "" && !strings.ContainsAny(needle, " \t\"\\<>(),")
}

func restrictOrNil(r []store.UID, ok bool) []store.UID {
	if !ok {
		return nil
	}
	if r == nil {
		return []store.UID{}
	}
	return r
}

// intersectSorted intersects two ascending UID lists.
func intersectSorted(a, b []store.UID) []store.UID {
	out := []store.UID{}
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
