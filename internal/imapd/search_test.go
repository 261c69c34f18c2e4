package imapd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/bench/corpus"
	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

func searchFixture(t *testing.T) (*testServer, *rawClient) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: Quarterly report\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nX-Tag: red\r\n\r\nThe numbers are good.\r\n", storeFlags(store.FlagSeen))
	ts.appendMsg(t, "INBOX", "From: Bob <bob@example.com>\r\nTo: alice@example.org\r\nCc: carol@example.net\r\nSubject: =?UTF-8?B?0J/RgNC40LLQtdGC?=\r\nDate: Tue, 10 Mar 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 tomorrow?\r\n", storeFlags(store.FlagFlagged))
	ts.appendMsg(t, "INBOX", "From: Carol <carol@example.net>\r\nSubject: big\r\n\r\n"+strings.Repeat("x", 5000)+"\r\n", storeFlags(store.FlagDeleted))
	rc := ts.login(t)
	rc.ok("s SELECT INBOX")
	return ts, rc
}

func TestSearch(t *testing.T) {
	_, rc := searchFixture(t)
	cases := []struct{ q, want string }{
		{"ALL", "* SEARCH 1 2 3"},
		{"SEEN", "* SEARCH 1"},
		{"UNSEEN", "* SEARCH 2 3"},
		{"FLAGGED", "* SEARCH 2"},
		{"DELETED", "* SEARCH 3"},
		{"NOT DELETED", "* SEARCH 1 2"},
		{"OR SEEN FLAGGED", "* SEARCH 1 2"},
		{"(SEEN) (UNDELETED)", "* SEARCH 1"},
		{"FROM alice", "* SEARCH 1"},
		{"FROM \"Bob\"", "* SEARCH 2"},
		{"FROM \"alice <alice@\"", "* SEARCH 1"}, // matched on "Name <addr>", not the raw header
		{"FROM example.org BODY good", "* SEARCH 1"},
		{"FROM nobody", "* SEARCH"},
		{"TO alice", "* SEARCH 2"},
		{"CC carol", "* SEARCH 2"},
		{"SUBJECT report", "* SEARCH 1"},
		{"SUBJECT привет", "* SEARCH 2"},
		{"HEADER X-Tag red", "* SEARCH 1"},
		{"HEADER X-Tag \"\"", "* SEARCH 1"},
		{"BODY numbers", "* SEARCH 1"},
		{"BODY café", "* SEARCH 2"},
		{"TEXT quarterly", "* SEARCH 1"},
		{"LARGER 1000", "* SEARCH 3"},
		{"SMALLER 1000", "* SEARCH 1 2"},
		{"SENTBEFORE 5-Mar-2026", "* SEARCH 1"},
		{"SENTON 10-Mar-2026", "* SEARCH 2"},
		{"SENTSINCE 3-Mar-2026", "* SEARCH 2 3"}, // 3 has no Date: its INTERNALDATE counts
		{"SINCE 1-Jan-2000", "* SEARCH 1 2 3"},
		{"BEFORE 1-Jan-2000", "* SEARCH"},
		{"2:3", "* SEARCH 2 3"},
		{"UID 1,3", "* SEARCH 1 3"},
		{"NOT UID 1:2", "* SEARCH 3"},
		{"CHARSET UTF-8 BODY café", "* SEARCH 2"},
		{"KEYWORD $Foo", "* SEARCH"},
		{"UNKEYWORD $Foo", "* SEARCH 1 2 3"},
		{"NEW", "* SEARCH 2 3"},
		{"OLD", "* SEARCH"},
	}
	for _, c := range cases {
		u := rc.ok("a SEARCH " + c.q)
		if len(u) != 1 || u[0] != c.want {
			t.Errorf("SEARCH %s: %q, want %q", c.q, u, c.want)
		}
	}
	_, tagged := rc.cmd("b SEARCH CHARSET KOI8-R ALL")
	if !strings.HasPrefix(tagged, "b NO [BADCHARSET") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("c SEARCH BOGUS")
	if !strings.HasPrefix(tagged, "c BAD") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("d SEARCH " + strings.Repeat("(", 100) + "ALL" + strings.Repeat(")", 100))
	if !strings.HasPrefix(tagged, "d BAD") {
		t.Fatalf("deep nesting: %q", tagged)
	}
}

