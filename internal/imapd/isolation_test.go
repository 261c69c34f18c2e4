package imapd

import (
	"context"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestIsolation: a user cannot see, open, append to or copy into another
// user's mailboxes under any name, nor reach their messages by UID.
func TestIsolation(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	other, err := ts.st.CreateAccount(ctx, "other@localhost", passwordHash(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.st.CreateMailbox(ctx, other.ID, "Secret", store.SpecialNone); err != nil {
		t.Fatal(err)
	}
	mb, _ := ts.st.Mailbox(ctx, other.ID, "INBOX")
	staged, _ := ts.st.Stage(ctx, strings.NewReader("Subject: private\r\n\r\nprivate\r\n"), 0)
	if _, err := ts.st.Append(ctx, other.ID, mb.ID, []store.AppendMessage{{Body: staged}}); err != nil {
		t.Fatal(err)
	}
	rc := ts.login(t)
	if u := rc.ok(`a LIST "" *`); hasPrefix(u, `* LIST () "/" Secret`) || strings.Contains(strings.Join(u, "\n"), "Secret") {
		t.Fatalf("%q", u)
	}
	for _, cmd := range []string{
		"b SELECT Secret", "c EXAMINE Secret", "d STATUS Secret (MESSAGES)",
		"e SELECT other@localhost/INBOX", "f SELECT ../other@localhost/Secret", "g DELETE Secret",
		"h RENAME Secret Mine",
	} {
		_, tagged := rc.cmd(cmd)
		if !strings.Contains(tagged, " NO [NONEXISTENT]") {
			t.Errorf("%s: %q", cmd, tagged)
		}
	}
	_, tagged := rc.cmd("i APPEND Secret {1}")
	if !strings.Contains(tagged, "NO [TRYCREATE]") {
		t.Errorf("%q", tagged)
	}
	rc.ok("j SELECT INBOX")
	if u := rc.ok("k UID FETCH 1:* (BODY.PEEK[])"); len(u) != 0 {
		t.Fatalf("saw another user's message: %q", u)
	}
	if _, tagged := rc.cmd("l COPY 1 Secret"); !strings.HasPrefix(tagged, "l BAD") && !strings.Contains(tagged, "TRYCREATE") {
		t.Fatalf("%q", tagged)
	}
	if u := rc.ok("m SEARCH TEXT private"); len(u) != 1 || u[0] != "* SEARCH" {
		t.Fatalf("%q", u)
	}
	// The other user's mailbox is untouched by our CREATE of the same name.
	rc.ok("n CREATE Secret")
	if st, _ := ts.st.Mailbox(ctx, other.ID, "Secret"); st.Messages != 0 || st.Account != other.ID {
		t.Fatalf("%+v", st)
	}
}
