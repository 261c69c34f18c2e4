package imapd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

func appendRaw(rc *rawClient, tag, mailbox, msg string) string {
	rc.t.Helper()
	rc.send(fmt.Sprintf("%s APPEND %s {%d+}\r\n%s\r\n", tag, mailbox, len(msg), msg))
	_, tagged := rc.until(tag)
	if !strings.HasPrefix(tagged, tag+" OK") {
		rc.t.Fatalf("append: %q", tagged)
	}
	return tagged
}

func TestIdleLiveUpdates(t *testing.T) {
	ts := newTestServer(t)
	a := ts.login(t)
	b := ts.login(t)
	c := ts.login(t)
	a.ok("a1 SELECT INBOX")
	c.ok("c1 SELECT INBOX")
	a.send("a2 IDLE\r\n")
	if l := a.line(); l != "+ idling" {
		t.Fatalf("%q", l)
	}
	appendRaw(b, "b1", "INBOX", "Subject: x\r\n\r\nx\r\n")
	if l := a.line(); l != "* 1 EXISTS" {
		t.Fatalf("IDLE did not see the append: %q", l)
	}
	if l := a.line(); l != "* 1 RECENT" {
		t.Fatalf("%q", l)
	}
	// c polls: NOOP always re-reads the mailbox.
	if u := c.ok("c1b NOOP"); !hasLine(u, "* 1 EXISTS") {
		t.Fatalf("NOOP: %q", u)
	}
	b.ok("b2 SELECT INBOX")
	b.ok(`b3 STORE 1 +FLAGS (\Flagged)`)
	if l := a.line(); l != `* 1 FETCH (UID 1 FLAGS (\Flagged \Recent))` {
		t.Fatalf("IDLE did not see the flag change: %q", l)
	}
	appendRaw(b, "b4", "INBOX", "Subject: y\r\n\r\ny\r\n")
	if l := a.line(); l != "* 2 EXISTS" {
		t.Fatalf("%q", l)
	}
	a.line() // RECENT
	b.ok(`b5 STORE 1 +FLAGS.SILENT (\Deleted)`)
	a.line() // FETCH
	b.ok("b6 EXPUNGE")
	if l := a.line(); l != "* 1 EXPUNGE" {
		t.Fatalf("IDLE did not see the expunge: %q", l)
	}
	a.send("DONE\r\n")
	if _, tagged := a.until("a2"); tagged != "a2 OK IDLE terminated" {
		t.Fatalf("%q", tagged)
	}
	// Session c was not idling: it gets everything with its next command,
	// and no EXPUNGE during FETCH (RFC 9051 §7.5.1).
	u := c.ok("c2 FETCH 1:* (FLAGS)")
	if hasPrefix(u, "* 1 EXPUNGE") {
		t.Fatalf("EXPUNGE during FETCH: %q", u)
	}
	if !hasLine(u, "* 2 EXISTS") {
		t.Fatalf("%q", u)
	}
	u = c.ok("c3 NOOP")
	if !hasLine(u, "* 1 EXPUNGE") {
		t.Fatalf("%q", u)
	}
	u = c.ok("c4 FETCH 1 (UID)")
	if len(u) != 1 || u[0] != "* 1 FETCH (UID 2)" {
		t.Fatalf("%q", u)
	}
}

