package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/skrytka/skrytka/internal/store"
)

// wtx is one write transaction: the pgx transaction and the changes to
// announce when it commits.
type wtx struct {
	s       *Store
	tx      pgx.Tx
	ctx     context.Context
	changes []store.Change
	after   []func() // run once the transaction committed
	later   []deferred
}

// deferred is a statement whose result nothing in the transaction needs
// before commit: it is sent in one batch with the NOTIFY at the end, saving
// round trips while locks are held.
type deferred struct {
	sql   string
	args  []any
	check func(pgconn.CommandTag) error // nil: no check
}

// defer queues a statement for the final batch.
func (w *wtx) deferExec(check func(pgconn.CommandTag) error, sql string, args ...any) {
	w.later = append(w.later, deferred{sql: sql, args: args, check: check})
}

// write runs fn in a transaction and sends its changes with NOTIFY as the
// transaction's last statements (PostgreSQL delivers them after commit).
// The deferred statements, the NOTIFY and the COMMIT travel as one
// pipelined batch. Deadlocks and serialization failures are retried.
func (s *Store) write(ctx context.Context, fn func(w *wtx) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	var after []func()
	var err error
	for attempt := 0; attempt < maxTxAttempts; attempt++ {
		after, err = s.writeOnce(ctx, fn)
		if !retryable(err) {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	if err != nil {
		return translate(err)
	}
	for _, f := range after {
		f()
	}
	return nil
}

func (s *Store) writeOnce(ctx context.Context, fn func(w *wtx) error) ([]func(), error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// A connection left inside a transaction (a failed pipeline) is
	// destroyed by the pool on release, never reused.
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	w := &wtx{s: s, tx: tx, ctx: ctx}
	if err := fn(w); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	committed, err := w.flush(true)
	if err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	if !committed {
		if err := tx.Commit(ctx); err != nil {
			return nil, err
		}
	}
	return w.after, nil
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func (w *wtx) publish(c store.Change) { w.changes = append(w.changes, c) }

// flush sends the NOTIFY and the deferred statements as one batch; with
// commit set it appends COMMIT to that batch and reports whether it did
// (it does not when there is nothing else to send).
func (w *wtx) flush(commit bool) (committed bool, err error) {
	if len(w.changes) > 0 {
		payloads := make([]string, len(w.changes))
		for i, c := range w.changes {
			payloads[i] = encodeChange(c)
		}
		w.changes = nil
		w.deferExec(nil, `SELECT pg_notify('`+notifyChannel+`', p) FROM unnest($1::text[]) AS t(p)`, payloads)
	}
	later := w.later
	w.later = nil
	if len(later) == 0 {
		return false, nil
	}
	b := &pgx.Batch{}
	for _, d := range later {
		b.Queue(d.sql, d.args...)
	}
	if commit {
		b.Queue(`COMMIT`)
	}
	br := w.tx.SendBatch(w.ctx, b)
	for _, d := range later {
		tag, err := br.Exec()
		if err == nil && d.check != nil {
			err = d.check(tag)
		}
		if err != nil {
			br.Close()
			return false, err
		}
	}
	if commit {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return false, err
		}
		if tag.String() != "COMMIT" {
			br.Close()
			return false, fmt.Errorf("commit ended as %q", tag.String())
		}
		br.Close() // committed: nothing after it can undo that
		return true, nil
	}
	return false, br.Close()
}

const mailboxCols = `id, account_id, name, special_use, noselect, uidvalidity, uidnext, highest_modseq, messages, unseen, deleted, size, recent_uid`

func scanMailbox(row pgx.Row) (store.Mailbox, error) {
	dest, finish := mailboxDest()
	err := row.Scan(dest...)
	return finish(), err
}

// mailboxDest returns scan targets for mailboxCols and a function that
// builds the Mailbox from them after Scan.
func mailboxDest() ([]any, func() store.Mailbox) {
	var m store.Mailbox
	var id, acct, uv, next, hms, msgs, unseen, del, recent int64
	var use string
	dest := []any{&id, &acct, &m.Name, &use, &m.NoSelect, &uv, &next, &hms, &msgs, &unseen, &del, &m.Size, &recent}
	return dest, func() store.Mailbox {
		m.ID, m.Account, m.SpecialUse = store.MailboxID(id), store.AccountID(acct), store.SpecialUse(use)
		m.UIDValidity, m.UIDNext, m.HighestModSeq = uint32(uv), store.UID(next), store.ModSeq(hms)
		m.Messages, m.Unseen, m.Deleted, m.RecentUID = uint32(msgs), uint32(unseen), uint32(del), store.UID(recent)
		return m
	}
}

// lockAccount locks the account row (first in the lock order) and returns
// its quota and usage.
func (w *wtx) lockAccount(acct store.AccountID) (quota, used int64, err error) {
	err = w.tx.QueryRow(w.ctx, `SELECT quota_bytes, used_bytes FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, acct).Scan(&quota, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	return
}

// lockMailbox locks a mailbox of acct and returns its current state; a
// mailbox of another account is ErrNotFound.
func (w *wtx) lockMailbox(acct store.AccountID, id store.MailboxID) (store.Mailbox, error) {
	m, err := scanMailbox(w.tx.QueryRow(w.ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE id = $1 AND account_id = $2 FOR NO KEY UPDATE`, id, acct))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, store.ErrNotFound
	}
	return m, err
}

