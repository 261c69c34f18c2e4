package imapd

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var modseqRE = regexp.MustCompile(`HIGHESTMODSEQ (\d+)`)

func highestModSeq(t *testing.T, lines []string) uint64 {
	t.Helper()
	for _, l := range lines {
		if m := modseqRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no HIGHESTMODSEQ in %q", lines)
	return 0
}

func TestCondStore(t *testing.T) {
	ts := newTestServer(t)
	for i := 1; i <= 3; i++ {
		ts.appendMsg(t, "INBOX", fmt.Sprintf("Subject: %d\r\n\r\n%d\r\n", i, i), storeFlags())
	}
	rc := ts.login(t)
	u := rc.ok("a ENABLE CONDSTORE")
	if !hasLine(u, "* ENABLED CONDSTORE") {
		t.Fatalf("%q", u)
	}
	u = rc.ok("b SELECT INBOX (CONDSTORE)")
	ms := highestModSeq(t, u)
	u = rc.ok(`c STORE 1 +FLAGS (\Seen)`)
	if len(u) != 1 || !strings.HasPrefix(u[0], `* 1 FETCH (UID 1 FLAGS (\Seen \Recent) MODSEQ (`) {
		t.Fatalf("%q", u)
	}
	u = rc.ok(fmt.Sprintf("d FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", ms))
	if len(u) != 1 || !strings.HasPrefix(u[0], `* 1 FETCH (FLAGS (\Seen \Recent) MODSEQ (`) {
		t.Fatalf("%q", u)
	}
	// UNCHANGEDSINCE: message 1 changed after ms, message 2 did not.
	_, tagged := rc.cmd(fmt.Sprintf(`e STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\Flagged)`, ms))
	if tagged != "e OK [MODIFIED 1] conditional STORE failed for some messages" {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd(`f UID STORE 3 (UNCHANGEDSINCE 0) +FLAGS (\Flagged)`)
	if tagged != "f OK [MODIFIED 3] conditional STORE failed for some messages" {
		t.Fatalf("%q", tagged)
	}
	u = rc.ok(fmt.Sprintf("g SEARCH MODSEQ %d", ms+1))
	if len(u) != 1 || !strings.HasPrefix(u[0], "* SEARCH 1 2 (MODSEQ ") {
		t.Fatalf("%q", u)
	}
	u = rc.ok("h STATUS INBOX (HIGHESTMODSEQ)")
	if highestModSeq(t, u) <= ms {
		t.Fatalf("%q", u)
	}
}

func TestQResync(t *testing.T) {
	ts := newTestServer(t)
	for i := 1; i <= 4; i++ {
		ts.appendMsg(t, "INBOX", fmt.Sprintf("Subject: %d\r\n\r\n%d\r\n", i, i), storeFlags())
	}
	rc := ts.login(t)
	u := rc.ok("a SELECT INBOX")
	ms := highestModSeq(t, u)
	var uidValidity string
	for _, l := range u {
		if strings.HasPrefix(l, "* OK [UIDVALIDITY ") {
			uidValidity = strings.Fields(l)[3]
			uidValidity = strings.TrimSuffix(uidValidity, "]")
		}
	}
	// Another device changes flags and expunges while we are away.
	other := ts.login(t)
	other.ok("b SELECT INBOX")
	other.ok(`c STORE 2 +FLAGS (\Answered)`)
	other.ok(`d STORE 3 +FLAGS (\Deleted)`)
	other.ok("e EXPUNGE")
	rc.ok("f LOGOUT")

	rc = ts.login(t)
	u = rc.ok("g ENABLE QRESYNC")
	if !hasLine(u, "* ENABLED QRESYNC") {
		t.Fatalf("%q", u)
	}
	u = rc.ok(fmt.Sprintf("h SELECT INBOX (QRESYNC (%s %d 1:4))", uidValidity, ms))
	if !hasLine(u, "* VANISHED (EARLIER) 3") {
		t.Fatalf("no VANISHED: %q", u)
	}
	if !hasPrefix(u, `* 2 FETCH (UID 2 FLAGS (\Answered) MODSEQ (`) {
		t.Fatalf("no FETCH for the changed message: %q", u)
	}
	// UID FETCH ... (CHANGEDSINCE n VANISHED).
	u = rc.ok(fmt.Sprintf("i UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", ms))
	if !hasLine(u, "* VANISHED (EARLIER) 3") || !hasPrefix(u, "* 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ") {
		t.Fatalf("%q", u)
	}
	// Expunges by others now arrive as VANISHED, not EXPUNGE.
	other.ok(`j STORE 1 +FLAGS.SILENT (\Deleted)`)
	other.ok("k EXPUNGE")
	u = rc.ok("l NOOP")
	if !hasLine(u, "* VANISHED 1") || hasPrefix(u, "* 1 EXPUNGE") {
		t.Fatalf("%q", u)
	}
	_, tagged := rc.cmd("m FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)")
	if !strings.HasPrefix(tagged, "m BAD") {
		t.Fatalf("VANISHED without UID: %q", tagged)
	}
	// A stale UIDVALIDITY gets a plain SELECT.
	u = rc.ok("n SELECT INBOX (QRESYNC (1 1))")
	if hasPrefix(u, "* VANISHED") {
		t.Fatalf("%q", u)
	}
}
