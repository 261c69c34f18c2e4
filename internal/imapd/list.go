package imapd

import (
	"sort"
	"strings"

	"github.com/skrytka/skrytka/internal/imapwire"
	"github.com/skrytka/skrytka/internal/store"
)

// listOpts holds LIST-EXTENDED selection and return options (RFC 5258,
// RFC 5819, RFC 6154).
type listOpts struct {
	extended bool // any selection or return option given

	selSubscribed bool
	selRecursive  bool
	selSpecialUse bool

	retSubscribed bool
	retChildren   bool
	retSpecialUse bool
	status        []string // LIST-STATUS items
}

// cmdList: RFC 9051 §6.3.9, RFC 5258.
func cmdList(c *conn, cmd *command) error {
	d := cmd.d
	var o listOpts
	d.sp()
	if d.peek() == '(' {
		o.extended = true
		d.list(true, func() {
			switch strings.ToUpper(d.atom()) {
			case "SUBSCRIBED":
				o.selSubscribed = true
			case "REMOTE":
			case "RECURSIVEMATCH":
				o.selRecursive = true
			case "SPECIAL-USE":
				o.selSpecialUse = true
			default:
				// RFC 5258 §3.1: unknown selection options are an error.
				d.fail("unknown LIST selection option")
			}
		})
		d.sp()
	}
	ref := d.astring()
	d.sp()
	var pats []string
	if d.peek() == '(' {
		o.extended = true
		d.list(false, func() { pats = append(pats, d.listMailbox()) })
	} else {
		pats = append(pats, d.listMailbox())
	}
	if d.maybe(' ') {
		if strings.ToUpper(d.atom()) != "RETURN" {
			d.fail("expected RETURN")
		}
		d.sp()
		o.extended = true
		d.list(true, func() {
			switch strings.ToUpper(d.atom()) {
			case "SUBSCRIBED":
				o.retSubscribed = true
			case "CHILDREN":
				o.retChildren = true
			case "SPECIAL-USE":
				o.retSpecialUse = true
			case "STATUS":
				d.sp()
				o.status = d.statusItems()
			default:
				// RFC 5258 §3.2: unknown return options are ignored? No:
				// they are an error unless an extension defines them.
				d.fail("unknown LIST return option")
			}
		})
	}
	if err := d.end(); err != nil {
		return err
	}
	if o.selRecursive && !o.selSubscribed {
		return bad("", "RECURSIVEMATCH needs another selection option")
	}
	if len(pats) == 1 && pats[0] == "" && !o.extended {
		// RFC 9051 §6.3.9: the hierarchy delimiter and root.
		c.sendString(`* LIST (\Noselect) "/" ""`)
		return c.ok(cmd, "", "LIST completed")
	}
	refName, err := c.decodeMailbox(ref)
	if ref == "" {
		refName, err = "", nil
	}
	if err != nil {
		return err
	}
	var patterns []string
	for _, p := range pats {
		dp, err := c.decodeMailbox(p)
		if err != nil {
			return err
		}
		if dp == "" {
			continue
		}
		pat := simplifyPattern(canonicalName(refName + dp))
		if len(pat) > 2*store.MaxMailboxNameBytes {
			return bad("", "LIST pattern too long")
		}
		patterns = append(patterns, pat)
	}
	return c.list(cmd, "LIST", patterns, o)
}

// cmdLsub: RFC 3501 §6.3.9 (deprecated in rev2, still answered).
func cmdLsub(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	ref := d.astring()
	d.sp()
	pat := d.listMailbox()
	if err := d.end(); err != nil {
		return err
	}
	refName, err := c.decodeMailbox(ref)
	if ref == "" {
		refName, err = "", nil
	}
	if err != nil {
		return err
	}
	dp, err := c.decodeMailbox(pat)
	if err != nil {
		return err
	}
	p := simplifyPattern(canonicalName(refName + dp))
	if len(p) > 2*store.MaxMailboxNameBytes {
		return bad("", "LSUB pattern too long")
	}
	return c.list(cmd, "LSUB", []string{p}, listOpts{selSubscribed: true})
}

type listEntry struct {
	name       string
	exists     bool
	mbox       store.Mailbox
	subscribed bool
	children   bool
	subChild   bool // has a subscribed descendant (CHILDINFO)
}

