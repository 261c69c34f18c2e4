package embedded

import (
	"bytes"
	"context"
	"database/sql"
	"slices"

	"github.com/skrytka/skrytka/internal/store"
)

// scanMaxCandidates: up to this many candidates, reading their stored
// text costs less than an index query, whose cost does not depend on
// the candidates.
const scanMaxCandidates = 64

// SearchText implements store.Store. Needles of three characters or more
// are answered by the trigram index plus the rows still queued for it
// (textindex.go); shorter ones, and small candidate sets, by scanning the
// folded text stored at delivery. Both are exact substring matches of the
// folded needle in the folded text; nothing is decoded at search time.
func (s *Store) SearchText(ctx context.Context, acct store.AccountID, mbox store.MailboxID, candidates []store.UID, scope store.TextScope, needle string) ([]store.UID, error) {
	if _, err := s.ownMailbox(ctx, acct, mbox); err != nil {
		return nil, err
	}
	if candidates != nil && len(candidates) == 0 {
		return []store.UID{}, nil
	}
	var cand []store.UID
	if candidates != nil {
		cand = slices.Clone(candidates)
		slices.Sort(cand)
		cand = dedupUIDs(cand)
	}
	folded := foldText(needle)
	var out []store.UID
	var err error
	switch {
	case folded == "":
		// Every text contains the empty string.
		out, err = s.searchAll(ctx, mbox)
	case indexable(folded) && (cand == nil || len(cand) > scanMaxCandidates):
		s.kickIndexer()
		out, err = s.searchIndex(ctx, acct, mbox, scope, folded)
	default:
		return s.searchScan(ctx, mbox, cand, scope, folded)
	}
	if err != nil {
		return nil, err
	}
	if cand != nil {
		out = intersectUIDs(out, cand)
	}
	return out, nil
}

func (s *Store) searchAll(ctx context.Context, mbox store.MailboxID) ([]store.UID, error) {
	st, err := s.rstmt(ctx, `SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, mbox)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []store.UID{}
	for rows.Next() {
		var u store.UID
		if err := rows.Scan(&u); err != nil {
			return nil, translate(err)
		}
		out = append(out, u)
	}
	return out, translate(rows.Err())
}

// searchIndex answers an indexable needle: the rows of acct still queued
// for the index that belong to mbox are scanned, the index answers for
// the rest. Both are read in one transaction, so a row the indexer moves
// meanwhile is seen in exactly one of them.
func (s *Store) searchIndex(ctx context.Context, acct store.AccountID, mbox store.MailboxID, scope store.TextScope, folded string) ([]store.UID, error) {
	// CROSS JOIN keeps the left table outermost: the queue or the index
	// hits drive, each joined to this mailbox through messages_blob.
	pendSt, err := s.rstmt(ctx, `SELECT m.uid, t.header, t.body FROM textq q CROSS JOIN messages m
		ON m.blob_id = q.key - ?1 AND m.mailbox_id = ?2
		JOIN texts t ON t.blob_id = m.blob_id
		WHERE q.key BETWEEN ?3 AND ?4`)
	if err != nil {
		return nil, err
	}
	idxSt, err := s.rstmt(ctx, `SELECT m.uid FROM textidx CROSS JOIN messages m
		ON m.blob_id = textidx.rowid - ?1 AND m.mailbox_id = ?2
		WHERE textidx MATCH ?3 AND textidx.rowid BETWEEN ?4 AND ?5`)
	if err != nil {
		return nil, err
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, translate(err)
	}
	defer tx.Rollback()
	base, lo, hi := textKeyRange(acct)
	rows, err := tx.StmtContext(ctx, pendSt).QueryContext(ctx, base, mbox, lo, hi)
	if err != nil {
		return nil, translate(err)
	}
	out, err := matchRows(rows, scope, folded)
	if err != nil {
		return nil, err
	}
	rows, err = tx.StmtContext(ctx, idxSt).QueryContext(ctx, base, mbox, ftsQuery(folded, scope), lo, hi)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var u store.UID
		if err := rows.Scan(&u); err != nil {
			return nil, translate(err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	slices.Sort(out)
	return dedupUIDs(out), nil
}

// matchRows reads (uid, header, body) rows and returns the UIDs whose
// text in scope contains folded, in the rows' order.
func matchRows(rows *sql.Rows, scope store.TextScope, folded string) ([]store.UID, error) {
	defer rows.Close()
	out := []store.UID{}
	needle := []byte(folded)
	var h, b sql.RawBytes
	for rows.Next() {
		var u store.UID
		if err := rows.Scan(&u, &h, &b); err != nil {
			return nil, translate(err)
		}
		if scope != store.TextBody && bytes.Contains(h, needle) ||
			scope != store.TextHeader && bytes.Contains(b, needle) {
			out = append(out, u)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// intersectUIDs keeps the elements of a (ascending) that are in b
// (ascending), in place.
func intersectUIDs(a, b []store.UID) []store.UID {
	out := a[:0]
	j := 0
	for _, u := range a {
		for j < len(b) && b[j] < u {
			j++
		}
		if j < len(b) && b[j] == u {
			out = append(out, u)
		}
	}
	return out
}

// searchScan reads the stored text of the messages (of cand, when not
// nil) and looks for folded in it.
func (s *Store) searchScan(ctx context.Context, mbox store.MailboxID, cand []store.UID, scope store.TextScope, folded string) ([]store.UID, error) {
	// Only the UID ranges that hold candidates are read: a search
	// narrowed by other criteria does not scan the whole mailbox.
	ranges := store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}
	if cand != nil {
		ranges = normSet(store.UIDSetOf(cand...))
		if len(ranges) <= 64 {
			cand = nil // the ranges hold exactly the candidates
		} else {
			ranges = store.UIDSet{{Start: ranges[0].Start, Stop: ranges[len(ranges)-1].Stop}}
		}
	}
	// Only the columns in scope are read; the other is ''.
	h, b := "t.header", "t.body"
	switch scope {
	case store.TextHeader:
		b = "''"
	case store.TextBody:
		h = "''"
	}
	st, err := s.rstmt(ctx, `SELECT m.uid, `+h+`, `+b+` FROM messages m JOIN texts t ON t.blob_id = m.blob_id WHERE m.mailbox_id = ? AND m.uid >= ? AND m.uid <= ? ORDER BY m.uid`)
	if err != nil {
		return nil, err
	}
	out := []store.UID{}
	for _, r := range ranges {
		rows, err := st.QueryContext(ctx, mbox, r.Start, r.Stop)
		if err != nil {
			return nil, translate(err)
		}
		got, err := matchRows(rows, scope, folded)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	if cand != nil {
		out = intersectUIDs(out, cand)
	}
	return out, nil
}
