package imapd

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestQuota: RFC 9208 over raw lines. An account without a limit has no
// quota root; with one, every mailbox is under the root "" and STORAGE
// shows usage and limit in KiB; SETQUOTA is refused; an APPEND over the
// limit fails with OVERQUOTA; STATUS DELETED-STORAGE counts the
// \Deleted messages' octets, also in LIST-STATUS.
func TestQuota(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	rc := ts.login(t)

	caps := rc.ok("C1 CAPABILITY")
	if !hasPrefix(caps, "* CAPABILITY ") || !strings.Contains(caps[0], " QUOTA ") || !strings.Contains(caps[0], " QUOTA=RES-STORAGE") {
		t.Fatalf("capabilities %q lack QUOTA and QUOTA=RES-STORAGE", caps)
	}

	// No limit: no quota root.
	u := rc.ok("Q1 GETQUOTAROOT INBOX")
	if len(u) != 1 || u[0] != "* QUOTAROOT INBOX" {
		t.Fatalf("GETQUOTAROOT without a limit: %q", u)
	}
	if _, tagged := rc.cmd(`Q2 GETQUOTA ""`); !strings.HasPrefix(tagged, "Q2 NO [NONEXISTENT]") {
		t.Fatalf("GETQUOTA without a limit: %q", tagged)
	}

	// A 10 KiB limit and 1,500 octets used.
	body := "Subject: q\r\n\r\n" + strings.Repeat("x", 1500-len("Subject: q\r\n\r\n"))
	ts.appendMsg(t, "INBOX", body, store.Flags{})
	if err := ts.st.SetQuota(ctx, ts.acct.ID, 10<<10); err != nil {
		t.Fatal(err)
	}
	u = rc.ok("Q3 GETQUOTAROOT inbox")
	if len(u) != 2 || u[0] != `* QUOTAROOT INBOX ""` || u[1] != `* QUOTA "" (STORAGE 2 10)` {
		t.Fatalf("GETQUOTAROOT: %q", u)
	}
	if u := rc.ok(`Q4 GETQUOTA ""`); len(u) != 1 || u[0] != `* QUOTA "" (STORAGE 2 10)` {
		t.Fatalf("GETQUOTA: %q", u)
	}
	// Every mailbox is under the one root; a name in modified UTF-7 for
	// a rev1 session.
	rc.ok("Q5 CREATE &AMk-t&AOk-")
	if u := rc.ok("Q6 GETQUOTAROOT &AMk-t&AOk-"); len(u) != 2 || u[0] != `* QUOTAROOT &AMk-t&AOk- ""` {
		t.Fatalf("GETQUOTAROOT of a non-ASCII mailbox: %q", u)
	}
	for _, c := range []struct{ cmd, want string }{
		{`Q7 GETQUOTA "User quota"`, "Q7 NO [NONEXISTENT]"},
		{"Q8 GETQUOTAROOT Nope", "Q8 NO [NONEXISTENT]"},
		{`Q9 SETQUOTA "" (STORAGE 100000)`, "Q9 NO [NOPERM]"},
		{`Q10 SETQUOTA "" (STORAGE x)`, "Q10 BAD"},
		{"Q11 GETQUOTA", "Q11 BAD"},
		{"Q12 GETQUOTAROOT INBOX extra", "Q12 BAD"},
	} {
		if _, tagged := rc.cmd(c.cmd); !strings.HasPrefix(tagged, c.want) {
			t.Errorf("%s: got %q, want %s", c.cmd, tagged, c.want)
		}
	}

	// Over the limit: APPEND fails and usage stays.
	big := strings.Repeat("y", 12<<10)
	rc.send(fmt.Sprintf("A1 APPEND INBOX {%d+}\r\n%s\r\n", len(big), big))
	if _, tagged := rc.until("A1"); !strings.HasPrefix(tagged, "A1 NO [OVERQUOTA]") {
		t.Fatalf("APPEND over quota: %q", tagged)
	}
	if u := rc.ok(`Q13 GETQUOTA ""`); u[0] != `* QUOTA "" (STORAGE 2 10)` {
		t.Fatalf("after a refused APPEND: %q", u)
	}

	// DELETED-STORAGE.
	other := "Subject: d\r\n\r\n12345\r\n"
	ts.appendMsg(t, "INBOX", other, storeFlags(store.FlagDeleted))
	if u := rc.ok("S1 STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)"); len(u) != 1 || u[0] != fmt.Sprintf("* STATUS INBOX (MESSAGES 2 DELETED 1 DELETED-STORAGE %d)", len(other)) {
		t.Fatalf("STATUS: %q", u)
	}
	if u := rc.ok(`S2 LIST "" "INBOX" RETURN (STATUS (DELETED-STORAGE))`); !hasLine(u, fmt.Sprintf("* STATUS INBOX (DELETED-STORAGE %d)", len(other))) {
		t.Fatalf("LIST-STATUS: %q", u)
	}
	if u := rc.ok("S3 STATUS &AMk-t&AOk- (DELETED-STORAGE)"); u[0] != "* STATUS &AMk-t&AOk- (DELETED-STORAGE 0)" {
		t.Fatalf("STATUS of an empty mailbox: %q", u)
	}

	// A real client: Python's imaplib.
	runImaplib(t, ts, "imaplib quota ok", `
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
typ, data = m.getquotaroot("INBOX")
assert typ == "OK", (typ, data)
roots, quotas = data
assert roots == [b'INBOX ""'], roots
assert quotas == [b'"" (STORAGE 2 10)'], quotas
typ, data = m.getquota('""')
assert typ == "OK" and data == [b'"" (STORAGE 2 10)'], (typ, data)
typ, data = m.setquota('""', "(STORAGE 1)")
assert typ == "NO" and b"[NOPERM]" in data[0], (typ, data)
m.logout()
print("imaplib quota ok")
`)
}

// runImaplib runs a Python script against ts with host, port, user and
// password as its arguments; it must exit 0 and print ok. The test is
// skipped without python3 (CI installs it).
func runImaplib(t *testing.T, ts *testServer, ok, script string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	host, port, _ := net.SplitHostPort(ts.addr)
	out, err := exec.Command(py, "-c", script, host, port, testUser, testPass).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ok) {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}
