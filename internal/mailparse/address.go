package mailparse

import "strings"

// Address-list parsing for ENVELOPE (RFC 5322 §3.4, with the obsolete
// forms of §4.4). Real headers are often broken; the parser never fails
// and turns what it cannot read into addresses with the placeholder
// mailbox "MISSING_MAILBOX", host "MISSING_DOMAIN" or "SYNTAX_ERROR", the
// values Dovecot sends, so that clients see the same thing from both
// servers. Display names, routes and local parts are returned as written
// (quoted-pairs resolved, encoded-words not decoded: RFC 3501 §7.4.2 wants
// the raw header text).

const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
	syntaxError    = "SYNTAX_ERROR"
	invalidRoute   = "INVALID_ROUTE"
	maxAddresses   = 10000 // per header field
)

// addrParser walks one unfolded address-list value. Methods that advance
// return 1 when input remains, 0 at its end and -1 on a syntax error,
// so that the recovery rules below can be stated precisely.
type addrParser struct {
	s           string
	i           int
	lastComment string
	out         []Address
	cur         Address
	curSet      struct{ mailbox, domain bool }
	str         strings.Builder
}

func isAText(c byte) bool {
	if c >= 0x80 {
		return true // RFC 6532 §3.2: UTF-8 in atoms
	}
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func (p *addrParser) more() int {
	if p.i < len(p.s) {
		return 1
	}
	return 0
}

func (p *addrParser) at(c byte) bool { return p.i < len(p.s) && p.s[p.i] == c }

// skipCFWS skips white space and comments, remembering the text of the
// last comment (a name in the old "addr (Name)" form).
func (p *addrParser) skipCFWS() int {
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			p.i++
			continue
		}
		if c != '(' {
			return 1
		}
		var b strings.Builder
		depth := 0
		for {
			if p.i >= len(p.s) {
				return -1 // unterminated comment
			}
			c := p.s[p.i]
			p.i++
			if c == '\\' && p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
				continue
			}
			if c == '(' {
				depth++
				if depth == 1 {
					continue
				}
			} else if c == ')' {
				depth--
				if depth == 0 {
					break
				}
			} else if c == '\r' || c == '\n' {
				continue
			}
			b.WriteByte(c)
		}
		p.lastComment = b.String()
	}
	return 0
}

// quotedString appends the content of a quoted-string at p.i.
func (p *addrParser) quotedString() int {
	p.i++ // '"'
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return p.skipCFWS()
		case '\\':
			if p.i < len(p.s) {
				p.str.WriteByte(p.s[p.i])
				p.i++
			}
		case '\r', '\n':
		default:
			p.str.WriteByte(c)
		}
	}
	return -1
}

// dotAtom appends a dot-atom, allowing CFWS around the dots (obsolete
// local-part and domain forms, RFC 5322 §4.4).
func (p *addrParser) dotAtom() int {
	if p.i >= len(p.s) || !isAText(p.s[p.i]) {
		return -1
	}
	for {
		start := p.i
		for p.i < len(p.s) && isAText(p.s[p.i]) {
			p.i++
		}
		p.str.WriteString(p.s[start:p.i])
		if r := p.skipCFWS(); r <= 0 {
			return r
		}
		if !p.at('.') {
			return 1
		}
		p.i++
		p.str.WriteByte('.')
		if r := p.skipCFWS(); r <= 0 {
			return r
		}
		if !isAText(p.s[p.i]) {
			// "a.@b": keep the odd octet as part of the atom and go on,
			// which is how the reference behaves.
			p.str.WriteByte(p.s[p.i])
			p.i++
		}
	}
}

// phrase appends 1*word (obs-phrase: dots allowed), words joined by one
// space.
func (p *addrParser) phrase() int {
	if p.i >= len(p.s) {
		return 0
	}
	if p.s[p.i] == '.' {
		return -1
	}
	for {
		var r int
		if p.at('"') {
			r = p.quotedString()
		} else {
			if p.i >= len(p.s) || !(isAText(p.s[p.i]) || p.s[p.i] == '.') {
				return -1
			}
			start := p.i
			for p.i < len(p.s) && (isAText(p.s[p.i]) || p.s[p.i] == '.') {
				p.i++
			}
			p.str.WriteString(p.s[start:p.i])
			r = p.skipCFWS()
		}
		if r <= 0 {
			return r
		}
		if c := p.s[p.i]; !isAText(c) && c != '"' && c != '.' {
			return 1
		}
		p.str.WriteByte(' ')
	}
}

func (p *addrParser) domain() int {
	if p.skipCFWS() <= 0 {
		return -1
	}
	if p.at('[') {
		// domain-literal, kept with its brackets
		start := p.i
		for p.i < len(p.s) && p.s[p.i] != ']' {
			if p.s[p.i] == '\\' {
				p.i++
			}
			p.i++
		}
		if p.i >= len(p.s) {
			return -1
		}
		p.i++
		for _, c := range []byte(p.s[start:p.i]) {
			if c != '\r' && c != '\n' {
				p.str.WriteByte(c)
			}
		}
		return p.skipCFWS()
	}
	return p.dotAtom()
}

func (p *addrParser) localPart() int {
	p.str.Reset()
	var r int
	if p.at('"') {
		r = p.quotedString()
	} else {
		r = p.dotAtom()
	}
	if r < 0 {
		return -1
	}
	p.cur.Mailbox = p.str.String()
	p.curSet.mailbox = true
	return r
}

