package imapd

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// indexOf returns the position of the first line with prefix p, or -1.
func indexOf(lines []string, p string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, p) {
			return i
		}
	}
	return -1
}

// TestNewKeywordAnnounced: when another session adds a keyword the
// mailbox did not have, a session with the mailbox selected gets FLAGS
// and PERMANENTFLAGS listing it before the FETCH that shows it (RFC 9051
// §7.3.5), between commands and in IDLE; the session that stored it too.
func TestNewKeywordAnnounced(t *testing.T) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", "Subject: one\r\n\r\none\r\n", storeFlags())
	ts.appendMsg(t, "INBOX", "Subject: two\r\n\r\ntwo\r\n", storeFlags())
	a := ts.login(t)
	b := ts.login(t)
	ro := ts.login(t)
	a.ok("a1 ENABLE IMAP4rev2")
	u := a.ok("a2 SELECT INBOX")
	if !hasLine(u, `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`) {
		t.Fatalf("SELECT: %q", u)
	}
	ro.ok("r1 ENABLE IMAP4rev2")
	ro.ok("r2 EXAMINE INBOX")
	b.ok("b1 ENABLE IMAP4rev2")
	b.ok("b2 SELECT INBOX")

	// The storing session itself: FLAGS before its own FETCH.
	u = b.ok("b3 STORE 1 +FLAGS ($Work)")
	want := []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work \*)] flags permitted`,
		`* 1 FETCH (UID 1 FLAGS ($Work))`,
	}
	if strings.Join(u, "\n") != strings.Join(want, "\n") {
		t.Fatalf("STORE in the storing session:\n got %q\nwant %q", u, want)
	}
	// Another session, between commands.
	u = a.ok("a3 NOOP")
	if strings.Join(u, "\n") != strings.Join(want, "\n") {
		t.Fatalf("NOOP:\n got %q\nwant %q", u, want)
	}
	// A keyword it already knows (any case) is not announced again.
	b.ok("b4 STORE 2 +FLAGS.SILENT ($work)")
	u = a.ok("a4 NOOP")
	if indexOf(u, "* FLAGS") >= 0 || !hasPrefix(u, "* 2 FETCH (UID 2 FLAGS (") {
		t.Fatalf("known keyword: %q", u)
	}
	// A read-only session: FLAGS, PERMANENTFLAGS stay empty.
	u = ro.ok("r3 NOOP")
	if f, p, x := indexOf(u, `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work)`), indexOf(u, "* OK [PERMANENTFLAGS ()]"), indexOf(u, "* 1 FETCH"); f < 0 || p < f || x < p {
		t.Fatalf("EXAMINE session: %q", u)
	}

	// In IDLE, as soon as the change happens.
	a.send("a5 IDLE\r\n")
	if l := a.line(); l != "+ idling" {
		t.Fatalf("%q", l)
	}
	b.ok("b5 STORE 2 +FLAGS.SILENT (Later)")
	want = []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work Later)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work Later \*)] flags permitted`,
		`* 2 FETCH (UID 2 FLAGS ($work Later))`,
	}
	for _, w := range want {
		if l := a.line(); l != w && !(strings.HasPrefix(w, "* 2 FETCH") && strings.HasPrefix(l, "* 2 FETCH") && strings.Contains(l, "Later")) {
			t.Fatalf("IDLE: got %q, want %q", l, w)
		}
	}
	a.send("DONE\r\n")
	if _, tagged := a.until("a5"); tagged != "a5 OK IDLE terminated" {
		t.Fatalf("%q", tagged)
	}
	// A new SELECT lists every keyword from the start.
	u = a.ok("a6 SELECT INBOX")
	if !hasLine(u, `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work Later)`) {
		t.Fatalf("SELECT: %q", u)
	}
}

// changeCountingStore counts Changes calls (the read a session makes to catch
// up with its mailbox).
type changeCountingStore struct {
	store.Store
	changes atomic.Int64
}

