package embedded

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/skrytka/skrytka/internal/store"
)

// # Text index
//
// SearchText must find every message whose folded text (foldText, applied
// at staging) contains the folded needle as a substring: any string, any
// length, spaces and punctuation included. A word index cannot do that; a
// character-trigram index can. textidx is an SQLite FTS5 table with the
// trigram tokenizer (case_sensitive 1: the text is folded already, so
// nothing more is folded) over the header and body text. Every run of
// three characters of a column is a token at its character position, so a
// needle of three or more characters is a substring of a column exactly
// when its trigrams occur there at consecutive positions: an FTS5 phrase
// query of the quoted needle. The answer is exact, not a candidate set to
// check again. Needles of one or two characters have no trigram and go to
// a scan of the stored text (search.go), as does a needle holding U+FFFD,
// U+FFFE or U+FFFF, the characters SQLite's UTF-8 reader may produce for
// other input.
//
// Exactness needs both sides read as the same characters: foldText makes
// the text valid UTF-8 without NUL (the tokenizer skips NUL), and
// migration 4 rewrote texts stored before that rule (prepTextIndex).
//
// The table is contentless (content='', contentless_delete=1): it keeps
// postings, not a second copy of the text, which stays in texts.
//
// Partitioning. A row's rowid is account<<40 | blob, so each account's
// rows are one rowid range, and a search passes that range to FTS5, which
// seeks each posting list to it: a word common over all accounts costs
// one user's search only that user's share of its postings. A body
// delivered to several accounts is indexed once per account; copies and
// moves inside an account share their row. Hits are joined to the
// mailbox's messages through messages_blob (blob_id, then the primary
// key mailbox_id, uid), so other mailboxes' hits cost one index probe
// each and never reach the caller.
//
// Background filling. Indexing a 4 KB message costs FTS5 about 1.5 ms of
// CPU here (tokenizing, then flushing and merging segments; batches of 10
// to 1,000 texts per transaction measured within a factor of 1.7), twice
// what the rest of a delivery costs: indexing inside the delivery
// transaction cut 4 KB deliveries with 20 deliverers from 1,400-1,700/s
// to 140-180/s. Instead a trigger on messages puts the row's key into
// the queue table textq in the delivering transaction, and an indexer
// goroutine moves queued rows into textidx in write transactions of its
// own (indexBatch): 64 texts at a time once the writer has been quiet for
// 100 ms, 8 texts once a second while writes keep coming. A search reads,
// in one read transaction, the queued rows of the mailbox (scanned
// directly) and the index, so it is exact whatever the indexer's
// progress; only its speed depends on it.
//
// Large texts. FTS5 indexes a row in one go, and all writes wait while
// the indexer's transaction runs: a 2 MiB text (the most stored, see
// DefaultMaxTextBytes) held the writer 0.2-1 s (measured 230 ms on an
// idle store, about a second under delivery load). A text of more than
// indexMaxTextBytes is therefore never indexed: the indexer marks its
// queue row big and leaves it queued, and searches scan it with the
// other queued rows. Such texts are rare (text parts count, attachments
// do not); scanning one of 2 MiB added 2-35 ms to a search (measured
// with two test suites running beside it).
//
// Consistency. Each row is, in every committed state, either in textq or
// in textidx (a batch inserts into textidx and deletes from textq in one
// transaction), and the triggers on messages add and remove it in the
// transaction that adds the account's first or removes its last message
// with the body. A crash therefore never leaves the index claiming a
// message that is gone or missing one that was committed, and the queue
// survives restarts. Every hit is also joined with the messages table, so
// no row could make a gone message appear.

// acctShift places the account ID above the blob ID in an index rowid:
// 2^40 blobs per store, 2^23 accounts.
const acctShift = 40

// textKeyRange is the rowid range of acct's part of the index.
func textKeyRange(acct store.AccountID) (base, lo, hi int64) {
	base = int64(acct) << acctShift
	return base, base + 1, base | (1<<acctShift - 1)
}

// indexable reports whether the index answers the folded needle exactly:
// it has at least three characters and none that SQLite could read
// differently from Go.
func indexable(folded string) bool {
	n := 0
	for _, r := range folded {
		switch r {
		case utf8.RuneError, 0xFFFE, 0xFFFF, 0:
			return false
		}
		n++
	}
	return n >= 3
}

