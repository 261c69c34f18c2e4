package imapd

import (
	"errors"
	"strconv"
	"strings"

	"github.com/skrytka/skrytka/internal/imapwire"
	"github.com/skrytka/skrytka/internal/store"
)

type fetchKind uint8

const (
	fUID fetchKind = iota
	fFlags
	fInternalDate
	fSize
	fEnvelope
	fBody          // BODY (non-extensible structure)
	fBodyStructure // BODYSTRUCTURE
	fSection       // BODY[...] / BODY.PEEK[...] / RFC822 / RFC822.HEADER / RFC822.TEXT
	fBinary        // BINARY[...] / BINARY.PEEK[...]
	fBinarySize
	fModSeq
	fPreview // PREVIEW (RFC 8970)
)

// section is a BODY[section] specifier (RFC 9051 §6.4.5).
type section struct {
	part   []int
	spec   string // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
	fields []string
}

type fetchItem struct {
	kind    fetchKind
	peek    bool
	sec     section
	partial bool
	off, n  int64
	// label is what the response names the item, e.g. "BODY[HEADER]<0>"
	// or "RFC822.TEXT".
	label string
}

type fetchReq struct {
	items        []fetchItem
	changedSince store.ModSeq
	vanished     bool
}

func (r *fetchReq) has(k fetchKind) bool {
	for _, it := range r.items {
		if it.kind == k {
			return true
		}
	}
	return false
}

// cmdFetch: RFC 9051 §6.4.5, BINARY (RFC 3516), CHANGEDSINCE and VANISHED
// (RFC 7162 §3.1.4, §3.2.6).
func cmdFetch(c *conn, cmd *command) error {
	d := cmd.d
	cmd.noExpunge = !cmd.uid
	d.sp()
	set := d.seqSet()
	d.sp()
	var req fetchReq
	if d.peek() == '(' {
		d.list(false, func() { req.items = append(req.items, d.fetchAtt(false)...) })
	} else {
		req.items = d.fetchAtt(true)
	}
	if d.maybe(' ') {
		d.list(false, func() {
			switch strings.ToUpper(d.atom()) {
			case "CHANGEDSINCE":
				d.sp()
				req.changedSince = store.ModSeq(d.number64())
				if req.changedSince == 0 && d.err == nil {
					d.fail("CHANGEDSINCE needs a modseq above 0")
				}
			case "VANISHED":
				req.vanished = true
			default:
				d.fail("unknown FETCH modifier")
			}
		})
	}
	if err := d.end(); err != nil {
		return err
	}
	if req.vanished && (!cmd.uid || !c.qresync || req.changedSince == 0) {
		// RFC 7162 §3.2.6.
		return bad("", "VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE")
	}
	if req.changedSince > 0 {
		c.condstore = true
		if !req.has(fModSeq) {
			req.items = append(req.items, fetchItem{kind: fModSeq})
		}
	}
	if req.has(fModSeq) {
		c.condstore = true
	}
	if cmd.uid && !req.has(fUID) {
		req.items = append([]fetchItem{{kind: fUID}}, req.items...)
	}
	uids, err := c.resolve(cmd, set)
	if err != nil {
		return err
	}
	if req.vanished {
		if err := c.sendVanishedEarlier(set, req.changedSince); err != nil {
			return err
		}
	}
	if err := c.fetch(uids, &req); err != nil {
		return err
	}
	return c.ok(cmd, "", "FETCH completed")
}

