package postgres

import (
	"context"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/skrytka/skrytka/internal/store"
)

// SearchText semantics: the stored text and the needle are folded the same
// way (foldText, at staging and here), and a message matches when its
// folded text contains the folded needle: strpos(text, needle) > 0, or
// equally text LIKE '%needle%' with the LIKE metacharacters of the needle
// escaped. Both ways of running it below give exactly that answer; they
// differ in cost only.
//
// Two ways to run it:
//
//   - scan (searchScan): read the text of every candidate message of the
//     mailbox. Costs one text comparison per candidate, whatever the
//     needle.
//   - index (searchIndexed): ask the trigram indexes (textindex.go) for
//     the bodies, database-wide, whose text may contain the needle;
//     PostgreSQL rechecks each of them with LIKE, and the survivors are
//     joined with the mailbox's messages. Costs about one comparison per
//     matching body in the whole database (bodies are shared between
//     mailboxes and accounts, so the index cannot be restricted to one
//     mailbox).
//
// The index wins when the needle is rare in the database compared with
// the number of candidates; the scan wins for a word common across the
// database searched in a mailbox that is a small share of it. PostgreSQL's
// planner cannot tell these apart (it has no statistics for substrings of
// long texts and guesses every LIKE pattern is rare), so the choice is
// made here:
//
//  1. Needles without a trigram (no run of three word characters, e.g.
//     one or two letters), mailboxes or candidate sets smaller than
//     minIndexed, and databases without the index: scan.
//  2. When the bodies table is much larger than the candidate set, a
//     sample of up to maxSampleRows bodies (TABLESAMPLE SYSTEM; an eighth
//     of the candidates at most) estimates how many bodies of the
//     database match; if that is at least half the candidates: scan.
//  3. Otherwise the index, with a bound: it stops after k+1 matching
//     bodies (k = number of candidates) and the search falls back to the
//     scan. A wrong estimate therefore costs at most about twice the scan.
//
// The indexed query runs with enable_seqscan off and custom plans forced
// (SET LOCAL, in its own read-only transaction), so that PostgreSQL never
// turns it into a sequential scan of every body in the database.

// Defaults of searchPlanner.
const (
	// defaultMinIndexed: with fewer candidates the scan costs a few
	// milliseconds, and the index could cost more for a common word.
	defaultMinIndexed = 200
	// maxSampleRows is the largest sample that estimates a needle's
	// frequency in the database; a sample is at most an eighth of the
	// candidates (each sampled body costs as much as a scanned one). It
	// is meant to catch words common in the database (a few percent of
	// the bodies and more), whose trigram bitmap would be large; rarer
	// ones are left to the limit.
	maxSampleRows = 500
	// minSamplePages is the smallest number of pages a sample reads.
	minSamplePages = 8
)

// searchPlan forces one way of running SearchText (tests and benchmarks).
type searchPlan uint8

const (
	planAuto  searchPlan = iota // choose as described above
	planScan                    // always scan
	planIndex                   // the index whenever the needle has a trigram, without sampling
)

// searchPlanner holds what SearchText needs to choose.
type searchPlanner struct {
	indexed    bool // the trigram indexes exist
	wide       bool // pg_trgm counts non-ASCII letters as word characters (database LC_CTYPE)
	minIndexed int64
	force      searchPlan
	// trace, when set (tests), is told how each search ran: "index",
	// "scan", "scan after sample" or "scan after limit".
	trace func(how string)
}

func (p *searchPlanner) traced(how string) {
	if p.trace != nil {
		p.trace(how)
	}
}

// tableSize is PostgreSQL's estimate of a table's size (pg_class; rows is
// -1 before the first VACUUM or ANALYZE).
type tableSize struct {
	rows  float64
	pages int32
}

// SearchText implements store.Store.
func (s *Store) SearchText(ctx context.Context, acct store.AccountID, mbox store.MailboxID, candidates []store.UID, scope store.TextScope, needle string) ([]store.UID, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	// The mailbox check also reads the mailbox's size and the planner's
	// estimate of the bodies table's size.
	var messages int64
	var est tableSize
	err := s.pool.QueryRow(ctx, `SELECT x.messages, c.reltuples, c.relpages FROM mailboxes x, pg_class c
		WHERE x.id = $1 AND x.account_id = $2 AND c.oid = 'bodies'::regclass`, mbox, acct).Scan(&messages, &est.rows, &est.pages)
	if err != nil {
		return nil, translate(err)
	}
	if candidates != nil && len(candidates) == 0 {
		return nil, nil
	}
	var cand []int64
	k := messages
	if candidates != nil {
		cand = make([]int64, len(candidates))
		for i, u := range candidates {
			cand[i] = int64(u)
		}
		k = min(k, int64(len(cand)))
	}
	folded := foldText(needle)
	p := s.search
	if p.indexed && p.force != planScan && (k >= p.minIndexed || p.force == planIndex) && hasTrigram(folded, p.wide) {
		sample := p.force != planIndex && est.rows > 1.5*float64(k)
		uids, how, err := s.searchIndexed(ctx, mbox, cand, scope, folded, k, sample, est)
		if err != nil {
			return nil, err
		}
		p.traced(how)
		if how == "index" {
			return uids, nil
		}
	} else {
		p.traced("scan")
	}
	return s.searchScan(ctx, mbox, cand, scope, folded)
}

