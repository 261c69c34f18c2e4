package embedded

import (
	"sort"
	"strings"

	"github.com/skrytka/skrytka/internal/store"
)

// sysMask is every stored system flag.
const sysMask = store.FlagSeen | store.FlagAnswered | store.FlagFlagged | store.FlagDeleted | store.FlagDraft | store.FlagDownloaded

// validKeyword reports whether k is an IMAP flag-keyword (an atom, RFC 9051
// §9 "flag-keyword"): printable ASCII without atom-specials, not starting
// with a backslash.
func validKeyword(k string) bool {
	if k == "" || len(k) > store.MaxKeywordBytes || k[0] == '\\' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
		switch c {
		case '(', ')', '{', '%', '*', '"', '\\', ']':
			return false
		}
	}
	return true
}

func checkFlags(f store.Flags) error {
	if f.Sys&^sysMask != 0 {
		return store.ErrBadFlag
	}
	for _, k := range f.Keywords {
		if !validKeyword(k) {
			return store.ErrBadFlag
		}
	}
	return nil
}

// joinKeywords encodes a keyword list for the keywords column (sorted by
// folded name, space-separated; keywords cannot contain spaces).
func joinKeywords(kws []string) string {
	if len(kws) == 0 {
		return ""
	}
	sort.Slice(kws, func(i, j int) bool { return strings.ToLower(kws[i]) < strings.ToLower(kws[j]) })
	return strings.Join(kws, " ")
}

func splitKeywords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// keywordNames maps kws to the mailbox's spellings, registering new ones
// (up to store.MaxKeywordsPerBox), without duplicates.
func (w *wtx) keywordNames(mbox store.MailboxID, kws []string) ([]string, error) {
	if len(kws) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(kws))
	seen := make(map[string]bool, len(kws))
	for _, k := range kws {
		l := strings.ToLower(k)
		if seen[l] {
			continue
		}
		seen[l] = true
		var name string
		err := w.queryRow(`SELECT name FROM keywords WHERE mailbox_id = ? AND lname = ?`, []any{mbox, l}, &name)
		if err != nil {
			if !isNoRows(err) {
				return nil, err
			}
			var n int
			if err := w.queryRow(`SELECT count(*) FROM keywords WHERE mailbox_id = ?`, []any{mbox}, &n); err != nil {
				return nil, err
			}
			if n >= store.MaxKeywordsPerBox {
				return nil, store.ErrTooManyItems
			}
			if _, err := w.exec(`INSERT INTO keywords(mailbox_id, lname, name) VALUES(?, ?, ?)`, mbox, l, k); err != nil {
				return nil, err
			}
			name = k
		}
		out = append(out, name)
	}
	return out, nil
}

// applyFlags computes the new flags of a message.
// normSet sorts and merges a UID set, dropping UID 0.
func normSet(set store.UIDSet) store.UIDSet {
	out := make(store.UIDSet, 0, len(set))
	for _, r := range set {
		if r.Start > r.Stop {
			r.Start, r.Stop = r.Stop, r.Start
		}
		if r.Start == 0 {
			r.Start = 1
		}
		if r.Stop == 0 {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && uint64(r.Start) <= uint64(merged[n-1].Stop)+1 {
			if r.Stop > merged[n-1].Stop {
				merged[n-1].Stop = r.Stop
			}
			continue
		}
		merged = append(merged, r)
	}
	return merged
}
