package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/testharness"
)

// searchWords is the vocabulary of generated messages. The first words
// are common, the tokens with LIKE metacharacters, backslashes and
// non-ASCII letters are there to be searched for.
var searchWords = []string{
	"the", "meeting", "report", "budget", "quarterly", "lunch", "tomorrow",
	"50%", "100%_done", "a_b", `c:\path\to`, `back\slash`, "%%", "__init__",
	"Grüße", "STRASSE", "Straße", "ΣΊΣΥΦΟΣ", "привет", "東京都", "naïve", "ﬁle",
	"x.y", "e-mail", "o'brien", "🙂ok", "Zürich", "AbC", "abc", "ab",
}

// genMessage makes a message from vocabulary words; the common word "the"
// is in about 60% of them and "rare<i>" in message i only.
func genMessage(r *rand.Rand, i int) string {
	var subj, body []string
	for n := 2 + r.IntN(4); n > 0; n-- {
		subj = append(subj, searchWords[1+r.IntN(len(searchWords)-1)])
	}
	if r.IntN(10) < 6 {
		body = append(body, "The")
	}
	for n := 3 + r.IntN(20); n > 0; n-- {
		body = append(body, searchWords[1+r.IntN(len(searchWords)-1)])
	}
	body = append(body, fmt.Sprintf("rare%dword", i))
	r.Shuffle(len(body), func(a, b int) { body[a], body[b] = body[b], body[a] })
	return "From: gen@example.com\r\nTo: b@example.com\r\nSubject: " + strings.Join(subj, " ") +
		"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Join(body, " ") + "\r\n"
}

// fill appends n generated messages to mbox, in batches.
func fill(t testing.TB, s *Store, acct store.AccountID, mbox store.MailboxID, r *rand.Rand, first, n int) {
	t.Helper()
	ctx := context.Background()
	for done := 0; done < n; {
		var batch []store.AppendMessage
		for ; done < n && len(batch) < 200; done++ {
			st, err := s.Stage(ctx, strings.NewReader(genMessage(r, first+done)), 0)
			if err != nil {
				t.Fatalf("Stage: %v", err)
			}
			batch = append(batch, store.AppendMessage{Body: st})
		}
		if _, err := s.Append(ctx, acct, mbox, batch); err != nil {
			t.Fatalf("Append: %v", err)
		}
		for _, m := range batch {
			m.Body.Discard()
		}
	}
}

