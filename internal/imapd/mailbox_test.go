package imapd

import (
	"context"
	"strings"
	"testing"
)

func TestListAndMailboxCommands(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	u := rc.ok(`a LIST "" ""`)
	if !hasLine(u, `* LIST (\Noselect) "/" ""`) {
		t.Fatalf("%q", u)
	}
	// curl sends an unquoted *.
	u = rc.ok(`b LIST "" *`)
	for _, want := range []string{
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasNoChildren \Sent) "/" Sent`,
		`* LIST (\HasNoChildren \Trash) "/" Trash`,
	} {
		if !hasLine(u, want) {
			t.Errorf("missing %q in %q", want, u)
		}
	}
	rc.ok("c CREATE Work/Projects/2026")
	rc.ok("d CREATE Töö")                // rev1 client sending raw UTF-8: accepted
	rc.ok("e CREATE &BB4EQgRHBDUEQgRL-") // "Отчеты" in modified UTF-7
	u = rc.ok(`f LIST "" %`)
	if !hasLine(u, `* LIST (\HasChildren) "/" Work`) || !hasLine(u, `* LIST (\HasNoChildren) "/" T&APYA9g-`) ||
		!hasLine(u, `* LIST (\HasNoChildren) "/" &BB4EQgRHBDUEQgRL-`) || hasPrefix(u, `* LIST (\HasChildren) "/" Work/`) {
		t.Fatalf("%q", u)
	}
	u = rc.ok(`g LIST Work/ %`)
	if len(u) != 1 || u[0] != `* LIST (\HasChildren) "/" Work/Projects` {
		t.Fatalf("%q", u)
	}
	u = rc.ok(`h LIST "" "W*/%"`)
	if !hasLine(u, `* LIST (\HasChildren) "/" Work/Projects`) || !hasLine(u, `* LIST (\HasNoChildren) "/" Work/Projects/2026`) {
		t.Fatalf("%q", u)
	}
	_, tagged := rc.cmd("i CREATE Work")
	if !strings.HasPrefix(tagged, "i NO [ALREADYEXISTS]") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("i2 CREATE inbox")
	if !strings.HasPrefix(tagged, "i2 NO [ALREADYEXISTS]") {
		t.Fatalf("%q", tagged)
	}
	rc.ok("j RENAME Work Job")
	u = rc.ok(`k LIST "" Job*`)
	if len(u) != 3 {
		t.Fatalf("after rename %q", u)
	}
	_, tagged = rc.cmd("l DELETE Nope")
	if !strings.HasPrefix(tagged, "l NO [NONEXISTENT]") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("m DELETE INBOX")
	if !strings.HasPrefix(tagged, "m NO") {
		t.Fatalf("%q", tagged)
	}
	rc.ok("n DELETE Job/Projects/2026")
	rc.ok("o SUBSCRIBE Job")
	u = rc.ok(`p LSUB "" *`)
	if !hasLine(u, `* LSUB () "/" Job`) {
		t.Fatalf("%q", u)
	}
	u = rc.ok(`q LIST (SUBSCRIBED) "" * RETURN (CHILDREN)`)
	if !hasLine(u, `* LIST (\HasChildren \Subscribed) "/" Job`) {
		t.Fatalf("%q", u)
	}
	rc.ok("r UNSUBSCRIBE Job")
	u = rc.ok(`s LSUB "" *`)
	if hasLine(u, `* LSUB () "/" Job`) {
		t.Fatalf("%q", u)
	}
	// UTF-8 names after ENABLE UTF8=ACCEPT.
	rc.ok("t ENABLE UTF8=ACCEPT")
	u = rc.ok(`u LIST "" T*`)
	if !hasLine(u, `* LIST (\HasNoChildren) "/" "Töö"`) {
		t.Fatalf("%q", u)
	}
}

func TestListExtended(t *testing.T) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", "Subject: a\r\n\r\nhello\r\n", storeFlags())
	rc := ts.login(t)
	u := rc.ok(`a LIST (SPECIAL-USE) "" * RETURN (SPECIAL-USE)`)
	if len(u) != 5 || hasPrefix(u, `* LIST (\HasNoChildren) "/" INBOX`) {
		t.Fatalf("%q", u)
	}
	u = rc.ok(`b LIST "" (INBOX Sent) RETURN (STATUS (MESSAGES UNSEEN SIZE))`)
	if !hasLine(u, `* STATUS INBOX (MESSAGES 1 UNSEEN 1 SIZE 21)`) || !hasLine(u, `* STATUS Sent (MESSAGES 0 UNSEEN 0 SIZE 0)`) {
		t.Fatalf("%q", u)
	}
	rc.ok("c CREATE Parent/Child")
	rc.ok("d SUBSCRIBE Parent/Child")
	u = rc.ok(`e LIST (SUBSCRIBED RECURSIVEMATCH) "" %`)
	if !hasLine(u, `* LIST (\HasChildren) "/" Parent ("CHILDINFO" ("SUBSCRIBED"))`) {
		t.Fatalf("%q", u)
	}
	rc.ok(`f CREATE Stuff (USE (\Flagged))`)
	u = rc.ok(`g LIST "" Stuff`)
	if !hasLine(u, `* LIST (\HasNoChildren \Flagged) "/" Stuff`) {
		t.Fatalf("%q", u)
	}
	_, tagged := rc.cmd(`h CREATE Other (USE (\Bogus))`)
	if !strings.HasPrefix(tagged, "h NO [USEATTR]") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd(`i LIST (RECURSIVEMATCH) "" *`)
	if !strings.HasPrefix(tagged, "i BAD") {
		t.Fatalf("%q", tagged)
	}
}

func TestStatus(t *testing.T) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", "Subject: a\r\n\r\nhello\r\n", storeFlags())
	rc := ts.login(t)
	u := rc.ok("a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ APPENDLIMIT)")
	if len(u) != 1 || !strings.HasPrefix(u[0], "* STATUS INBOX (MESSAGES 1 RECENT 1 UIDNEXT 2 UIDVALIDITY ") ||
		!strings.Contains(u[0], " UNSEEN 1 DELETED 0 SIZE 21 HIGHESTMODSEQ ") || !strings.HasSuffix(u[0], " APPENDLIMIT 52428800)") {
		t.Fatalf("%q", u)
	}
	_, tagged := rc.cmd("b STATUS Nope (MESSAGES)")
	if !strings.HasPrefix(tagged, "b NO [NONEXISTENT]") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("c STATUS INBOX (BOGUS)")
	if !strings.HasPrefix(tagged, "c BAD") {
		t.Fatalf("%q", tagged)
	}
}

func TestListMatcher(t *testing.T) {
	var m matcher
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"*", "a/b/c", true},
		{"%", "a/b", false},
		{"%", "a", true},
		{"a/%", "a/b", true},
		{"a/%", "a/b/c", false},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"%/%/c", "x/y/c", true},
		{"INBOX", "INBOX", true},
		{"", "", true},
		{"a%", "ab/c", false},
		{"*b*", "aaa/b", true},
	}
	for _, c := range cases {
		if got := m.match(c.pat, c.name); got != c.want {
			t.Errorf("match(%q, %q) = %v", c.pat, c.name, got)
		}
	}
	for in, want := range map[string]string{"a**b": "a*b", "%*%": "*", "%%/%": "%/%", "x": "x"} {
		if got := simplifyPattern(in); got != want {
			t.Errorf("simplify(%q) = %q", in, got)
		}
	}
	// Many wildcards against a long non-matching name finish quickly
	// (a backtracking matcher takes exponential time here).
	pat := strings.Repeat("*a", 40) + "b"
	name := strings.Repeat("a", 2000)
	if m.match(pat, name) {
		t.Fatal("unexpected match")
	}
}

func TestMUTF7(t *testing.T) {
	for _, s := range []string{"Töö", "Отчеты", "a&b", "日本語/メール", "~peter/mail/台北/日本語", "😀"} {
		enc := encodeMUTF7(s)
		dec, err := decodeMUTF7(enc)
		if err != nil || dec != s {
			t.Errorf("%q -> %q -> %q %v", s, enc, dec, err)
		}
	}
	if encodeMUTF7("~peter/mail/台北/日本語") != "~peter/mail/&U,BTFw-/&ZeVnLIqe-" {
		t.Errorf("RFC 3501 example: %q", encodeMUTF7("~peter/mail/台北/日本語"))
	}
	for _, bad := range []string{"&", "&Jjo", "&AGE-", "&U,BTF2XlZyyKng-x&"} {
		if _, err := decodeMUTF7(bad); err == nil {
			t.Errorf("decoded invalid %q", bad)
		}
	}
}

func TestRenameInbox(t *testing.T) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", "Subject: a\r\n\r\na\r\n", storeFlags())
	ts.appendMsg(t, "INBOX", "Subject: b\r\n\r\nb\r\n", storeFlags())
	rc := ts.login(t)
	// RFC 3501 §6.3.5: renaming INBOX moves its messages to the new name.
	rc.ok("a RENAME INBOX Old/Inbox")
	u := rc.ok("b STATUS INBOX (MESSAGES)")
	if !hasLine(u, "* STATUS INBOX (MESSAGES 0)") {
		t.Fatalf("%q", u)
	}
	u = rc.ok("c STATUS Old/Inbox (MESSAGES)")
	if !hasLine(u, "* STATUS Old/Inbox (MESSAGES 2)") {
		t.Fatalf("%q", u)
	}
	_, tagged := rc.cmd("d RENAME Old/Inbox INBOX")
	if !strings.HasPrefix(tagged, "d NO [ALREADYEXISTS]") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("e RENAME Nope Other")
	if !strings.HasPrefix(tagged, "e NO [NONEXISTENT]") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("f RENAME Sent Trash")
	if !strings.HasPrefix(tagged, "f NO [ALREADYEXISTS]") {
		t.Fatalf("%q", tagged)
	}
}

// TestRawUTF8NameWithoutEnable: a rev1 session (no ENABLE) that sends a
// raw UTF-8 name with "&" escaped as "&-" (go-imap's client does) means
// "&"; a bare "&" in such a name is kept as it is.
func TestRawUTF8NameWithoutEnable(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	rc.ok("a CREATE \"Work/Ärger &- Co\"")
	rc.ok("b CREATE \"Büro & Co\"")
	u := rc.ok("c LIST \"\" \"*\"")
	for _, want := range []string{`"Work/&AMQ-rger &- Co"`, `"B&APw-ro &- Co"`} {
		found := false
		for _, l := range u {
			if strings.HasSuffix(l, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("LIST has no %s: %q", want, u)
		}
	}
	if _, err := ts.st.Mailbox(context.Background(), ts.acct.ID, "Work/Ärger & Co"); err != nil {
		t.Errorf("stored name: %v", err)
	}
}