// fetchAtt reads one fetch-att, or a macro when macros is set.
func (d *decoder) fetchAtt(macros bool) []fetchItem {
	name := strings.ToUpper(d.chars(func(c byte) bool { return isAtomChar(c) && c != '[' && c != '<' }, "fetch item"))
	if d.err != nil {
		return nil
	}
	one := func(k fetchKind) []fetchItem { return []fetchItem{{kind: k}} }
	switch name {
	case "ALL", "FAST", "FULL":
		if !macros {
			d.fail("macro inside a list")
			return nil
		}
		items := []fetchItem{{kind: fFlags}, {kind: fInternalDate}, {kind: fSize}}
		if name != "FAST" {
			items = append(items, fetchItem{kind: fEnvelope})
		}
		if name == "FULL" {
			items = append(items, fetchItem{kind: fBody})
		}
		return items
	case "UID":
		return one(fUID)
	case "FLAGS":
		return one(fFlags)
	case "INTERNALDATE":
		return one(fInternalDate)
	case "RFC822.SIZE":
		return one(fSize)
	case "ENVELOPE":
		return one(fEnvelope)
	case "BODYSTRUCTURE":
		return one(fBodyStructure)
	case "MODSEQ":
		return one(fModSeq)
	case "PREVIEW":
		// RFC 8970: an optional modifier list. LAZY lets a server
		// answer NIL for a preview it has not made yet; ours is made at
		// delivery, so it is always sent.
		if d.ahead(" (") {
			d.sp()
			d.list(false, func() {
				if m := strings.ToUpper(d.atom()); d.err == nil && m != "LAZY" {
					d.fail("unknown PREVIEW modifier %s", m)
				}
			})
		}
		return one(fPreview)
	case "RFC822":
		return []fetchItem{{kind: fSection, label: "RFC822"}}
	case "RFC822.HEADER":
		return []fetchItem{{kind: fSection, peek: true, sec: section{spec: "HEADER"}, label: "RFC822.HEADER"}}
	case "RFC822.TEXT":
		return []fetchItem{{kind: fSection, sec: section{spec: "TEXT"}, label: "RFC822.TEXT"}}
	case "BODY", "BODY.PEEK":
		if d.peek() != '[' {
			if name == "BODY.PEEK" {
				d.fail("BODY.PEEK needs a section")
			}
			return one(fBody)
		}
		it := fetchItem{kind: fSection, peek: name == "BODY.PEEK"}
		it.sec = d.section(false)
		d.partial(&it)
		it.label = "BODY[" + it.sec.String() + "]"
		if it.partial {
			it.label += "<" + strconv.FormatInt(it.off, 10) + ">"
		}
		return []fetchItem{it}
	case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		kind := fBinary
		if name == "BINARY.SIZE" {
			kind = fBinarySize
		}
		it := fetchItem{kind: kind, peek: name != "BINARY"}
		it.sec = d.section(true)
		if kind == fBinary {
			d.partial(&it)
		}
		it.label = strings.TrimSuffix(name, ".PEEK") + "[" + it.sec.String() + "]"
		if it.partial {
			it.label += "<" + strconv.FormatInt(it.off, 10) + ">"
		}
		return []fetchItem{it}
	}
	d.fail("unknown FETCH item %s", name)
	return nil
}

// section reads "[" section-spec "]"; binary allows only part numbers.
func (d *decoder) section(binary bool) section {
	var s section
	d.expect('[')
	for d.err == nil {
		c := d.peek()
		if c < '0' || c > '9' {
			break
		}
		n := d.nzNumber()
		if n > 1000 {
			d.fail("part number too large")
		}
		s.part = append(s.part, int(n))
		if len(s.part) > 64 {
			d.fail("section too deep")
		}
		if !d.maybe('.') {
			break
		}
	}
	if d.err == nil && d.peek() != ']' {
		if binary {
			d.fail("BINARY takes part numbers only")
			return s
		}
		s.spec = strings.ToUpper(d.chars(func(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '.' }, "section"))
		switch s.spec {
		case "HEADER", "TEXT":
		case "MIME":
			if len(s.part) == 0 {
				d.fail("MIME needs a part number")
			}
		case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
			d.sp()
			d.list(false, func() { s.fields = append(s.fields, d.astring()) })
		default:
			d.fail("bad section %s", s.spec)
		}
	}
	d.expect(']')
	return s
}

func (s section) String() string {
	var sb strings.Builder
	for i, p := range s.part {
		if i > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(strconv.Itoa(p))
	}
	if s.spec != "" {
		if len(s.part) > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(s.spec)
	}
	if s.fields != nil {
		sb.WriteString(" (")
		for i, f := range s.fields {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.Write(appendAStringName(nil, f, false))
		}
		sb.WriteByte(')')
	}
	return sb.String()
}