// searchNeedles covers rare and common words, needles of one and two
// characters, LIKE metacharacters and the escape character, non-ASCII
// text (and its case folding: ß = ss, final sigma), punctuation and
// needles found nowhere.
var searchNeedles = []string{
	"rare7word", "RARE123WORD", "rare1", "the", "THE ", "meeting", "e", "th", "ab", "é",
	"%", "_", `\`, "50%", "0%_d", "a_b", "a%b", `c:\path`, `\s`, "%%", "__", "_init_",
	"grüße", "GRÜSSE", "strasse", "σίσυφος", "ΣΊΣΥΦΟΣ", "привет", "東京", "naïve", "file",
	"x.y", "e-mail", "o'brien", "🙂", "zürich", "abc", "bc ab", "absent", "", " ",
	"gen@example", "subject", "budget report",
}

// textsOf reads the stored folded texts of mbox: the oracle for SearchText.
func textsOf(t *testing.T, s *Store, mbox store.MailboxID) map[int64][2]string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT m.uid, b.header_text, b.body_text
		FROM messages m JOIN bodies b ON b.id = m.body_id WHERE m.mailbox_id = $1`, mbox)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64][2]string{}
	for rows.Next() {
		var uid int64
		var h, b string
		if err := rows.Scan(&uid, &h, &b); err != nil {
			t.Fatal(err)
		}
		out[uid] = [2]string{h, b}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// expect computes SearchText's answer from the stored texts.
func expect(texts map[int64][2]string, cand []store.UID, scope store.TextScope, needle string) []store.UID {
	n := foldText(needle)
	var out []store.UID
	for uid, tx := range texts {
		if cand != nil && !slices.Contains(cand, store.UID(uid)) {
			continue
		}
		h, b := strings.Contains(tx[0], n), strings.Contains(tx[1], n)
		if scope == store.TextHeader && h || scope == store.TextBody && b || scope == store.TextAll && (h || b) {
			out = append(out, store.UID(uid))
		}
	}
	slices.Sort(out)
	return out
}

// checkSearch compares, for every needle and scope, the indexed search,
// the automatic choice and the old scan with the answer computed from the
// stored texts.
func checkSearch(t *testing.T, s *Store, acct store.AccountID, mbox store.MailboxID, cand []store.UID) {
	t.Helper()
	ctx := context.Background()
	texts := textsOf(t, s, mbox)
	var c []int64
	if cand != nil {
		c = make([]int64, len(cand))
		for i, u := range cand {
			c[i] = int64(u)
		}
	}
	saved := s.search
	defer func() { s.search = saved }()
	var mu sync.Mutex
	hows := map[string]int{}
	for _, needle := range searchNeedles {
		for _, scope := range []store.TextScope{store.TextBody, store.TextHeader, store.TextAll} {
			want := expect(texts, cand, scope, needle)
			old, err := s.searchScan(ctx, mbox, c, scope, foldText(needle))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(old, want) {
				t.Errorf("old scan %d %q = %v, want %v", scope, needle, old, want)
			}
			for _, force := range []searchPlan{planIndex, planAuto} {
				s.search = saved
				s.search.force, s.search.minIndexed = force, 0
				s.search.trace = func(how string) { mu.Lock(); hows[how]++; mu.Unlock() }
				got, err := s.SearchText(ctx, acct, mbox, cand, scope, needle)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Errorf("SearchText(plan %d, scope %d, %q) = %v, want %v", force, scope, needle, got, want)
				}
			}
		}
	}
	if hows["index"] == 0 {
		t.Errorf("the index was never used: %v", hows)
	}
	t.Logf("plans: %v", hows)
}

