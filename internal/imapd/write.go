package imapd

import (
	"strings"

	"github.com/skrytka/skrytka/internal/imapwire"
	"github.com/skrytka/skrytka/internal/store"
)

var sysFlagNames = []struct {
	bit  store.SysFlags
	name string
}{
	{store.FlagSeen, `\Seen`},
	{store.FlagAnswered, `\Answered`},
	{store.FlagFlagged, `\Flagged`},
	{store.FlagDeleted, `\Deleted`},
	{store.FlagDraft, `\Draft`},
}

// appendFlags appends "(" flags ")"; \Recent is added for rev1 sessions.
func appendFlags(b []byte, f store.Flags, recent bool) []byte {
	b = append(b, '(')
	first := true
	sep := func() {
		if !first {
			b = append(b, ' ')
		}
		first = false
	}
	for _, sf := range sysFlagNames {
		if f.Sys&sf.bit != 0 {
			sep()
			b = append(b, sf.name...)
		}
	}
	if recent {
		sep()
		b = append(b, `\Recent`...)
	}
	for _, k := range f.Keywords {
		sep()
		b = append(b, k...)
	}
	return append(b, ')')
}

// parseFlags turns flag names into store flags. \Recent is ignored (it is
// not settable, RFC 9051 §2.3.2); other unknown system flags are errors.
func parseFlags(names []string) (store.Flags, error) {
	var f store.Flags
	for _, n := range names {
		if strings.HasPrefix(n, `\`) {
			found := false
			for _, sf := range sysFlagNames {
				if strings.EqualFold(n, sf.name) {
					f.Sys |= sf.bit
					found = true
				}
			}
			if !found && !strings.EqualFold(n, `\Recent`) {
				return f, bad("", "unknown system flag "+n)
			}
			continue
		}
		if len(n) > store.MaxKeywordBytes {
			return f, bad("", "keyword too long")
		}
		f.Keywords = append(f.Keywords, n)
	}
	return f, nil
}

// flagList reads a flag-list "(" [flag *(SP flag)] ")".
func (d *decoder) flagList() []string {
	var names []string
	d.list(true, func() { names = append(names, d.flagName()) })
	return names
}

// sendFlagsFetch sends "* seq FETCH (UID u FLAGS (...) [MODSEQ (m)])".
func (c *conn) sendFlagsFetch(seq uint32, uid store.UID, f store.Flags, ms store.ModSeq, s *selected, withUID bool) {
	b := append(c.out[:0], "* "...)
	b = appendUint(b, uint64(seq))
	b = append(b, " FETCH ("...)
	b = append(b, "UID "...)
	b = appendUint(b, uint64(uid))
	b = append(b, " FLAGS "...)
	b = appendFlags(b, f, !c.rev2 && s.isRecent(uid))
	if c.condstore {
		b = append(b, " MODSEQ ("...)
		b = appendUint(b, uint64(ms))
		b = append(b, ')')
	}
	b = append(b, ')')
	c.out = b
	c.send(b)
}

func appendAStringName(b []byte, name string, utf8 bool) []byte {
	return imapwire.AppendAString(b, name, utf8)
}