func (s *changeCountingStore) Changes(ctx context.Context, acct store.AccountID, mbox store.MailboxID, since store.ModSeq) (store.Delta, error) {
	s.changes.Add(1)
	return s.Store.Changes(ctx, acct, mbox, since)
}

// TestOwnChangesNotReadBack: a session's own STORE and EXPUNGE are not
// read back from the store by its next command, while changes by others
// (also interleaved with its own) still are.
func TestOwnChangesNotReadBack(t *testing.T) {
	var cs *changeCountingStore
	ts := newTestServer(t, func(o *Options) {
		cs = &changeCountingStore{Store: o.Store}
		o.Store = cs
	})
	for i := 0; i < 4; i++ {
		ts.appendMsg(t, "INBOX", "Subject: m\r\n\r\nm\r\n", storeFlags())
	}
	a := ts.login(t)
	b := ts.login(t)
	a.ok("a1 ENABLE IMAP4rev2")
	a.ok("a2 SELECT INBOX")
	b.ok("b1 SELECT INBOX")
	n0 := cs.changes.Load()
	a.ok(`a3 STORE 1 +FLAGS.SILENT (\Flagged)`)
	a.ok(`a4 STORE 2 +FLAGS (\Seen)`)
	a.ok(`a5 STORE 3 +FLAGS.SILENT (\Deleted)`)
	if u := a.ok("a6 EXPUNGE"); len(u) != 1 || u[0] != "* 3 EXPUNGE" {
		t.Fatalf("EXPUNGE: %q", u)
	}
	if u := a.ok("a7 FETCH 1:* (FLAGS)"); len(u) != 3 || u[0] != `* 1 FETCH (FLAGS (\Flagged))` || u[1] != `* 2 FETCH (FLAGS (\Seen))` {
		t.Fatalf("FETCH: %q", u)
	}
	if n := cs.changes.Load() - n0; n != 0 {
		t.Errorf("own changes were read back %d times", n)
	}
	// Another session's change, then one of ours: both seen, the other's
	// read from the store.
	ub := b.ok(`b2 STORE 4 +FLAGS.SILENT (\Answered)`)
	u := a.ok(`a8 STORE 1 -FLAGS.SILENT (\Flagged)`)
	u = append(u, a.ok("a9 FETCH 1 (FLAGS)")...)
	if !hasLine(u, `* 3 FETCH (UID 4 FLAGS (\Answered))`) || !hasLine(u, `* 1 FETCH (FLAGS ())`) {
		t.Fatalf("after another session's STORE: %q", u)
	}
	if cs.changes.Load()-n0 == 0 {
		t.Error("another session's change was not read")
	}
	// b (rev1) still sees everything a did.
	ub = append(ub, b.ok("b3 NOOP")...)
	if !hasLine(ub, "* 3 EXPUNGE") || !hasLine(ub, `* 1 FETCH (UID 1 FLAGS (\Recent))`) || !hasLine(ub, `* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`) {
		t.Fatalf("other session: %q", ub)
	}
}

// TestFetchBodiesOfExpunged: a whole-body FETCH (answered without reading
// metadata) skips a message another session expunged meanwhile, sends no
// EXPUNGE during the FETCH, and streams the others byte for byte.
func TestFetchBodiesOfExpunged(t *testing.T) {
	ts := newTestServer(t)
	a, _ := expungedByOther(t, ts, "Subject: one\r\n\r\none\r\n", "Subject: two\r\n\r\ntwo\r\n")
	u := a.ok("a2 FETCH 1:2 (UID BODY.PEEK[])")
	want := "* 2 FETCH (UID 2 BODY[] {21}\r\nSubject: two\r\n\r\ntwo\r\n)"
	if len(u) != 1 || u[0] != want {
		t.Fatalf("FETCH:\n got %q\nwant %q", u, want)
	}
	if u := a.ok("a3 NOOP"); !hasLine(u, "* 1 EXPUNGE") {
		t.Fatalf("NOOP: %q", u)
	}
}