// TestSearchTextIndexed is the differential test: on generated mailboxes,
// through the index and through the old scan, before and after expunge,
// copy and move, with and without candidates, with other accounts'
// messages (and bodies shared by delivery) in the database.
func TestSearchTextIndexed(t *testing.T) {
	s, _ := openTest(t, Options{})
	if !s.search.indexed {
		t.Fatal("the text index was not created")
	}
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	a, _ := s.CreateAccount(ctx, "a@example.com", "x")
	b, _ := s.CreateAccount(ctx, "b@example.com", "x")
	ainbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	binbox, _ := s.Mailbox(ctx, b.ID, "INBOX")
	fill(t, s, a.ID, ainbox.ID, r, 0, 300)
	fill(t, s, b.ID, binbox.ID, r, 0, 300) // the same rare words, other account
	// One body delivered to both accounts.
	st := stage(t, s, "Subject: shared\r\n\r\nsharedword for both\r\n")
	if _, err := s.Deliver(ctx, st, []store.DeliveryTarget{{Account: a.ID}, {Account: b.ID}}); err != nil {
		t.Fatal(err)
	}
	checkSearch(t, s, a.ID, ainbox.ID, nil)
	checkSearch(t, s, a.ID, ainbox.ID, []store.UID{3, 7, 8, 100, 150, 299, 301, 5000, 7})

	// After expunge.
	var set store.UIDSet
	for u := store.UID(1); u <= 300; u += 3 {
		set = append(set, store.UIDRange{Start: u, Stop: u})
	}
	if gone, err := s.Expunge(ctx, a.ID, ainbox.ID, set); err != nil || len(gone) != 100 {
		t.Fatalf("Expunge: %d %v", len(gone), err)
	}
	if got, _ := s.SearchText(ctx, a.ID, ainbox.ID, nil, store.TextBody, "rare0word"); len(got) != 0 {
		t.Errorf("expunged message found: %v", got)
	}
	checkSearch(t, s, a.ID, ainbox.ID, nil)

	// After copy and move: the copies share bodies with their originals.
	other, err := s.CreateMailbox(ctx, a.ID, "Other", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Copy(ctx, a.ID, ainbox.ID, other.ID, store.UIDSet{{Start: 1, Stop: 100}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Move(ctx, a.ID, ainbox.ID, other.ID, store.UIDSet{{Start: 150, Stop: 200}}); err != nil {
		t.Fatal(err)
	}
	checkSearch(t, s, a.ID, ainbox.ID, nil)
	checkSearch(t, s, a.ID, other.ID, nil)
	if got, _ := s.SearchText(ctx, a.ID, ainbox.ID, nil, store.TextBody, "rare160word"); len(got) != 0 {
		t.Errorf("moved message still found in its source: %v", got)
	}
	if got, _ := s.SearchText(ctx, a.ID, other.ID, nil, store.TextBody, "rare160word"); len(got) != 1 {
		t.Errorf("moved message not found in its destination: %v", got)
	}
	// Another account's mailbox is refused, not searched.
	if _, err := s.SearchText(ctx, b.ID, ainbox.ID, nil, store.TextAll, "the"); err == nil {
		t.Error("SearchText of another account's mailbox succeeded")
	}
}

func TestLikePattern(t *testing.T) {
	for in, want := range map[string]string{
		"":        "%%",
		"abc":     "%abc%",
		"50%":     `%50\%%`,
		"a_b":     `%a\_b%`,
		`c:\x`:    `%c:\\x%`,
		`%_\`:     `%\%\_\\%`,
		"grüße":   "%grüße%",
		"it's %s": `%it's \%s%`,
	} {
		if got := likePattern(in); got != want {
			t.Errorf("likePattern(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHasTrigram(t *testing.T) {
	for _, c := range []struct {
		s            string
		narrow, wide bool
	}{
		{"", false, false}, {"e", false, false}, {"ab", false, false}, {"a b c", false, false},
		{"abc", true, true}, {"x.abc", true, true}, {"50%", false, false}, {"100%", true, true},
		{"ééé", false, true}, {"grüße", false, true}, {"strasse", true, true}, {"東京", false, false},
		{"東京都", false, true}, {"ab_c", false, false}, {"%%%", false, false},
	} {
		if got := hasTrigram(c.s, false); got != c.narrow {
			t.Errorf("hasTrigram(%q, narrow) = %v", c.s, got)
		}
		if got := hasTrigram(c.s, true); got != c.wide {
			t.Errorf("hasTrigram(%q, wide) = %v", c.s, got)
		}
	}
}

// TestSearchPlanChoice checks the choice between index and scan on a
// database of a few thousand bodies, and the plan PostgreSQL makes of the
// indexed query: a bitmap of the trigram index, never a sequential scan
// of the bodies.
func TestSearchPlanChoice(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	big, _ := s.CreateAccount(ctx, "big@example.com", "x")
	small, _ := s.CreateAccount(ctx, "small@example.com", "x")
	bigIn, _ := s.Mailbox(ctx, big.ID, "INBOX")
	smallIn, _ := s.Mailbox(ctx, small.ID, "INBOX")
	fill(t, s, big.ID, bigIn.ID, r, 0, 3000)
	fill(t, s, small.ID, smallIn.ID, r, 3000, 300)
	if _, err := s.pool.Exec(ctx, `ANALYZE bodies`); err != nil {
		t.Fatal(err)
	}
	var how string
	s.search.trace = func(h string) { how = h }
	for _, c := range []struct {
		acct   store.AccountID
		mbox   store.MailboxID
		needle string
		want   string
	}{
		{big.ID, bigIn.ID, "rare17word", "index"},
		{big.ID, bigIn.ID, "the", "index"}, // ~60% of the database, the mailbox is most of it
		{big.ID, bigIn.ID, "e", "scan"},    // no trigram
		{big.ID, bigIn.ID, "ab", "scan"},
		{small.ID, smallIn.ID, "rare3017word", "index"},
		{small.ID, smallIn.ID, "the", "scan after sample"}, // common, and the mailbox is 10% of the database
		{small.ID, smallIn.ID, "meeting", "scan after sample"},
	} {
		var got []store.UID
		// TABLESAMPLE SYSTEM may (rarely) pick no page; the search then
		// goes by the limit: try again.
		for try := 0; try < 3; try++ {
			how = ""
			var err error
			got, err = s.SearchText(ctx, c.acct, c.mbox, nil, store.TextBody, c.needle)
			if err != nil {
				t.Fatal(err)
			}
			if how == c.want {
				break
			}
		}
		if how != c.want {
			t.Errorf("%q in mailbox %d ran as %q, want %q", c.needle, c.mbox, how, c.want)
		}
		if strings.HasPrefix(c.needle, "rare") && len(got) != 1 {
			t.Errorf("%q: %v, want one message", c.needle, got)
		}
	}
	// Without the sample the bound stops the index after k+1 bodies.
	s.search.force = planIndex
	how = ""
	got, err := s.SearchText(ctx, small.ID, smallIn.ID, nil, store.TextBody, "the")
	if err != nil || how != "scan after limit" {
		t.Errorf("forced index, common word in the small mailbox: %q %v", how, err)
	}
	if want, _ := s.searchScan(ctx, smallIn.ID, nil, store.TextBody, "the"); !slices.Equal(got, want) {
		t.Errorf("after the limit: %v, want %v", got, want)
	}
	s.search.force = planAuto

	// The plans of the indexed query, with the settings it runs with.
	for _, c := range []struct {
		scope  store.TextScope
		needle string
		index  string
	}{
		{store.TextBody, "rare17word", "Bitmap Index Scan on " + bodyTrgmIndex},
		{store.TextBody, "the", "Bitmap Index Scan on " + bodyTrgmIndex},
		{store.TextAll, "quarterly", "Bitmap Index Scan on " + headerTrgmIndex},
	} {
		plan := explain(t, s, indexedSetup, indexedQuery(c.scope), smallIn.ID, likePattern(c.needle), int64(301), nil)
		// messages are not analyzed: the join must not AND a bitmap of
		// the whole mailbox per body found (it probes the (body, mailbox)
		// index, or hashes the mailbox's messages once).
		if !strings.Contains(plan, c.index) || strings.Contains(plan, "Seq Scan on bodies") || strings.Contains(plan, "BitmapAnd") ||
			strings.HasPrefix(c.needle, "rare") && !strings.Contains(plan, "Index Scan using messages_body_mailbox") {
			t.Errorf("plan of %q (scope %d):\n%s", c.needle, c.scope, plan)
		}
		t.Logf("plan of %q (scope %d):\n%s", c.needle, c.scope, plan)
	}
	// The scan (needles without a trigram) goes through the mailbox's
	// messages and reads each one's body by its key: never all bodies,
	// never the trigram index.
	plan := explain(t, s, "", scanQuery(store.TextAll), smallIn.ID, nil, "e")
	if !strings.Contains(plan, "bodies_pkey") || strings.Contains(plan, "Seq Scan on bodies") ||
		strings.Contains(plan, "trgm") || !strings.Contains(plan, "mailbox_id = ") {
		t.Errorf("plan of the scan:\n%s", plan)
	}
	t.Logf("plan of the scan:\n%s", plan)
}

// explain runs EXPLAIN ANALYZE of q after setup ("": none).
func explain(t *testing.T, s *Store, setup, q string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	var out []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if setup != "" {
			if _, err := tx.Exec(ctx, setup); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) `+q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			out = append(out, line)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}

// TestSearchTextWithoutExtension opens the store as a role that may not
// create extensions (no CREATE privilege on the database): Open succeeds,
// logs once why there is no text index, and searches scan. Once the role
// gets the privilege, the next Open creates the index.
func TestSearchTextWithoutExtension(t *testing.T) {
	pg := testharness.PG(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := fmt.Sprintf("noext_%d", rand.Uint32())
	if _, err := admin.Exec(ctx, `CREATE ROLE `+role+` LOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pg.DSN("postgres"))
		if err == nil {
			c.Exec(context.Background(), `DROP ROLE IF EXISTS `+role)
			c.Close(context.Background())
		}
	})
	dsn := pg.NewDatabase(t)
	name := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	sup, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close(ctx)
	// The role may create tables (the schema) but not extensions.
	if _, err := sup.Exec(ctx, `GRANT CREATE ON SCHEMA public TO `+role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Let the database (dropped after this) take the role's objects.
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			c.Exec(context.Background(), `DROP OWNED BY `+role+` CASCADE`)
			c.Close(context.Background())
		}
	})
	roleDSN := strings.Replace(dsn, "://postgres@", "://"+role+"@", 1)

	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	s := openDSN(t, roleDSN, Options{Logger: logger})
	if s.search.indexed {
		t.Fatal("text index reported without the privilege to create it")
	}
	a, _ := s.CreateAccount(ctx, "a@example.com", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	fill(t, s, a.ID, inbox.ID, rand.New(rand.NewPCG(5, 6)), 0, 150)
	var hows []string
	s.search.trace = func(h string) { hows = append(hows, h) }
	s.search.minIndexed = 0
	for i := 0; i < 3; i++ {
		got, err := s.SearchText(ctx, a.ID, inbox.ID, nil, store.TextBody, "rare42word")
		if err != nil || len(got) != 1 || got[0] != 43 {
			t.Fatalf("SearchText without index: %v %v", got, err)
		}
	}
	if !slices.Equal(hows, []string{"scan", "scan", "scan"}) {
		t.Errorf("without index the searches ran as %v", hows)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if n := strings.Count(out, "no text index"); n != 1 {
		t.Errorf("logged %d times about the missing text index:\n%s", n, out)
	}
	s.Close()

	if _, err := admin.Exec(ctx, `GRANT CREATE ON DATABASE "`+name+`" TO `+role); err != nil {
		t.Fatal(err)
	}
	s = openDSN(t, roleDSN, Options{})
	if !s.search.indexed {
		t.Fatal("text index not created once the role may create the extension")
	}
	s.search.minIndexed = 0
	hows = nil
	s.search.trace = func(h string) { hows = append(hows, h) }
	got, err := s.SearchText(ctx, a.ID, inbox.ID, nil, store.TextBody, "rare42word")
	if err != nil || len(got) != 1 || got[0] != 43 || !slices.Equal(hows, []string{"index"}) {
		t.Errorf("SearchText with the index built over existing bodies: %v %v %v", got, hows, err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestTextCompression checks migration 3: where the server supports lz4,
// the search text columns use it.
func TestTextCompression(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SET LOCAL default_toast_compression = lz4`)
		return err
	})
	if err != nil {
		t.Skipf("server without lz4: %v", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT attname, attcompression::text FROM pg_attribute
		WHERE attrelid = 'bodies'::regclass AND attname IN ('header_text', 'body_text')`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var name, c string
		if err := rows.Scan(&name, &c); err != nil {
			t.Fatal(err)
		}
		if n++; c != "l" {
			t.Errorf("%s compression %q, want lz4", name, c)
		}
	}
	if rows.Err() != nil || n != 2 {
		t.Errorf("columns: %d %v", n, rows.Err())
	}
}
