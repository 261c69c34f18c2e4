package imapd

import (
	"strings"
	"testing"
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
