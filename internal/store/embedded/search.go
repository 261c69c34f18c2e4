package embedded

import (
	"context"
	"sort"

	"github.com/skrytka/skrytka/internal/store"
)

// SearchText implements store.Store. It scans the folded text stored at
// delivery; nothing is decoded at search time.
func (s *Store) SearchText(ctx context.Context, acct store.AccountID, mbox store.MailboxID, candidates []store.UID, scope store.TextScope, needle string) ([]store.UID, error) {
	if _, err := s.ownMailbox(ctx, acct, mbox); err != nil {
		return nil, err
	}
	if candidates != nil && len(candidates) == 0 {
		return []store.UID{}, nil
	}
	cond := `instr(t.body, ?1) > 0`
	switch scope {
	case store.TextHeader:
		cond = `instr(t.header, ?1) > 0`
	case store.TextAll:
		cond = `(instr(t.header, ?1) > 0 OR instr(t.body, ?1) > 0)`
	}
	// Only the UID ranges that hold candidates are read: a search
	// narrowed by other criteria does not scan the whole mailbox.
	ranges := store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}
	var cand []store.UID
	if candidates != nil {
		cand = append(cand, candidates...)
		sort.Slice(cand, func(i, j int) bool { return cand[i] < cand[j] })
		cand = dedupUIDs(cand)
		ranges = normSet(store.UIDSetOf(cand...))
		if len(ranges) <= 64 {
			cand = nil // the ranges hold exactly the candidates
		} else {
			ranges = store.UIDSet{{Start: ranges[0].Start, Stop: ranges[len(ranges)-1].Stop}}
		}
	}
	st, err := s.rstmt(ctx, `SELECT m.uid FROM messages m JOIN texts t ON t.blob_id = m.blob_id WHERE m.mailbox_id = ?2 AND m.uid >= ?3 AND m.uid <= ?4 AND `+cond+` ORDER BY m.uid`)
	if err != nil {
		return nil, err
	}
	folded := foldText(needle)
	out := []store.UID{}
	for _, r := range ranges {
		rows, err := st.QueryContext(ctx, folded, mbox, r.Start, r.Stop)
		if err != nil {
			return nil, translate(err)
		}
		for rows.Next() {
			var u store.UID
			if err := rows.Scan(&u); err != nil {
				rows.Close()
				return nil, translate(err)
			}
			if cand != nil {
				i := sort.Search(len(cand), func(i int) bool { return cand[i] >= u })
				if i == len(cand) || cand[i] != u {
					continue
				}
			}
			out = append(out, u)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, translate(err)
		}
	}
	return out, nil
}
