package embedded

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/mailparse"
	"github.com/skrytka/skrytka/internal/store"
)

// indexMessages are the texts the text-index tests search. Each exercises
// something the trigram index must get exactly right.
var indexMessages = []string{
	"From: Alice Example <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Hello world\r\n\r\nThe quick brown fox jumps over the lazy dog.\r\n",
	"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jorg@example.de>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSch=F6ne Gr=FC=DFe aus der Stra=DFe, =FCber alles.\r\n",
	"From: ivan@example.ru\r\nSubject: =?utf-8?b?0J/RgNC40LLQtdGC?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n0J/RgNC40LLQtdGCLCDQvNC40YAhINCt0YLQviDRgtC10YHRgi4=\r\n",
	"From: syntax@example.org\r\nSubject: fts syntax\r\n\r\nsay \"hi\" to a*b and (c OR d) NEAR e, -minus +plus foo:bar {x} ^caret\r\nAND NOT OR\r\n",
	"From: short@example.org\r\nSubject: tiny\r\n\r\nxy qz a\r\n",
	"From: repeat@example.org\r\nSubject: repeats\r\n\r\naaaaaa abab ababab\r\n",
	"From: bytes@example.org\r\nSubject: raw\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbad \xff\xfe bytes and nul-free text \xc3\xa9\x80 end\r\n",
	"From: nonchar@example.org\r\nSubject: nonchar\r\n\r\nmark x\uffffy and p\ufffeq end\r\n",
}

// indexNeedles are searched in every scope and in every state of the index.
var indexNeedles = []string{
	"ello", "o wor", "QUICK BROWN", "fox jumps", "dog.", "lazy  dog", "brown quick",
	"x", "qz", "y q", "ö", "üb", "grüsse", "GRÜSSE", "straße", "STRASSE", "über alles", "jörg m",
	"привет", "ПРИВЕТ, МИР", "мир!", "тест.",
	`"hi"`, `say "`, `"`, `""`, `a*b`, `(c OR d)`, `OR d`, `NEAR e`, `NEAR`, `-minus`, `+plus`,
	`foo:bar`, `{x}`, `^caret`, `AND NOT OR`, `and`, `*`,
	"aaaa", "aaaaaaa", "ababab", "babab", "bababa",
	"alice@example.org", "example", "bob@", "<alice", "hello world", "hello", "absent needle",
	"\xff\xfe", "\ufffd", "é\x80", "nul-free", "bad \ufffd", "x\ufffdy", "x\uffffy", "p\ufffdq", "p\ufffeq",
}

// folded is a message's folded header and body text.
type folded struct{ header, body string }

func foldRaw(t *testing.T, raw string) folded {
	t.Helper()
	h, b, err := mailparse.ExtractText(strings.NewReader(raw), nil, DefaultMaxTextBytes)
	if err != nil {
		t.Fatal(err)
	}
	return folded{foldText(h), foldText(b)}
}

