package imapwire

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/skrytka/skrytka/internal/mailparse"
)

// knownDifferences lists corpus messages where our answer differs from
// Dovecot 2.3.19's on purpose, with the rule that makes ours right. The
// test fails if one of them starts to match (so the table stays honest).
var knownDifferences = map[string]string{}

// TestDovecotCorpus parses every corpus message the way the store keeps it
// (CRLF line endings), renders ENVELOPE, BODYSTRUCTURE and BODY, computes
// RFC822.SIZE and BODY[1.MIME] from the offsets, and compares the values
// with Dovecot's answers. String tokens are compared by value (quoted and
// literal forms are equivalent).
func TestDovecotCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "mime-corpus")
	names, err := os.ReadDir(filepath.Join(dir, "messages"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 104 {
		t.Fatalf("corpus has %d messages, want 104", len(names))
	}
	matched, noAnswer := 0, 0
	for _, de := range names {
		name := de.Name()
		raw, err := os.ReadFile(filepath.Join(dir, "messages", name))
		if err != nil {
			t.Fatal(err)
		}
		ans, err := os.ReadFile(filepath.Join(dir, "dovecot-2.3.19", name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(ans), "APPEND NO") {
			noAnswer++
		}
		diffs := compareWithDovecot(t, toCRLF(raw), string(ans))
		reason, known := knownDifferences[name]
		switch {
		case len(diffs) == 0 && known:
			t.Errorf("%s: listed as a known difference (%s) but matches now", name, reason)
		case len(diffs) == 0:
			matched++
		case !known:
			for _, d := range diffs {
				t.Errorf("%s: %s", name, d)
			}
		}
	}
	t.Logf("%d of %d messages match Dovecot 2.3.19 (%d of them refused by Dovecot, so only checked for sanity); %d known differences",
		matched, len(names), noAnswer, len(knownDifferences))
}

// toCRLF normalises line endings as the store does (and as IMAP APPEND
// carries them).
func toCRLF(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

func compareWithDovecot(t *testing.T, msg []byte, ans string) []string {
	t.Helper()
	info, err := mailparse.Parse(bytes.NewReader(msg))
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	checkOffsets(t, info, int64(len(msg)))
	if strings.HasPrefix(ans, "APPEND NO") {
		// Dovecot refused the message (it is empty); nothing to compare
		// but our own sanity.
		if len(msg) != 0 || info.Root.End != 0 {
			return []string{"Dovecot refused an APPEND of a non-empty message?"}
		}
		return nil
	}
	items := splitAnswer(ans)
	var diffs []string
	cmp := func(item string, ours []byte) {
		seg, ok := items[item]
		if !ok {
			diffs = append(diffs, item+": no Dovecot answer")
			return
		}
		key := item
		i := strings.Index(seg, "("+key+" ")
		if i < 0 {
			diffs = append(diffs, item+": malformed Dovecot answer")
			return
		}
		want, _, err := parseSexp(seg[i+len(key)+2:], true)
		if err != nil {
			diffs = append(diffs, item+": Dovecot answer: "+err.Error())
			return
		}
		got, rest, err := parseSexp(string(ours), false)
		if err != nil || rest != "" {
			diffs = append(diffs, fmt.Sprintf("%s: our output does not parse (%v, rest %q): %s", item, err, rest, ours))
			return
		}
		if g, w := got.String(), want.String(); g != w {
			diffs = append(diffs, fmt.Sprintf("%s:\n  ours:    %s\n  dovecot: %s", item, g, w))
		}
	}
	cmp("ENVELOPE", AppendEnvelope(nil, &info.Envelope, false))
	cmp("BODYSTRUCTURE", AppendBodyStructure(nil, &info.Root, true, false))
	cmp("BODY", AppendBodyStructure(nil, &info.Root, false, false))

	if seg, ok := items["RFC822.SIZE"]; ok {
		want := strings.TrimSuffix(strings.TrimSpace(seg[strings.LastIndex(seg, "RFC822.SIZE ")+len("RFC822.SIZE "):]), "))")
		want = strings.TrimSuffix(want, ")")
		if got := strconv.FormatInt(info.Root.End, 10); got != want {
			diffs = append(diffs, fmt.Sprintf("RFC822.SIZE: ours %s, dovecot %s", got, want))
		}
	}
	if seg, ok := items["BODY.PEEK[1.MIME]"]; ok {
		s, e, ok := SectionRange(info, []int{1}, "MIME")
		i := strings.Index(seg, "(BODY[1.MIME] ")
		if !ok {
			diffs = append(diffs, "1.MIME: no such section")
		} else if i < 0 {
			diffs = append(diffs, "1.MIME: malformed Dovecot answer")
		} else {
			want, _, err := parseSexp(seg[i+len("(BODY[1.MIME] "):], true)
			got := pyReplace(msg[s:e])
			if err != nil || want.str == nil || *want.str != got {
				diffs = append(diffs, fmt.Sprintf("1.MIME:\n  ours:    %q\n  dovecot: %q (%v)", got, want.String(), err))
			}
		}
	}
	return diffs
}

// checkOffsets verifies the invariants of the offsets of every part.
func checkOffsets(t *testing.T, info *mailparse.Info, size int64) {
	t.Helper()
	if info.Root.HeaderStart != 0 || info.Root.End != size {
		t.Errorf("root spans [%d,%d), message is %d octets", info.Root.HeaderStart, info.Root.End, size)
	}
	var walk func(p *mailparse.Part)
	walk = func(p *mailparse.Part) {
		if !(0 <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= size) {
			t.Errorf("bad offsets %d %d %d (size %d)", p.HeaderStart, p.BodyStart, p.End, size)
		}
		prev := p.BodyStart
		for i := range p.Children {
			c := &p.Children[i]
			if c.HeaderStart < prev || c.End > p.End {
				t.Errorf("child [%d,%d) not inside parent body [%d,%d) after %d", c.HeaderStart, c.End, p.BodyStart, p.End, prev)
			}
			prev = c.End
			walk(c)
		}
	}
	walk(&info.Root)
}

// splitAnswer splits an answer file into its items, keyed by item name.
func splitAnswer(ans string) map[string]string {
	items := []string{"ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "BODY.PEEK[1.MIME]", "BINARY.SIZE[1]"}
	out := map[string]string{}
	for k, it := range items {
		start := strings.Index(ans, it+" OK: ")
		if k > 0 {
			start = strings.Index(ans, "\n"+it+" OK: ")
			if start >= 0 {
				start++
			}
		}
		if start < 0 {
			continue
		}
		end := len(ans)
		if k+1 < len(items) {
			if j := strings.Index(ans[start:], "\n"+items[k+1]+" OK: "); j >= 0 {
				end = start + j
			}
		}
		out[it] = ans[start:end]
	}
	return out
}

// sexp is a parsed IMAP value: NIL, a string, an atom/number, or a list.
type sexp struct {
	nil_ bool
	str  *string
	atom string
	list []*sexp
}

func (s *sexp) String() string {
	switch {
	case s.nil_:
		return "NIL"
	case s.str != nil:
		return strconv.Quote(*s.str)
	case s.list != nil:
		parts := make([]string, len(s.list))
		for i, x := range s.list {
			parts[i] = x.String()
		}
		return "(" + strings.Join(parts, " ") + ")"
	}
	return s.atom
}

// parseSexp parses one value. flat selects the answer-file form of
// literals ("{n} {literal}" then the text then a joining space); ours
// uses the wire form "{n}\r\n" then n octets. Strings of our output are
// passed through pyReplace so that they compare with the answer files.
func parseSexp(s string, flat bool) (*sexp, string, error) {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	if s == "" {
		return nil, s, fmt.Errorf("unexpected end")
	}
	switch c := s[0]; {
	case c == '(':
		v := &sexp{list: []*sexp{}}
		s = s[1:]
		for {
			for len(s) > 0 && s[0] == ' ' {
				s = s[1:]
			}
			if s == "" {
				return nil, s, fmt.Errorf("unterminated list")
			}
			if s[0] == ')' {
				return v, s[1:], nil
			}
			x, rest, err := parseSexp(s, flat)
			if err != nil {
				return nil, rest, err
			}
			v.list = append(v.list, x)
			s = rest
		}
	case c == '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
				if i < len(s) {
					b.WriteByte(s[i])
				}
			case '"':
				str := b.String()
				if !flat {
					str = pyReplace([]byte(str))
				}
				return &sexp{str: &str}, s[i+1:], nil
			default:
				b.WriteByte(s[i])
			}
		}
		return nil, "", fmt.Errorf("unterminated quoted string")
	case c == '{':
		j := strings.IndexByte(s, '}')
		if j < 0 {
			return nil, s, fmt.Errorf("bad literal")
		}
		n, err := strconv.Atoi(s[1:j])
		if err != nil {
			return nil, s, err
		}
		s = s[j+1:]
		if flat {
			if !strings.HasPrefix(s, " {literal}") {
				return nil, s, fmt.Errorf("bad flattened literal")
			}
			s = s[len(" {literal}"):]
			// n counts octets before the answers were written with
			// U+FFFD for invalid octets, so the text may be longer than
			// n. Take n octets if what follows fits (a joining space, then
			// SP or ")" as after any literal), else count each U+FFFD as
			// one replaced octet.
			fits := func(i int) bool {
				return i+1 < len(s) && s[i] == ' ' && (s[i+1] == ' ' || s[i+1] == ')')
			}
			i := n
			if !fits(i) {
				i = 0
				for k := 0; k < n && i < len(s); k++ {
					_, size := utf8.DecodeRuneInString(s[i:])
					if strings.HasPrefix(s[i:], "\uFFFD") {
						i += 3
						continue
					}
					if size > 1 {
						k += size - 1
					}
					i += size
				}
			}
			str := s[:i]
			return &sexp{str: &str}, strings.TrimPrefix(s[i:], " "), nil
		}
		if !strings.HasPrefix(s, "\r\n") || len(s) < 2+n {
			return nil, s, fmt.Errorf("bad literal")
		}
		str := pyReplace([]byte(s[2 : 2+n]))
		return &sexp{str: &str}, s[2+n:], nil
	default:
		j := strings.IndexAny(s, " ()")
		if j < 0 {
			j = len(s)
		}
		a := s[:j]
		if strings.EqualFold(a, "NIL") {
			return &sexp{nil_: true}, s[j:], nil
		}
		return &sexp{atom: a}, s[j:], nil
	}
}

// pyReplace decodes b as UTF-8 the way Python's "replace" error handler
// does (one U+FFFD per maximal invalid subpart), which is how the answer
// files were written.
func pyReplace(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			sb.Write(b[:size])
			b = b[size:]
			continue
		}
		// Length of the longest valid prefix of a sequence at b[0].
		n := 1
		c := b[0]
		need := 0
		lo, hi := byte(0x80), byte(0xBF)
		switch {
		case c >= 0xC2 && c <= 0xDF:
			need = 1
		case c >= 0xE0 && c <= 0xEF:
			need = 2
			if c == 0xE0 {
				lo = 0xA0
			} else if c == 0xED {
				hi = 0x9F
			}
		case c >= 0xF0 && c <= 0xF4:
			need = 3
			if c == 0xF0 {
				lo = 0x90
			} else if c == 0xF4 {
				hi = 0x8F
			}
		}
		for k := 1; k <= need && k < len(b); k++ {
			if b[k] < lo || b[k] > hi {
				break
			}
			lo, hi = 0x80, 0xBF
			n++
		}
		sb.WriteString("\uFFFD")
		b = b[n:]
	}
	return sb.String()
}
