package mailparse

import (
	"sort"
	"strconv"
	"strings"
)

// lexer is a small RFC 822/2045 tokenizer over one unfolded field value.
type lexer struct {
	s string
	i int
}

// skipCFWS skips white space and comments (RFC 5322 §3.2.2). It returns
// false when the end of the value was reached.
func (l *lexer) skipCFWS() bool {
	for l.i < len(l.s) {
		switch c := l.s[l.i]; c {
		case ' ', '\t', '\r', '\n':
			l.i++
		case '(':
			depth := 0
			for l.i < len(l.s) {
				c := l.s[l.i]
				l.i++
				if c == '\\' {
					l.i = min(l.i+1, len(l.s))
				} else if c == '(' {
					depth++
				} else if c == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
		default:
			return true
		}
	}
	return false
}

func (l *lexer) peek() byte {
	if l.i < len(l.s) {
		return l.s[l.i]
	}
	return 0
}

// isTokenChar reports whether c may be in an RFC 2045 token: any CHAR but
// SPACE, CTLs and tspecials. Octets above 127 are accepted, as real mail
// carries them.
func isTokenChar(c byte) bool {
	if c <= ' ' || c == 0x7f {
		return false
	}
	switch c {
	case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=':
		return false
	}
	return true
}

func (l *lexer) token() string {
	start := l.i
	for l.i < len(l.s) && isTokenChar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

// quoted reads a quoted-string starting at '"' and returns its content
// with quoted-pairs resolved; ok is false if it is not terminated.
func (l *lexer) quoted() (string, bool) {
	l.i++ // '"'
	var b strings.Builder
	for l.i < len(l.s) {
		c := l.s[l.i]
		l.i++
		switch c {
		case '"':
			return b.String(), true
		case '\\':
			if l.i < len(l.s) {
				b.WriteByte(l.s[l.i])
				l.i++
			}
		case '\r', '\n':
			// folding inside a quoted string: drop the line break
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), false
}

// parseContentType parses "type/subtype; params" (RFC 2045 §5.1). ok is
// false when the value has no valid type/subtype, in which case the
// caller applies the default (RFC 2045 §5.2).
func parseContentType(v string) (typ, sub string, params []Param, ok bool) {
	l := &lexer{s: v}
	l.skipCFWS()
	typ = l.token()
	l.skipCFWS()
	if typ == "" || l.peek() != '/' {
		return "", "", nil, false
	}
	l.i++
	l.skipCFWS()
	sub = l.token()
	if sub == "" {
		return "", "", nil, false
	}
	return typ, sub, parseParams(l), true
}

// parseDisposition parses a Content-Disposition value (RFC 2183 §2). The
// type is empty when the value has no valid token.
func parseDisposition(v string) (typ string, params []Param) {
	l := &lexer{s: v}
	l.skipCFWS()
	typ = l.token()
	if typ == "" {
		return "", nil
	}
	return typ, parseParams(l)
}

// parseParams reads "; name=value" pairs until the end or the first
// syntax error (what was read so far is kept: broken mail is common) and
// joins RFC 2231 continuations.
func parseParams(l *lexer) []Param {
	var params []Param
	for {
		if !l.skipCFWS() || l.peek() != ';' {
			break
		}
		l.i++
		if !l.skipCFWS() {
			break
		}
		name := l.token()
		if name == "" {
			break
		}
		l.skipCFWS()
		if l.peek() != '=' {
			break
		}
		l.i++
		l.skipCFWS()
		var val string
		switch c := l.peek(); {
		case c == '"':
			var ok bool
			val, ok = l.quoted()
			if !ok {
				params = append(params, Param{name, val})
				return joinContinuations(params)
			}
		case c == '=':
			// Broken but common: name==?utf-8?b?...?= (an unquoted
			// encoded-word). Take everything up to ';' or white space.
			start := l.i
			for l.i < len(l.s) && !strings.ContainsRune("; \t\r\n", rune(l.s[l.i])) {
				l.i++
			}
			val = l.s[start:l.i]
		default:
			val = l.token()
			if val == "" {
				return joinContinuations(params)
			}
		}
		params = append(params, Param{name, val})
	}
	return joinContinuations(params)
}

// joinContinuations merges RFC 2231 §3 continuations "name*0", "name*1",
// ... (and "name*0*" for charset-encoded segments) into one parameter. The
// joined parameter is named "name*" when its first segment is encoded, so
// the value keeps the charset'language'%XX form (RFC 2231 §4), which an
// IMAP client decodes; otherwise it is named "name". It takes the place of
// the first segment.
func joinContinuations(params []Param) []Param {
	has := false
	for _, p := range params {
		if _, _, ok := splitSection(p.Name); ok {
			has = true
			break
		}
	}
	if !has {
		return params
	}
	type seg struct {
		n       int
		encoded bool
		value   string
	}
	segs := map[string][]seg{}
	var out []Param
	for _, p := range params {
		base, n, ok := splitSection(p.Name)
		if !ok {
			out = append(out, p)
			continue
		}
		key := strings.ToLower(base)
		if _, seen := segs[key]; !seen {
			out = append(out, Param{Name: "\x00" + key, Value: base})
		}
		segs[key] = append(segs[key], seg{n, strings.HasSuffix(p.Name, "*"), p.Value})
	}
	for i, p := range out {
		if !strings.HasPrefix(p.Name, "\x00") {
			continue
		}
		list := segs[p.Name[1:]]
		// Order by section number; sections must run 0,1,2... (RFC 2231
		// §3): stop at the first gap or repeat.
		sort.SliceStable(list, func(a, b int) bool { return list[a].n < list[b].n })
		var b strings.Builder
		encoded := false
		for want, s := range list {
			if s.n != want {
				break
			}
			if want == 0 {
				encoded = s.encoded
			}
			b.WriteString(s.value)
		}
		name := p.Value
		if encoded {
			name += "*"
		}
		out[i] = Param{Name: name, Value: b.String()}
	}
	return out
}

// splitSection splits "name*N" or "name*N*" into name and N.
func splitSection(name string) (base string, n int, ok bool) {
	s := strings.TrimSuffix(name, "*")
	i := strings.LastIndexByte(s, '*')
	if i <= 0 || i == len(s)-1 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 0 || n > 9999 || (len(s)-i-1 > 1 && s[i+1] == '0') {
		return "", 0, false
	}
	return s[:i], n, true
}

// parseLanguage parses Content-Language (RFC 3282): a comma-separated list
// of language tags.
func parseLanguage(v string) []string {
	l := &lexer{s: v}
	var tags []string
	for l.skipCFWS() {
		if l.peek() == ',' {
			l.i++
			continue
		}
		start := l.i
		for l.i < len(l.s) && (isTokenChar(l.s[l.i]) || l.s[l.i] == '=') {
			l.i++
		}
		if l.i == start {
			break
		}
		tags = append(tags, l.s[start:l.i])
	}
	return tags
}

// singleToken returns the value if it is one token between optional
// comments and white space, else "".
func singleToken(v string) string {
	l := &lexer{s: v}
	l.skipCFWS()
	t := l.token()
	if l.skipCFWS() {
		return ""
	}
	return t
}