func (p *addrParser) parseDomain() int {
	p.str.Reset()
	r := p.domain()
	if r < 0 {
		return -1
	}
	p.cur.Host = p.str.String()
	p.curSet.domain = true
	return r
}

// route reads obs-domain-list "@a,@b" into the ADL.
func (p *addrParser) route() int {
	p.str.Reset()
	for p.i < len(p.s) && p.s[p.i] == '@' {
		if p.str.Len() > 0 {
			p.str.WriteByte(',')
		}
		p.str.WriteByte('@')
		p.i++
		if r := p.domain(); r <= 0 {
			return r
		}
		for p.at(',') {
			p.i++
			if r := p.skipCFWS(); r <= 0 {
				return r
			}
		}
	}
	if p.i >= len(p.s) {
		return 0
	}
	p.cur.ADL = p.str.String()
	return 1
}

func (p *addrParser) angleAddr() int {
	p.i++ // '<'
	if p.skipCFWS() <= 0 {
		return -1
	}
	if p.at('@') {
		if p.route() > 0 && p.at(':') {
			p.i++
		} else {
			p.cur.ADL = invalidRoute
			if p.i >= len(p.s) {
				return -1
			}
		}
		if p.skipCFWS() <= 0 {
			return -1
		}
	}
	if p.at('>') {
		p.i++ // "<>": null path, mailbox and host stay missing
		return p.skipCFWS()
	}
	if p.localPart() <= 0 {
		return -1
	}
	if p.at('@') {
		p.i++
		if p.parseDomain() <= 0 {
			return -1
		}
	}
	if !p.at('>') {
		return -1
	}
	p.i++
	return p.skipCFWS()
}

func (p *addrParser) nameAddr() int {
	p.str.Reset()
	if !p.at('<') {
		if p.phrase() <= 0 || !p.at('<') {
			return -1
		}
	}
	p.cur.Name = p.str.String()
	if p.angleAddr() < 0 {
		p.cur.Host = syntaxError
		p.curSet.domain = true
	}
	return p.more()
}

func (p *addrParser) addrSpec() int {
	p.lastComment = ""
	quoted := p.at('"')
	r := p.localPart()
	r2 := -2
	if r != 0 && p.at('@') {
		p.i++
		r2 = p.parseDomain()
		if r2 <= 0 {
			r = r2
		}
	}
	if p.lastComment != "" {
		p.cur.Name = p.lastComment
	} else if r2 == -2 {
		// "user" without @domain: a lone word is a mailbox, but if more
		// words follow the whole thing was a display name.
		p.str.WriteByte(' ')
		n := p.str.Len()
		p.phrase()
		if p.str.Len() != n {
			p.cur.Mailbox, p.curSet.mailbox = "", false
			p.cur.Name = p.str.String()
		} else if !quoted {
			p.cur.Host, p.curSet.domain = "", true
		}
		r = -1
	}
	return r
}

func (p *addrParser) add(a Address) {
	if len(p.out) < maxAddresses {
		p.out = append(p.out, a)
	}
}

func (p *addrParser) addFixed() {
	a := p.cur
	if !p.curSet.mailbox {
		a.Mailbox = missingMailbox
	}
	if !p.curSet.domain || a.Host == "" {
		a.Host = missingDomain
	}
	p.add(a)
	p.cur = Address{}
	p.curSet.mailbox, p.curSet.domain = false, false
}

func (p *addrParser) mailbox() int {
	start := p.i
	r := p.nameAddr()
	if r < 0 {
		p.i = start
		p.cur = Address{}
		p.curSet.mailbox, p.curSet.domain = false, false
		r = p.addrSpec()
	}
	if r >= 0 {
		r = p.skipCFWS()
	}
	p.addFixed()
	return r
}

func (p *addrParser) group() int {
	p.str.Reset()
	if p.phrase() <= 0 || !p.at(':') {
		return -1
	}
	p.i++
	p.add(Address{Mailbox: p.str.String(), GroupStart: true})
	r := p.skipCFWS()
	if r > 0 && !p.at(';') {
		for {
			if p.mailbox() <= 0 {
				r = -1
				break
			}
			if !p.at(',') {
				break
			}
			p.i++
			if p.skipCFWS() <= 0 {
				r = -1
				break
			}
		}
	}
	if r >= 0 {
		if !p.at(';') {
			r = -1
		} else {
			p.i++
			r = p.skipCFWS()
		}
	}
	p.add(Address{GroupEnd: true})
	if r == 0 {
		return 0
	}
	return 1
}

func (p *addrParser) address() int {
	start := p.i
	n := len(p.out)
	r := p.group()
	if r < 0 {
		p.i = start
		p.out = p.out[:n]
		p.cur = Address{}
		r = p.mailbox()
	}
	return r
}

// parseAddressList parses an unfolded address-list value. It returns nil
// for an empty list.
func parseAddressList(v string) []Address {
	p := &addrParser{s: v}
	if p.skipCFWS() <= 0 {
		return nil
	}
	for n := 0; n < maxAddresses; n++ {
		if p.address() == 0 {
			break
		}
		if !p.at(',') {
			break
		}
		p.i++
		if r := p.skipCFWS(); r <= 0 {
			if r < 0 {
				p.addFixed()
			}
			break
		}
	}
	return p.out
}