// lockAccountMailbox locks the account row and then one of its mailboxes
// in one round trip (the lock order), returning quota, usage and the
// selectable mailbox.
func (w *wtx) lockAccountMailbox(acct store.AccountID, id store.MailboxID) (quota, used int64, m store.Mailbox, err error) {
	dest, finish := mailboxDest()
	// FOR ... OF a, x locks in range-table order: the account, then the
	// mailbox. No row: the account or the mailbox (of that account) is
	// missing, ErrNotFound either way.
	err = w.tx.QueryRow(w.ctx, `SELECT a.quota_bytes, a.used_bytes, `+prefixed("x", mailboxCols)+`
		FROM accounts a JOIN mailboxes x ON x.account_id = a.id
		WHERE a.id = $1 AND x.id = $2 FOR NO KEY UPDATE OF a, x`,
		acct, id).Scan(append([]any{&quota, &used}, dest...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, m, store.ErrNotFound
	}
	if err != nil {
		return 0, 0, m, err
	}
	m = finish()
	if m.NoSelect {
		err = store.ErrNoSelect
	}
	return
}

// prefixed qualifies each column of a comma-separated list with t.
func prefixed(t, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = t + "." + p
	}
	return strings.Join(parts, ", ")
}

// lockSelectable is lockMailbox for operations on messages.
func (w *wtx) lockSelectable(acct store.AccountID, id store.MailboxID) (store.Mailbox, error) {
	m, err := w.lockMailbox(acct, id)
	if err == nil && m.NoSelect {
		err = store.ErrNoSelect
	}
	return m, err
}