// searchScan reads the text of every candidate message of mbox (cand nil:
// every message). The text test is a correlated subquery on purpose:
// PostgreSQL runs it per message of this mailbox through the bodies
// primary key, and cannot turn it into a scan of every body in the
// database (a hash join it otherwise picks when the mailbox is a large
// share of a small database), nor use the trigram indexes.
func (s *Store) searchScan(ctx context.Context, mbox store.MailboxID, cand []int64, scope store.TextScope, folded string) ([]store.UID, error) {
	rows, err := s.pool.Query(ctx, scanQuery(scope), mbox, cand, folded)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []store.UID
	for rows.Next() {
		var uid int64
		if err := rows.Scan(&uid); err != nil {
			return nil, translate(err)
		}
		out = append(out, store.UID(uid))
	}
	return out, translate(rows.Err())
}

// scanQuery is searchScan's query: the UIDs of the messages of mailbox $1
// (among candidates $2, NULL: all) whose text contains $3.
func scanQuery(scope store.TextScope) string {
	var cond string
	switch scope {
	case store.TextHeader:
		cond = `strpos(b.header_text, $3) > 0`
	case store.TextBody:
		cond = `strpos(b.body_text, $3) > 0`
	default:
		cond = `(strpos(b.header_text, $3) > 0 OR strpos(b.body_text, $3) > 0)`
	}
	return `SELECT m.uid FROM messages m
		WHERE m.mailbox_id = $1 AND ($2::bigint[] IS NULL OR m.uid = ANY($2))
		AND (SELECT ` + cond + ` FROM bodies b WHERE b.id = m.body_id) ORDER BY m.uid`
}

// likeCond is the index-usable text test for scope on b, with the LIKE
// pattern in parameter param.
func likeCond(scope store.TextScope, param string) string {
	switch scope {
	case store.TextHeader:
		return `b.header_text LIKE ` + param
	case store.TextBody:
		return `b.body_text LIKE ` + param
	default:
		return `(b.header_text LIKE ` + param + ` OR b.body_text LIKE ` + param + `)`
	}
}

// searchIndexed runs the search through the trigram indexes. how is
// "index" when it did, else the scan should be used instead: "scan after
// sample" when the sample (taken when sample is set) says the needle is
// common in the database, "scan after limit" when more than k bodies
// match. est is the planner's estimate of the bodies table's size.
func (s *Store) searchIndexed(ctx context.Context, mbox store.MailboxID, cand []int64, scope store.TextScope, folded string, k int64, sample bool, est tableSize) (uids []store.UID, how string, err error) {
	pattern := likePattern(folded)
	cond := likeCond(scope, "$2")
	if sample {
		// SYSTEM picks whole pages: at least minSamplePages of them, so
		// that a sample is rarely empty.
		pct := min(100, max(100*float64(min(maxSampleRows, k/8))/est.rows, 100*minSamplePages/float64(max(est.pages, 1))))
		var seen, hit int64
		err := s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE `+cond+`)
			FROM bodies b TABLESAMPLE SYSTEM ($1)`, pct, pattern).Scan(&seen, &hit)
		if err != nil {
			return nil, "", translate(err)
		}
		if seen > 0 && float64(hit)/float64(seen)*est.rows >= float64(k)/2 {
			return nil, "scan after sample", nil
		}
	}
	limit := k + 1
	var found int64
	var list []int64
	err = s.batchTx(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`,
		indexedSetup,
		func(b *pgx.Batch) func(pgx.BatchResults) error {
			b.Queue(indexedQuery(scope), mbox, pattern, limit, cand)
			return func(br pgx.BatchResults) error { return br.QueryRow().Scan(&found, &list) }
		})
	if err != nil {
		return nil, "", err
	}
	if found >= limit {
		return nil, "scan after limit", nil
	}
	if len(list) == 0 {
		return nil, "index", nil
	}
	uids = make([]store.UID, len(list))
	for i, u := range list {
		uids[i] = store.UID(u)
	}
	return uids, "index", nil
}

// indexedSetup is run before indexedQuery, in its transaction: the planner
// must not read every body sequentially (it would if it guessed the
// pattern common), and must plan with the pattern's and the limit's
// values (a generic plan of a cached statement sees neither).
const indexedSetup = `SELECT set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true)`

// indexedQuery finds the bodies matching LIKE pattern $2, at most $3 of
// them, and returns how many it found and, when that is under $3, the
// UIDs of the messages of mailbox $1 (among candidates $4, NULL: all)
// using them.
func indexedQuery(scope store.TextScope) string {
	return `WITH c AS MATERIALIZED (SELECT b.id FROM bodies b WHERE ` + likeCond(scope, "$2") + ` LIMIT $3),
		n AS (SELECT count(*) AS n FROM c)
		SELECT n.n, CASE WHEN n.n < $3 THEN coalesce((SELECT array_agg(m.uid ORDER BY m.uid)
			FROM c JOIN messages m ON m.body_id = c.id
			WHERE m.mailbox_id = $1 AND ($4::bigint[] IS NULL OR m.uid = ANY($4))), '{}') END
		FROM n`
}

// likePattern is the LIKE pattern matching texts that contain s: s with
// LIKE's metacharacters escaped (the default escape character, \), between
// two %.
func likePattern(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('%')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '%', '_':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('%')
	return b.String()
}

// hasTrigram reports whether pg_trgm extracts at least one trigram from
// the LIKE pattern of s, so that the index narrows the search: s has a run
// of three word characters. pg_trgm's word characters are the alphanumeric
// characters of the database's LC_CTYPE: ASCII letters and digits in the C
// locale, more when wide. A character counted here that pg_trgm does not
// count costs speed (a full index scan, bounded), never correctness.
func hasTrigram(s string, wide bool) bool {
	run := 0
	for _, r := range s {
		word := r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') ||
			wide && r >= 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r))
		if !word {
			run = 0
			continue
		}
		if run++; run >= 3 {
			return true
		}
	}
	return false
}