func (c *conn) list(cmd *command, verb string, patterns []string, o listOpts) error {
	st := c.srv.opts.Store
	boxes, err := st.Mailboxes(c.ctx, c.acct.ID)
	if err != nil {
		return err
	}
	entries := map[string]*listEntry{}
	get := func(name string) *listEntry {
		e := entries[name]
		if e == nil {
			e = &listEntry{name: name}
			entries[name] = e
		}
		return e
	}
	for _, mb := range boxes {
		e := get(mb.Name)
		e.exists, e.mbox = true, mb
	}
	needSubs := o.selSubscribed || o.retSubscribed
	if needSubs {
		subs, err := st.Subscriptions(c.ctx, c.acct.ID)
		if err != nil {
			return err
		}
		for _, s := range subs {
			get(canonicalName(s)).subscribed = true
		}
	}
	// Parents: \HasChildren and CHILDINFO.
	for _, e := range entries {
		if !e.exists && !e.subscribed {
			continue
		}
		for p := parentName(e.name); p != ""; p = parentName(p) {
			pe := entries[p]
			if pe == nil {
				if !o.selSubscribed {
					continue
				}
				pe = get(p)
			}
			if e.exists {
				pe.children = true
			}
			if e.subscribed {
				pe.subChild = true
			}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var m matcher
	for _, name := range names {
		e := entries[name]
		if !matchAny(&m, patterns, name) {
			continue
		}
		var childInfo bool
		switch {
		case o.selSubscribed && !e.subscribed:
			if !(o.selRecursive && e.subChild) {
				continue
			}
			childInfo = true
		case !o.selSubscribed && !e.exists:
			continue
		}
		if o.selSubscribed && o.selRecursive && e.subChild && e.subscribed {
			childInfo = true
		}
		if o.selSpecialUse && (!e.exists || e.mbox.SpecialUse == store.SpecialNone) {
			continue
		}
		c.sendListEntry(verb, e, o, childInfo)
		if len(o.status) > 0 && e.exists && !e.mbox.NoSelect {
			// RFC 5819: STATUS follows its LIST line. A failure for one
			// mailbox is skipped rather than failing the LIST.
			if mb, err := st.MailboxByID(c.ctx, c.acct.ID, e.mbox.ID); err == nil {
				c.sendStatus(mb, o.status) // an error is skipped, as above
			}
		}
	}
	return c.ok(cmd, "", verb+" completed")
}

func (c *conn) sendListEntry(verb string, e *listEntry, o listOpts, childInfo bool) {
	b := append(c.out[:0], "* "...)
	b = append(b, verb...)
	b = append(b, " ("...)
	var attrs []string
	if !e.exists {
		if verb == "LIST" && (o.extended || c.rev2) {
			attrs = append(attrs, `\NonExistent`)
		} else {
			attrs = append(attrs, `\Noselect`)
		}
	} else {
		if e.mbox.NoSelect {
			attrs = append(attrs, `\Noselect`)
		}
		if verb == "LIST" {
			if e.children {
				attrs = append(attrs, `\HasChildren`)
			} else {
				attrs = append(attrs, `\HasNoChildren`)
			}
		}
		if e.mbox.SpecialUse != store.SpecialNone && verb == "LIST" {
			attrs = append(attrs, string(e.mbox.SpecialUse))
		}
	}
	if e.subscribed && verb == "LIST" && (o.retSubscribed || o.selSubscribed) {
		attrs = append(attrs, `\Subscribed`)
	}
	b = append(b, strings.Join(attrs, " ")...)
	b = append(b, `) "/" `...)
	b = imapwire.AppendAString(b, c.wireName(e.name), c.utf8)
	if childInfo {
		b = append(b, ` ("CHILDINFO" ("SUBSCRIBED"))`...)
	}
	c.out = b
	c.send(b)
}

func parentName(name string) string {
	i := strings.LastIndex(name, store.Separator)
	if i <= 0 {
		return ""
	}
	return name[:i]
}

func matchAny(m *matcher, patterns []string, name string) bool {
	for _, p := range patterns {
		if m.match(p, name) {
			return true
		}
	}
	return false
}

// simplifyPattern collapses runs of wildcards: a run holding "*" matches
// what "*" alone does, and "%%" what "%" does. This bounds the matcher's
// work for hostile patterns like "*%*%*%...".
func simplifyPattern(p string) string {
	var b []byte
	for i := 0; i < len(p); {
		c := p[i]
		if c != '*' && c != '%' {
			b = append(b, c)
			i++
			continue
		}
		star := false
		for i < len(p) && (p[i] == '*' || p[i] == '%') {
			star = star || p[i] == '*'
			i++
		}
		if star {
			b = append(b, '*')
		} else {
			b = append(b, '%')
		}
	}
	return string(b)
}

// matcher matches LIST patterns: "*" matches anything, "%" anything but
// the hierarchy separator (RFC 9051 §6.3.9). It simulates the pattern as
// a nondeterministic automaton over the set of pattern positions, so a
// match costs O(len(pattern) × len(name)) whatever the number of
// wildcards (a backtracking matcher is exponential in them).
type matcher struct {
	cur, next []bool
}

func (m *matcher) match(pat, name string) bool {
	n := len(pat) + 1
	if cap(m.cur) < n {
		m.cur, m.next = make([]bool, n), make([]bool, n)
	}
	cur, next := m.cur[:n], m.next[:n]
	clear(cur)
	cur[0] = true
	closure(pat, cur)
	for i := 0; i < len(name); i++ {
		ch := name[i]
		clear(next)
		any := false
		for p := 0; p < len(pat); p++ {
			if !cur[p] {
				continue
			}
			switch pat[p] {
			case '*':
				next[p], any = true, true
			case '%':
				if ch != '/' {
					next[p], any = true, true
				}
			default:
				if pat[p] == ch {
					next[p+1], any = true, true
				}
			}
		}
		if !any {
			return false
		}
		closure(pat, next)
		cur, next = next, cur
	}
	return cur[len(pat)]
}

// closure adds the positions reachable by letting a wildcard match nothing.
func closure(pat string, set []bool) {
	for p := 0; p < len(pat); p++ {
		if set[p] && (pat[p] == '*' || pat[p] == '%') {
			set[p+1] = true
		}
	}
}
