package imapd

import (
	"fmt"
	"strings"
	"testing"
)

// TestMbsyncPipelining: mbsync pipelines dozens of UID FETCH commands and
// APPENDs with non-synchronising literals; replies come back in order.
func TestMbsyncPipelining(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	var sb strings.Builder
	for i := 1; i <= 30; i++ {
		msg := fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i)
		fmt.Fprintf(&sb, "A%d APPEND INBOX (\\Seen) {%d+}\r\n%s\r\n", i, len(msg), msg)
	}
	rc.send(sb.String())
	for i := 1; i <= 30; i++ {
		_, tagged := rc.until(fmt.Sprintf("A%d", i))
		if !strings.HasSuffix(tagged, fmt.Sprintf(" %d] APPEND completed", i)) {
			t.Fatalf("%q", tagged)
		}
	}
	u := rc.ok("S SELECT INBOX")
	if !hasLine(u, "* 30 EXISTS") || !hasLine(u, "* OK [UIDNEXT 31] predicted next UID") {
		t.Fatalf("%q", u)
	}
	sb.Reset()
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&sb, "F%d UID FETCH %d (BODY.PEEK[] FLAGS)\r\n", i, i)
	}
	// mbsync also asks for ranges past the last message.
	sb.WriteString("G UID FETCH 1:4294967295 (UID FLAGS)\r\n")
	rc.send(sb.String())
	for i := 1; i <= 30; i++ {
		u, tagged := rc.until(fmt.Sprintf("F%d", i))
		if tagged != fmt.Sprintf("F%d OK FETCH completed", i) || len(u) != 1 || !strings.Contains(u[0], fmt.Sprintf("body %d\r\n", i)) {
			t.Fatalf("%q %q", u, tagged)
		}
	}
	u, _ = rc.until("G")
	if len(u) != 30 {
		t.Fatalf("%d responses", len(u))
	}
	// mbsync expunges only through CLOSE.
	rc.ok(`D UID STORE 1:10 +FLAGS.SILENT (\Deleted)`)
	if u := rc.ok("C CLOSE"); len(u) != 0 {
		t.Fatalf("CLOSE sends no EXPUNGE: %q", u)
	}
	u = rc.ok("T STATUS INBOX (MESSAGES)")
	if !hasLine(u, "* STATUS INBOX (MESSAGES 20)") {
		t.Fatalf("%q", u)
	}
}