// textOracle is what SearchText must return: the messages whose folded
// extracted text contains the folded needle, in the scope.
func textOracle(texts map[store.UID]folded, scope store.TextScope, needle string) []store.UID {
	n := foldText(needle)
	var out []store.UID
	for u, f := range texts {
		if scope != store.TextBody && strings.Contains(f.header, n) || scope != store.TextHeader && strings.Contains(f.body, n) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

func appendRaw(t *testing.T, s *Store, acct store.AccountID, mbox store.MailboxID, raws ...string) []store.UID {
	t.Helper()
	ctx := context.Background()
	var msgs []store.AppendMessage
	for _, r := range raws {
		st, err := s.Stage(ctx, strings.NewReader(r), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Discard()
		msgs = append(msgs, store.AppendMessage{Body: st})
	}
	res, err := s.Append(ctx, acct, mbox, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return res.UIDs
}

// checkSearches compares SearchText with the oracle for every needle and
// scope, with no candidates and with candidates (a few and many).
func checkSearches(t *testing.T, s *Store, acct store.AccountID, mbox store.MailboxID, texts map[store.UID]folded, state string) {
	t.Helper()
	ctx := context.Background()
	var all []store.UID
	for u := range texts {
		all = append(all, u)
	}
	slices.Sort(all)
	many := make([]store.UID, 0, 200)
	for u := store.UID(1); u <= 200; u++ {
		many = append(many, u)
	}
	for _, needle := range indexNeedles {
		for _, scope := range []store.TextScope{store.TextHeader, store.TextBody, store.TextAll} {
			want := textOracle(texts, scope, needle)
			for _, cand := range [][]store.UID{nil, all, many} {
				got, err := s.SearchText(ctx, acct, mbox, cand, scope, needle)
				if err != nil {
					t.Fatalf("%s: SearchText(%d, %q): %v", state, scope, needle, err)
				}
				if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("%s: SearchText(scope %d, %q, %d candidates) = %v, want %v", state, scope, needle, len(cand), got, want)
				}
			}
		}
	}
}

// checkIndexConsistent checks the index invariant: every (account, body)
// pair with a message is queued or indexed, not both, and nothing else is.
func checkIndexConsistent(t *testing.T, s *Store) {
	t.Helper()
	keys := func(q string) map[int64]bool {
		rows, err := s.rdb.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[int64]bool{}
		for rows.Next() {
			var k int64
			rows.Scan(&k)
			m[k] = true
		}
		return m
	}
	want := keys(`SELECT DISTINCT (b.account_id << 40) | m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id`)
	queued := keys(`SELECT key FROM textq`)
	indexed := keys(`SELECT rowid FROM textidx`)
	for k := range want {
		if queued[k] == indexed[k] {
			t.Errorf("key %#x: queued %v, indexed %v (want exactly one)", k, queued[k], indexed[k])
		}
	}
	for k := range queued {
		if !want[k] {
			t.Errorf("key %#x queued without a message", k)
		}
	}
	for k := range indexed {
		if !want[k] {
			t.Errorf("key %#x indexed without a message", k)
		}
	}
}

// TestTextIndexExact checks that SearchText is an exact case-insensitive
// substring match for every needle (middle of words, across spaces and
// punctuation, one and two characters, decoded non-ASCII text, FTS5
// syntax characters, quotes, invalid bytes), whether the texts are still
// queued, indexed, or the store was reopened.
func TestTextIndexExact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{driver: testDriver})
	a, _ := s.CreateAccount(ctx, "idx@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	// Noise in a second account: the same words must not leak across.
	b, _ := s.CreateAccount(ctx, "other@example.org", "x")
	binbox, _ := s.Mailbox(ctx, b.ID, store.InboxName)
	appendRaw(t, s, b.ID, binbox.ID, indexMessages...)

	raws := map[store.UID]folded{}
	uids := appendRaw(t, s, a.ID, inbox.ID, indexMessages...)
	for i, u := range uids {
		raws[u] = foldRaw(t, indexMessages[i])
	}
	// The queue is whatever the background indexer left: usually all.
	checkSearches(t, s, a.ID, inbox.ID, raws, "queued")
	checkIndexConsistent(t, s)
	if err := s.indexAll(ctx); err != nil {
		t.Fatal(err)
	}
	var queued int
	s.rdb.QueryRow(`SELECT count(*) FROM textq`).Scan(&queued)
	if queued != 0 {
		t.Fatalf("%d rows still queued after indexAll", queued)
	}
	checkSearches(t, s, a.ID, inbox.ID, raws, "indexed")
	checkIndexConsistent(t, s)

	// Half indexed, half queued.
	more := appendRaw(t, s, a.ID, inbox.ID, indexMessages...)
	for i, u := range more {
		raws[u] = foldRaw(t, indexMessages[i])
	}
	checkSearches(t, s, a.ID, inbox.ID, raws, "mixed")

	s.Close()
	s = openTest(t, dir, Options{driver: testDriver})
	defer s.Close()
	checkSearches(t, s, a.ID, inbox.ID, raws, "reopened")
	s.indexAll(ctx)
	checkSearches(t, s, a.ID, inbox.ID, raws, "reopened, indexed")
	checkIndexConsistent(t, s)
}

// TestTextIndexChanges checks that expunge, copy, move, multi-account
// delivery and account deletion keep the index in step: gone messages are
// not found, copies are found where they went, and one account's
// removals do not take another's rows.
func TestTextIndexChanges(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{driver: testDriver})
	defer s.Close()
	a, _ := s.CreateAccount(ctx, "a@example.org", "x")
	b, _ := s.CreateAccount(ctx, "b@example.org", "x")
	ainbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	binbox, _ := s.Mailbox(ctx, b.ID, store.InboxName)
	arch, err := s.CreateMailbox(ctx, a.ID, "Projects", "")
	if err != nil {
		t.Fatal(err)
	}
	search := func(acct store.AccountID, mbox store.MailboxID, needle string) []store.UID {
		t.Helper()
		got, err := s.SearchText(ctx, acct, mbox, nil, store.TextAll, needle)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	expect := func(what string, got []store.UID, want ...store.UID) {
		t.Helper()
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	for _, indexed := range []bool{false, true} {
		state := map[bool]string{false: "queued", true: "indexed"}[indexed]
		sync := func() {
			if indexed {
				if err := s.indexAll(ctx); err != nil {
					t.Fatal(err)
				}
			}
			checkIndexConsistent(t, s)
		}
		// One body to both accounts.
		st, _ := s.Stage(ctx, strings.NewReader("Subject: shared\r\n\r\nzebracrossing "+state+"\r\n"), 0)
		res, err := s.Deliver(ctx, st, []store.DeliveryTarget{{Account: a.ID}, {Account: b.ID}})
		if err != nil || res[0] != nil || res[1] != nil {
			t.Fatal(err, res)
		}
		st.Discard()
		sync()
		au := search(a.ID, ainbox.ID, "zebracrossing "+state)
		bu := search(b.ID, binbox.ID, "zebracrossing "+state)
		if len(au) != 1 || len(bu) != 1 {
			t.Fatalf("%s: delivered to two accounts, found %v and %v", state, au, bu)
		}
		// Copy to Archive: found in both mailboxes.
		cres, err := s.Copy(ctx, a.ID, ainbox.ID, arch.ID, store.UIDSetOf(au...))
		if err != nil {
			t.Fatal(err)
		}
		sync()
		expect(state+": copy, destination", search(a.ID, arch.ID, "zebracrossing "+state), cres.DstUIDs...)
		expect(state+": copy, source", search(a.ID, ainbox.ID, "zebracrossing "+state), au...)
		// Expunge in the INBOX: the Archive copy stays found (same body).
		if _, err := s.Expunge(ctx, a.ID, ainbox.ID, store.UIDSetOf(au...)); err != nil {
			t.Fatal(err)
		}
		sync()
		expect(state+": expunged", search(a.ID, ainbox.ID, "zebracrossing "+state))
		expect(state+": copy after expunge of the original", search(a.ID, arch.ID, "zebracrossing "+state), cres.DstUIDs...)
		// Move back to the INBOX.
		mres, err := s.Move(ctx, a.ID, arch.ID, ainbox.ID, store.UIDSetOf(cres.DstUIDs...))
		if err != nil {
			t.Fatal(err)
		}
		sync()
		expect(state+": moved, destination", search(a.ID, ainbox.ID, "zebracrossing "+state), mres.DstUIDs...)
		expect(state+": moved, source", search(a.ID, arch.ID, "zebracrossing "+state))
		// Expunge the last copy in a: b still finds its own.
		if _, err := s.Expunge(ctx, a.ID, ainbox.ID, store.UIDSetOf(mres.DstUIDs...)); err != nil {
			t.Fatal(err)
		}
		sync()
		expect(state+": all gone in a", search(a.ID, ainbox.ID, "zebracrossing "+state))
		expect(state+": b keeps its copy", search(b.ID, binbox.ID, "zebracrossing "+state), bu...)
	}
	if err := s.DeleteAccount(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	checkIndexConsistent(t, s)
	var left int
	_, lo, hi := textKeyRange(b.ID)
	s.rdb.QueryRow(`SELECT count(*) FROM textidx WHERE rowid BETWEEN ? AND ?`, lo, hi).Scan(&left)
	if left != 0 {
		t.Errorf("%d index rows left for a deleted account", left)
	}
}

// TestTextIndexMigration rewinds a store to schema version 3 (no index,
// a stored text with invalid UTF-8 and NUL, as earlier versions wrote
// it) and checks that migration 4 queues every text, cleans the bad one,
// and that searches are exact before and after the queue is indexed.
func TestTextIndexMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{driver: testDriver})
	a, _ := s.CreateAccount(ctx, "mig@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	raws := map[store.UID]folded{}
	uids := appendRaw(t, s, a.ID, inbox.ID, indexMessages...)
	for i, u := range uids {
		raws[u] = foldRaw(t, indexMessages[i])
	}
	s.Close()

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "skrytka.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TRIGGER textidx_ins`, `DROP TRIGGER textidx_del`, `DROP TABLE textidx`, `DROP TABLE textq`,
		// What foldText stored before it cleaned text: raw bytes, NUL.
		`UPDATE texts SET body = CAST(X'62616420FF00FE20627974657320656E64' AS TEXT) WHERE blob_id = (SELECT max(blob_id) FROM texts)`,
		`UPDATE schema_version SET version = 3`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	last := raws[uids[len(uids)-1]]
	raws[uids[len(uids)-1]] = folded{last.header, "bad \ufffd\ufffd bytes end"}

	s = openTest(t, dir, Options{driver: testDriver})
	defer s.Close()
	var body string
	s.rdb.QueryRow(`SELECT body FROM texts WHERE blob_id = (SELECT max(blob_id) FROM texts)`).Scan(&body)
	if body != "bad \ufffd\ufffd bytes end" {
		t.Errorf("migrated text %q, want invalid bytes as U+FFFD and no NUL", body)
	}
	checkIndexConsistent(t, s)
	checkSearches(t, s, a.ID, inbox.ID, raws, "migrated")
	if err := s.indexAll(ctx); err != nil {
		t.Fatal(err)
	}
	checkSearches(t, s, a.ID, inbox.ID, raws, "migrated, indexed")
	checkIndexConsistent(t, s)
}

// TestIndexerStartsAfterOpen: texts still queued when a store is closed
// are indexed after the next Open without any write or search to start it.
func TestIndexerStartsAfterOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{driver: testDriver, indexStartDelay: time.Hour})
	a, _ := s.CreateAccount(ctx, "later@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	appendRaw(t, s, a.ID, inbox.ID, indexMessages...)
	// Close before the indexer, kicked by the append, can take a batch
	// (it waits for a quiet writer first).
	s.Close()
	s = openTest(t, dir, Options{driver: testDriver, indexStartDelay: time.Hour})
	var queued int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM textq`).Scan(&queued); err != nil || queued == 0 {
		s.Close()
		t.Skipf("nothing left queued to test with (%d, %v)", queued, err)
	}
	time.Sleep(300 * time.Millisecond)
	s.rdb.QueryRow(`SELECT count(*) FROM textq`).Scan(&queued)
	if queued == 0 {
		t.Fatal("the indexer ran before its start delay")
	}
	s.Close()
	s = openTest(t, dir, Options{driver: testDriver, indexStartDelay: 10 * time.Millisecond})
	defer s.Close()
	for i := 0; ; i++ {
		s.rdb.QueryRow(`SELECT count(*) FROM textq`).Scan(&queued)
		if queued == 0 {
			break
		}
		if i == 200 {
			t.Fatalf("%d texts still queued 20 s after Open", queued)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTextIndexLargeText: a text over indexMaxTextBytes is never put in
// the index (the writer would wait for it); it stays queued, marked big,
// searches still find it exactly, and expunging it clears its row.
func TestTextIndexLargeText(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{driver: testDriver})
	defer s.Close()
	a, _ := s.CreateAccount(ctx, "big@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	line := strings.Repeat("filler words for a long text ", 3) + "\r\n"
	bigRaw := "From: big@example.org\r\nSubject: digest\r\n\r\n" +
		strings.Repeat(line, indexMaxTextBytes/len(line)+10) + "needle-at-the-end zebra\r\n"
	raws := append([]string{bigRaw}, indexMessages...)
	texts := map[store.UID]folded{}
	for i, u := range appendRaw(t, s, a.ID, inbox.ID, raws...) {
		texts[u] = foldRaw(t, raws[i])
	}
	if err := s.indexAll(ctx); err != nil {
		t.Fatal(err)
	}
	var queued, big int
	s.rdb.QueryRow(`SELECT count(*), coalesce(sum(big), 0) FROM textq`).Scan(&queued, &big)
	if queued != 1 || big != 1 {
		t.Fatalf("after indexAll: %d queued, %d marked big; want the large text alone, marked", queued, big)
	}
	checkIndexConsistent(t, s)
	for _, needle := range []string{"needle-at-the-end", "ZEBRA", "filler words", "digest", "quick brown"} {
		for _, scope := range []store.TextScope{store.TextHeader, store.TextBody, store.TextAll} {
			got, err := s.SearchText(ctx, a.ID, inbox.ID, nil, scope, needle)
			if err != nil {
				t.Fatal(err)
			}
			if want := textOracle(texts, scope, needle); !slices.Equal(got, want) && len(got)+len(want) > 0 {
				t.Errorf("SearchText(scope %d, %q) = %v, want %v", scope, needle, got, want)
			}
		}
	}
	if got, _ := s.SearchText(ctx, a.ID, inbox.ID, nil, store.TextAll, "zebra"); len(got) != 1 {
		t.Fatalf("the large text is not found: %v", got)
	}
	var bigUID store.UID
	for u, f := range texts {
		if strings.Contains(f.body, "zebra") {
			bigUID = u
		}
	}
	if _, err := s.Expunge(ctx, a.ID, inbox.ID, store.UIDSetOf(bigUID)); err != nil {
		t.Fatal(err)
	}
	s.rdb.QueryRow(`SELECT count(*) FROM textq`).Scan(&queued)
	if queued != 0 {
		t.Errorf("%d rows queued after the large text was expunged", queued)
	}
	checkIndexConsistent(t, s)
}