// mailboxByName reads (and locks) a mailbox by canonical name.
func (w *wtx) mailboxByName(acct store.AccountID, name string) (store.Mailbox, error) {
	m, err := scanMailbox(w.tx.QueryRow(w.ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = $1 AND name = $2 FOR NO KEY UPDATE`, acct, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, store.ErrNotFound
	}
	return m, err
}

// unrefBodies drops one reference per entry of ids (which may repeat) and
// deletes the bodies nobody refers to any more. Rows are locked in id
// order (the last step of the lock order).
func (w *wtx) unrefBodies(ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	counts := map[int64]int64{}
	for _, id := range ids {
		counts[id]++
	}
	keys := make([]int64, 0, len(counts))
	for id := range counts {
		keys = append(keys, id)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	ns := make([]int64, len(keys))
	for i, k := range keys {
		ns[i] = counts[k]
	}
	if _, err := w.tx.Exec(w.ctx, `SELECT id FROM bodies WHERE id = ANY($1) ORDER BY id FOR UPDATE`, keys); err != nil {
		return err
	}
	rows, err := w.tx.Query(w.ctx, `UPDATE bodies b SET refs = b.refs - d.n
		FROM unnest($1::bigint[], $2::bigint[]) AS d(id, n)
		WHERE b.id = d.id RETURNING b.id, b.refs`, keys, ns)
	if err != nil {
		return err
	}
	var gone []int64
	for rows.Next() {
		var id, refs int64
		if err := rows.Scan(&id, &refs); err != nil {
			rows.Close()
			return err
		}
		if refs <= 0 {
			gone = append(gone, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(gone) == 0 {
		return nil
	}
	if _, err := w.tx.Exec(w.ctx, `DELETE FROM bodies WHERE id = ANY($1)`, gone); err != nil {
		return err
	}
	return w.s.bodies.Delete(w.ctx, w.tx, gone)
}

// sysMask is every stored system flag.
const sysMask = store.FlagSeen | store.FlagAnswered | store.FlagFlagged | store.FlagDeleted | store.FlagDraft | store.FlagDownloaded

// validKeyword reports whether k is an IMAP flag-keyword (RFC 9051 §9:
// an atom; printable ASCII without atom-specials), not starting with "\".
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

// keywordNames maps kws to the mailbox's spellings (the first spelling
// used in a mailbox wins), registering new ones up to
// store.MaxKeywordsPerBox, without duplicates, sorted case-insensitively.
// The mailbox row must be locked.
func (w *wtx) keywordNames(mbox store.MailboxID, kws []string) ([]string, error) {
	if len(kws) == 0 {
		return nil, nil
	}
	folded := make([]string, 0, len(kws))
	spell := make([]string, 0, len(kws))
	seen := map[string]bool{}
	for _, k := range kws {
		l := strings.ToLower(k)
		if seen[l] {
			continue
		}
		seen[l] = true
		folded = append(folded, l)
		spell = append(spell, k)
	}
	known := map[string]string{}
	rows, err := w.tx.Query(w.ctx, `SELECT folded, keyword FROM keywords WHERE mailbox_id = $1 AND folded = ANY($2)`, mbox, folded)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var f, k string
		if err := rows.Scan(&f, &k); err != nil {
			rows.Close()
			return nil, err
		}
		known[f] = k
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var newF, newK []string
	for i, f := range folded {
		if _, ok := known[f]; !ok {
			newF = append(newF, f)
			newK = append(newK, spell[i])
			known[f] = spell[i]
		}
	}
	if len(newF) > 0 {
		var n int
		if err := w.tx.QueryRow(w.ctx, `SELECT count(*) FROM keywords WHERE mailbox_id = $1`, mbox).Scan(&n); err != nil {
			return nil, err
		}
		if n+len(newF) > store.MaxKeywordsPerBox {
			return nil, store.ErrTooManyItems
		}
		if _, err := w.tx.Exec(w.ctx, `INSERT INTO keywords (mailbox_id, folded, keyword)
			SELECT $1, f, k FROM unnest($2::text[], $3::text[]) AS t(f, k)`, mbox, newF, newK); err != nil {
			return nil, err
		}
	}
	out := make([]string, len(folded))
	for i, f := range folded {
		out[i] = known[f]
	}
	sortKeywords(out)
	return out, nil
}

func sortKeywords(kws []string) {
	sort.Slice(kws, func(i, j int) bool { return strings.ToLower(kws[i]) < strings.ToLower(kws[j]) })
}

// normSet sorts and merges a UID set, dropping UID 0, and returns it as
// parallel start/stop arrays for SQL.
func normSet(set store.UIDSet) (starts, stops []int64) {
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
	starts = make([]int64, len(merged))
	stops = make([]int64, len(merged))
	for i, r := range merged {
		starts[i], stops[i] = int64(r.Start), int64(r.Stop)
	}
	return starts, stops
}

// uidRanges is a FROM item of the UID ranges ($a, $b) from normSet, to
// join with messages m ON m.uid BETWEEN r.lo AND r.hi (each range an index
// range scan; merged ranges never yield a row twice).
func uidRanges(a, b string) string {
	return `unnest(` + a + `::bigint[], ` + b + `::bigint[]) AS r(lo, hi)`
}