func TestESearchAndSearchRes(t *testing.T) {
	_, rc := searchFixture(t)
	u := rc.ok("a SEARCH RETURN (MIN MAX COUNT ALL) UNDELETED")
	if len(u) != 1 || u[0] != `* ESEARCH (TAG "a") MIN 1 MAX 2 ALL 1:2 COUNT 2` {
		t.Fatalf("%q", u)
	}
	u = rc.ok("b UID SEARCH RETURN () ALL")
	if len(u) != 1 || u[0] != `* ESEARCH (TAG "b") UID ALL 1:3` {
		t.Fatalf("%q", u)
	}
	u = rc.ok("c SEARCH RETURN (COUNT) KEYWORD nothing")
	if len(u) != 1 || u[0] != `* ESEARCH (TAG "c") COUNT 0` {
		t.Fatalf("%q", u)
	}
	u = rc.ok("d SEARCH RETURN (SAVE) FLAGGED")
	if len(u) != 0 {
		t.Fatalf("SAVE alone answers nothing: %q", u)
	}
	u = rc.ok("e FETCH $ (UID)")
	if len(u) != 1 || u[0] != "* 2 FETCH (UID 2)" {
		t.Fatalf("%q", u)
	}
	u = rc.ok("f SEARCH OR $ SEEN")
	if len(u) != 1 || u[0] != "* SEARCH 1 2" {
		t.Fatalf("%q", u)
	}
	rc.ok("g UID SEARCH RETURN (SAVE MIN) ALL")
	u = rc.ok("h UID FETCH $ (UID)")
	if len(u) != 1 || u[0] != "* 1 FETCH (UID 1)" {
		t.Fatalf("%q", u)
	}
	// IMAP4rev2 answers SEARCH with ESEARCH.
	rc.ok("i ENABLE IMAP4rev2")
	u = rc.ok("j SEARCH SEEN")
	if len(u) != 1 || u[0] != `* ESEARCH (TAG "j") ALL 1` {
		t.Fatalf("%q", u)
	}
}

// BenchmarkSearchBig measures, over a socket to an in-process server on
// the real embedded store, SEARCH FROM <address> (the benchmark issue's
// workload 5 sends it so through go-imap) and SEARCH BODY for a rare and
// a common word on a mailbox of IMAPD_BENCH_MESSAGES corpus messages
// (compact profile; default 10,000), with the text index built. Each
// answer is checked against what the corpus generator planted. With
// IMAPD_BENCH_DIR set, the store in that directory is used and kept
// (filled on the first run), so that a 100,000-message run loads once.
func BenchmarkSearchBig(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("IMAPD_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	var mods []func(*Options)
	var st store.Store
	if dir := os.Getenv("IMAPD_BENCH_DIR"); dir != "" {
		es, err := embedded.Open(ctx, dir, embedded.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { es.Close() })
		st = es
		mods = append(mods, func(o *Options) {
			o.Store = st
			o.Auth = &auth.Authenticator{Store: st}
		})
	}
	ts := newTestServer(b, mods...)
	if st == nil {
		st = ts.st
	}
	acct, err := st.Account(ctx, testUser)
	if errors.Is(err, store.ErrNotFound) {
		acct, err = st.CreateAccount(ctx, testUser, passwordHash(b))
	}
	if err != nil {
		b.Fatal(err)
	}
	inbox, err := st.Mailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	gen := &corpus.Generator{Seed: 1, Profile: corpus.Compact}
	var from, rare, common int
	var msgs []store.AppendMessage
	for i := 0; i < n; i++ {
		m := gen.Meta(i)
		if m.Sender == corpus.SearchSender {
			from++
		}
		if m.HasRare {
			rare++
		}
		if m.HasCommon {
			common++
		}
		if i < int(inbox.Messages) {
			continue // loaded by an earlier run
		}
		staged, err := st.Stage(ctx, bytes.NewReader(gen.Message(i)), 0)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, store.AppendMessage{Body: staged})
		if len(msgs) == 1000 || i == n-1 {
			if _, err := st.Append(ctx, acct.ID, inbox.ID, msgs); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	if ix, ok := st.(interface{ IndexText(context.Context) error }); ok {
		if err := ix.IndexText(ctx); err != nil {
			b.Fatal(err)
		}
	}
	rc := ts.login(b)
	rc.ok("s SELECT INBOX")
	run := func(name, cmd string, want int) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				u := rc.ok(cmd)
				got := 0
				if len(u) == 1 {
					got = len(strings.Fields(u[0])) - 2
				}
				if got != want {
					b.Fatalf("%s: %d hits, want %d", cmd, got, want)
				}
			}
		})
	}
	run("From", "f SEARCH FROM "+corpus.SenderAddr(corpus.SearchSender), from)
	run("BodyRare", "r SEARCH BODY "+corpus.RareWord, rare)
	run("BodyCommon", "c SEARCH BODY "+corpus.CommonWord, common)
}