// partial reads an optional "<offset.count>".
func (d *decoder) partial(it *fetchItem) {
	if !d.maybe('<') {
		return
	}
	it.partial = true
	it.off = int64(d.number())
	d.expect('.')
	it.n = int64(d.nzNumber())
	d.expect('>')
}

// fetch writes the FETCH responses for uids in batches: each batch is read
// from the store, then written; bodies are streamed from the store.
func (c *conn) fetch(uids store.UIDSet, req *fetchReq) error {
	s := c.sel
	needParsed := false
	setSeen := false
	for _, it := range req.items {
		switch it.kind {
		case fEnvelope, fBody, fBodyStructure, fPreview:
			needParsed = true
		case fSection, fBinary, fBinarySize:
			if len(it.sec.part) > 0 || it.sec.spec != "" || it.kind != fSection {
				needParsed = true
			}
			if !it.peek && !s.readOnly {
				setSeen = true
			}
		}
	}
	if !needParsed && !setSeen && req.changedSince == 0 && req.bodiesOnly() {
		return c.fetchBodies(uids, req)
	}
	st := c.srv.opts.Store
	batch := fetchBatch
	if !needParsed && !setSeen {
		// Flags and sizes only: a few dozen bytes per message.
		batch = fetchBatchSmall
	}
	// One buffer for every batch of the command (not kept afterwards:
	// an idle connection holds no copy of a mailbox).
	msgs := make([]store.Message, 0, min(batch, setCount(uids)))
	var seenNow map[store.UID]bool
	for _, chunk := range splitSet(uids, batch) {
		clear(msgs) // drop the last batch's parsed metadata
		msgs = msgs[:0]
		err := st.Messages(c.ctx, c.acct.ID, s.mbox.ID, chunk, store.FetchOptions{Parsed: needParsed}, func(m *store.Message) error {
			if req.changedSince > 0 && m.ModSeq <= req.changedSince {
				return nil
			}
			cp := *m
			cp.Flags = copyFlags(m.Flags)
			msgs = append(msgs, cp)
			return nil
		})
		if err != nil {
			return err
		}
		clear(seenNow)
		if setSeen {
			var unseen []store.UID
			for _, m := range msgs {
				if m.Flags.Sys&store.FlagSeen == 0 {
					unseen = append(unseen, m.UID)
				}
			}
			if len(unseen) > 0 {
				res, err := st.SetFlags(c.ctx, c.acct.ID, s.mbox.ID, store.UIDSetOf(unseen...), store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0)
				if err != nil {
					return err
				}
				if s.reported == nil {
					s.reported = map[store.UID]store.ModSeq{}
				}
				if seenNow == nil {
					seenNow = make(map[store.UID]bool, len(res.Updated))
				}
				byUID := make(map[store.UID]store.FlagUpdate, len(res.Updated))
				for _, u := range res.Updated {
					byUID[u.UID] = u
					s.reported[u.UID] = u.ModSeq
				}
				for i := range msgs {
					if u, ok := byUID[msgs[i].UID]; ok {
						msgs[i].Flags, msgs[i].ModSeq = copyFlags(u.Flags), u.ModSeq
						seenNow[u.UID] = true
					}
				}
			}
		}
		for i := range msgs {
			m := &msgs[i]
			seq := s.t.seq(m.UID)
			if seq == 0 {
				continue
			}
			if err := c.fetchOne(seq, m, req, seenNow[m.UID], nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// bodiesOnly reports whether the request asks for nothing but UID and
// whole-message sections (BODY.PEEK[], RFC822 ...): what a client
// downloading messages sends.
func (r *fetchReq) bodiesOnly() bool {
	for _, it := range r.items {
		switch {
		case it.kind == fUID:
		case it.kind == fSection && len(it.sec.part) == 0 && it.sec.spec == "":
		default:
			return false
		}
	}
	return true
}

// fetchBodies answers a FETCH of whole bodies (bodiesOnly, no \Seen to
// set) without reading message metadata: opening each message is the
// only store call, and one expunged meanwhile gets no response, as in
// fetch.
func (c *conn) fetchBodies(uids store.UIDSet, req *fetchReq) error {
	s := c.sel
	st := c.srv.opts.Store
	var err error
	s.t.each(uids, func(u store.UID) bool {
		seq := s.t.seq(u)
		if seq == 0 {
			return true
		}
		mr, oerr := st.OpenMessage(c.ctx, c.acct.ID, s.mbox.ID, u)
		switch {
		case errors.Is(oerr, store.ErrNotFound):
			return true
		case oerr != nil:
			mr = nil // bodySource tries again, logs and answers NIL
		}
		m := store.Message{Mailbox: s.mbox.ID, UID: u}
		if mr != nil {
			m.Size = mr.Size()
		}
		err = c.fetchOne(seq, &m, req, false, mr)
		return err == nil
	})
	return err
}

// fetchOne writes one "* n FETCH (...)" response. mr, if not nil, is the
// message already opened; fetchOne closes it.
func (c *conn) fetchOne(seq uint32, m *store.Message, req *fetchReq, flagsChanged bool, mr store.MessageReader) error {
	s := c.sel
	var body *bodySource
	if mr != nil {
		body = &bodySource{c: c, m: m, mr: mr}
	}
	defer func() {
		if body != nil {
			body.close()
		}
	}()
	for i := range req.items {
		if k := req.items[i].kind; k == fBinary || k == fBinarySize {
			if err := checkBinary(m, &req.items[i]); err != nil {
				return err
			}
		}
	}
	b := append(c.out[:0], "* "...)
	b = appendUint(b, uint64(seq))
	b = append(b, " FETCH ("...)
	first := true
	sep := func() {
		if !first {
			b = append(b, ' ')
		}
		first = false
	}
	flagsSent := false
	for i := range req.items {
		it := &req.items[i]
		sep()
		switch it.kind {
		case fUID:
			b = append(b, "UID "...)
			b = appendUint(b, uint64(m.UID))
		case fFlags:
			b = append(b, "FLAGS "...)
			b = appendFlags(b, m.Flags, !c.rev2 && s.isRecent(m.UID))
			flagsSent = true
		case fInternalDate:
			b = append(b, "INTERNALDATE \""...)
			b = m.InternalDate.AppendFormat(b, "02-Jan-2006 15:04:05 -0700")
			b = append(b, '"')
		case fSize:
			b = append(b, "RFC822.SIZE "...)
			b = strconv.AppendInt(b, m.Size, 10)
		case fModSeq:
			b = append(b, "MODSEQ ("...)
			b = appendUint(b, uint64(m.ModSeq))
			b = append(b, ')')
		case fEnvelope:
			b = append(b, "ENVELOPE "...)
			b = c.appendEnvelope(b, m)
		case fPreview:
			// The text made at delivery (mailparse: at most 200
			// characters of the first text part, white space folded;
			// "" for a message without text). Non-ASCII text goes as a
			// literal unless UTF-8 is enabled.
			b = append(b, "PREVIEW "...)
			if m.Parsed == nil {
				b = imapwire.AppendNil(b)
			} else {
				b = imapwire.AppendString(b, m.Parsed.Preview, c.utf8)
			}
		case fBody:
			b = append(b, "BODY "...)
			b = c.appendStructure(b, m, false)
		case fBodyStructure:
			b = append(b, "BODYSTRUCTURE "...)
			b = c.appendStructure(b, m, true)
		case fSection, fBinary, fBinarySize:
			if body == nil {
				body = &bodySource{c: c, m: m}
			}
			var err error
			// The response so far goes out; the literal is streamed.
			b = append(b, it.label...)
			b = append(b, ' ')
			c.bw.Write(b)
			b = b[:0]
			if err = body.write(it); err != nil {
				c.out = b
				return err
			}
		}
	}
	if flagsChanged && !flagsSent {
		// RFC 9051 §6.4.5: an implicitly set \Seen is reported.
		sep()
		b = append(b, "FLAGS "...)
		b = appendFlags(b, m.Flags, !c.rev2 && s.isRecent(m.UID))
	}
	b = append(b, ')')
	c.out = b
	c.send(b)
	return nil
}