// expungedByOther puts two messages into INBOX, selects it in two
// sessions and has b expunge message 1; a has not been told yet.
func expungedByOther(t *testing.T, ts *testServer, first, second string) (a, b *rawClient) {
	t.Helper()
	ts.appendMsg(t, "INBOX", first, storeFlags())
	ts.appendMsg(t, "INBOX", second, storeFlags())
	a = ts.login(t)
	b = ts.login(t)
	a.ok("a1 SELECT INBOX")
	b.ok("b1 SELECT INBOX")
	b.ok(`b2 STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("b3 EXPUNGE")
	return a, b
}

func TestNoExpungeDuringStoreSearch(t *testing.T) {
	ts := newTestServer(t)
	a, _ := expungedByOther(t, ts, "Subject: 1\r\n\r\n1\r\n", "Subject: 2\r\n\r\n2\r\n")
	time.Sleep(50 * time.Millisecond)
	u := a.ok(`a2 STORE 2 +FLAGS (\Seen)`)
	if hasPrefix(u, "* 1 EXPUNGE") {
		t.Fatalf("EXPUNGE during STORE: %q", u)
	}
	u = a.ok("a3 SEARCH ALL")
	if hasPrefix(u, "* 1 EXPUNGE") || !hasLine(u, "* SEARCH 2") {
		t.Fatalf("%q", u)
	}
	// UID commands may carry it.
	u = a.ok("a4 UID SEARCH ALL")
	if !hasLine(u, "* 1 EXPUNGE") || !hasLine(u, "* SEARCH 2") {
		t.Fatalf("%q", u)
	}
}

func TestTrackerLarge(t *testing.T) {
	uids := make([]store.UID, 0, 100000)
	for u := store.UID(1); u <= 100000; u++ {
		uids = append(uids, u)
	}
	tr := newTracker(uids)
	if len(tr.runs) != 1 || tr.count() != 100000 || tr.uid(50000) != 50000 || tr.seq(99999) != 99999 {
		t.Fatalf("runs=%d", len(tr.runs))
	}
	for u := store.UID(2); u <= 100000; u += 2 {
		if tr.remove(u) == 0 {
			t.Fatalf("remove %d", u)
		}
	}
	if tr.count() != 50000 || tr.uid(2) != 3 || tr.seq(99999) != 50000 || tr.seq(4) != 0 {
		t.Fatalf("count %d uid(2)=%d seq(99999)=%d", tr.count(), tr.uid(2), tr.seq(99999))
	}
	set, ok := tr.seqToUIDs(numSet{ranges: []numRange{{2, 4}}})
	if !ok || len(set) != 3 || set[0].Start != 3 || set[2].Start != 7 {
		t.Fatalf("%v %v", set, ok)
	}
	if _, ok := tr.seqToUIDs(numSet{ranges: []numRange{{1, 50001}}}); ok {
		t.Fatal("out of range accepted")
	}
	got := tr.uidsToSet(numSet{ranges: []numRange{{99990, 0}}})
	if setCount(got) != 5 {
		t.Fatalf("%v", got)
	}
	tr.add(100001)
	if tr.seq(100001) != 50001 {
		t.Fatal("add after removals")
	}
}

func TestSplitSet(t *testing.T) {
	s := store.UIDSet{{Start: 1, Stop: 10}, {Start: 20, Stop: 20}, {Start: 30, Stop: 35}}
	parts := splitSet(s, 4)
	total := 0
	for _, p := range parts {
		n := setCount(p)
		if n > 4 {
			t.Fatalf("chunk too big: %v", p)
		}
		total += n
	}
	if total != 17 {
		t.Fatalf("total %d: %v", total, parts)
	}
}

// TestRecentOnce: a new message is \Recent in exactly one session
// (RFC 3501 §2.3.2), however many have the mailbox selected.
func TestRecentOnce(t *testing.T) {
	ts := newTestServer(t)
	var sessions []*rawClient
	for i := 0; i < 3; i++ {
		rc := ts.login(t)
		rc.ok("a SELECT INBOX")
		sessions = append(sessions, rc)
	}
	ts.appendMsg(t, "INBOX", "Subject: r\r\n\r\nr\r\n", storeFlags())
	recent := 0
	for _, rc := range sessions {
		if u := rc.ok("b NOOP"); !hasLine(u, "* 1 EXISTS") {
			t.Fatalf("%q", u)
		}
		u := rc.ok("c FETCH 1 (FLAGS)")
		if hasLine(u, `* 1 FETCH (FLAGS (\Recent))`) {
			recent++
		}
	}
	if recent != 1 {
		t.Fatalf("message recent in %d sessions", recent)
	}
}

// TestSelectedMailboxDeleted: another session deletes the selected
// mailbox; the session is told and closed instead of failing later.
func TestSelectedMailboxDeleted(t *testing.T) {
	ts := newTestServer(t)
	a := ts.login(t)
	b := ts.login(t)
	a.ok("a1 CREATE Doomed")
	a.ok("a2 SELECT Doomed")
	a.send("a3 IDLE\r\n")
	a.line()
	b.ok("b1 DELETE Doomed")
	if l := a.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("%q", l)
	}
	a.expectEOF()
}