// ftsQuery is the FTS5 query for the folded needle in scope: one phrase,
// quoted (a quote inside doubled), so no character of the needle is FTS5
// syntax.
func ftsQuery(folded string, scope store.TextScope) string {
	phrase := `"` + strings.ReplaceAll(folded, `"`, `""`) + `"`
	switch scope {
	case store.TextHeader:
		return "header : " + phrase
	case store.TextBody:
		return "body : " + phrase
	}
	return phrase
}

// prepTextIndex rewrites the stored texts that foldText would now write
// differently (invalid UTF-8 or NUL) before migration 4 indexes them.
func prepTextIndex(ctx context.Context, tx *sql.Tx) error {
	var bad []int64
	rows, err := tx.QueryContext(ctx, `SELECT blob_id, header, body FROM texts`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var h, b sql.RawBytes
		if err := rows.Scan(&id, &h, &b); err != nil {
			rows.Close()
			return err
		}
		if !cleanText(h) || !cleanText(b) {
			bad = append(bad, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range bad {
		var h, b string
		if err := tx.QueryRowContext(ctx, `SELECT header, body FROM texts WHERE blob_id = ?`, id).Scan(&h, &b); err != nil {
			return fmt.Errorf("text %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE texts SET header = ?, body = ? WHERE blob_id = ?`, foldText(h), foldText(b), id); err != nil {
			return fmt.Errorf("text %d: %w", id, err)
		}
	}
	return nil
}

func cleanText(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// Indexer tuning. When no other write request ran for indexQuiet, the
// indexer takes full batches; while other writes keep coming it takes a
// small batch at most once per indexBusyEvery, so that it uses about 5%
// of the writer's time under sustained delivery (measured: FTS5 costs
// about 1.5 ms of CPU per 4 KB text here). At that pace the index keeps
// up with a sustained 25 messages/s or so; above it the queue grows and
// searches, still exact, scan the queued part until a quieter moment.
const (
	indexBatchDocs  = 64        // at most this many texts per transaction
	indexBatchBytes = 256 << 10 // and about this much text
	indexBusyDocs   = 8         // per transaction while other writes run
	indexBusyBytes  = 32 << 10
	indexQuiet      = 100 * time.Millisecond
	indexBusyEvery  = 250 * time.Millisecond
	// indexMaxTextBytes: a larger text stays queued, marked big, and
	// is scanned by searches (see Large texts above). It equals one
	// full batch, so no single text makes a longer write transaction.
	indexMaxTextBytes = indexBatchBytes
)

// indexStartDelay is how long after Open the indexer starts on its own
// (Options.indexStartDelay overrides it in tests).
const indexStartDelay = 5 * time.Second

// indexers holds the indexer goroutine of each open Store (started by
// the first write that may queue text, see kickIndexer).
var indexers sync.Map // *Store -> chan struct{}

// kickIndexer tells s's indexer that rows may have been queued, starting
// it if needed. Callers: Append, Deliver, Copy/Move (after commit) and
// SearchText (rows queued before this process, e.g. by migration 4).
func (s *Store) kickIndexer() {
	v, ok := indexers.Load(s)
	if !ok {
		var loaded bool
		v, loaded = indexers.LoadOrStore(s, make(chan struct{}, 1))
		if !loaded {
			go s.runIndexer(v.(chan struct{}))
		}
	}
	select {
	case v.(chan struct{}) <- struct{}{}:
	default:
	}
}

// runIndexer empties textq into textidx until the store closes.
func (s *Store) runIndexer(kick chan struct{}) {
	defer indexers.Delete(s)
	ctx := context.Background()
	for {
		select {
		case <-s.quit:
			return
		case <-kick:
		}
		for {
			quiet, ok := s.waitQuiet()
			if !ok {
				return
			}
			docs, bytes := indexBusyDocs, indexBusyBytes
			if quiet {
				docs, bytes = indexBatchDocs, indexBatchBytes
			}
			n, err := s.indexBatch(ctx, docs, bytes)
			if err != nil {
				if s.isClosed() {
					return
				}
				s.log.Warn("text index: batch failed; retrying", "err", err)
				select {
				case <-s.quit:
					return
				case <-time.After(time.Second):
				}
				continue
			}
			if n == 0 {
				break
			}
		}
		// Queue empty: merge index segments while the writer stays quiet.
		for {
			quiet, ok := s.waitQuiet()
			if !ok {
				return
			}
			if !quiet {
				break
			}
			more, err := s.mergeStep(ctx)
			if err != nil || !more {
				break
			}
		}
	}
}

// mergeStep does a bounded amount of FTS5 segment merging (about 256
// pages written) in one write transaction and reports whether there was
// any to do. Fewer segments make queries 2-10x faster: each term is
// looked up in every segment (measured on 10,000 messages: rare word
// 2.4 -> 0.24 ms, common word 30 -> 13 ms after a full merge).
func (s *Store) mergeStep(ctx context.Context) (bool, error) {
	more := false
	err := s.write(ctx, func(w *wtx) error {
		// usermerge 2: merge whenever two segments share a level.
		if _, err := w.exec(`INSERT INTO textidx(textidx, rank) VALUES('usermerge', 2)`); err != nil {
			return err
		}
		var before, after int64
		if err := w.queryRow(`SELECT total_changes()`, nil, &before); err != nil {
			return err
		}
		if _, err := w.exec(`INSERT INTO textidx(textidx, rank) VALUES('merge', 256)`); err != nil {
			return err
		}
		if err := w.queryRow(`SELECT total_changes()`, nil, &after); err != nil {
			return err
		}
		// FTS5 documents a merge that did work as two changes or more.
		more = after-before >= 2
		return nil
	})
	return more, err
}

// waitQuiet waits until no other write request has run for indexQuiet
// (quiet) or, while they keep coming, for indexBusyEvery (not quiet), so
// that indexing gives way to deliveries. ok is false when the store
// closes.
func (s *Store) waitQuiet() (quiet, ok bool) {
	deadline := time.Now().Add(indexBusyEvery)
	for {
		before := s.nOps.Load()
		select {
		case <-s.quit:
			return false, false
		case <-time.After(indexQuiet):
		}
		if s.nOps.Load() == before {
			return true, true
		}
		if time.Now().After(deadline) {
			return false, true
		}
	}
}

// indexBatch moves up to maxDocs queued rows (about maxBytes of text)
// into the index in one write transaction, marks the too large ones big,
// and returns how many rows it dealt with.
func (s *Store) indexBatch(ctx context.Context, maxDocs, maxBytes int) (int, error) {
	n := 0
	err := s.write(ctx, func(w *wtx) error {
		n = 0
		rows, err := w.query(`SELECT q.key, coalesce(octet_length(t.header) + octet_length(t.body), 0)
			FROM textq q INDEXED BY textq_small LEFT JOIN texts t ON t.blob_id = q.key & ?
			WHERE q.big = 0 ORDER BY q.key LIMIT ?`, int64(1)<<acctShift-1, maxDocs)
		if err != nil {
			return err
		}
		var keys, big []int64
		total := 0
		for rows.Next() {
			var k int64
			var size int
			if err := rows.Scan(&k, &size); err != nil {
				rows.Close()
				return err
			}
			if size > indexMaxTextBytes {
				big = append(big, k)
				continue
			}
			if len(keys) > 0 && total+size > maxBytes {
				break
			}
			keys = append(keys, k)
			total += size
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := w.exec(`INSERT OR REPLACE INTO textidx(rowid, header, body) SELECT ?1, header, body FROM texts WHERE blob_id = ?2`, k, k&(1<<acctShift-1)); err != nil {
				return err
			}
			if _, err := w.exec(`DELETE FROM textq WHERE key = ?`, k); err != nil {
				return err
			}
		}
		for _, k := range big {
			if _, err := w.exec(`UPDATE textq SET big = 1 WHERE key = ?`, k); err != nil {
				return err
			}
		}
		n = len(keys) + len(big)
		return nil
	})
	return n, err
}

// IndexText moves every text still queued into the index now, instead of
// waiting for the background indexer: for a bulk load followed by
// searches (benchmarks, tests). Searches are exact either way; only
// their speed depends on it. It is not part of store.Store.
func (s *Store) IndexText(ctx context.Context) error { return s.indexAll(ctx) }

// indexAll runs indexBatch until the queue is empty, then merges the
// index's segments.
func (s *Store) indexAll(ctx context.Context) error {
	for {
		n, err := s.indexBatch(ctx, indexBatchDocs, indexBatchBytes)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	for {
		more, err := s.mergeStep(ctx)
		if err != nil || !more {
			return err
		}
	}
}
