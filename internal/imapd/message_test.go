package imapd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

const mimeMsg = "From: Alice <alice@example.org>\r\n" +
	"To: Bob <bob@example.com>\r\n" +
	"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n" +
	"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n" +
	"Message-ID: <m1@example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--XX\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hello world\r\n" +
	"--XX\r\n" +
	"Content-Type: application/octet-stream; name=\"a.bin\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"Content-Disposition: attachment; filename=\"a.bin\"\r\n" +
	"\r\n" +
	"AAECAwQ=\r\n" +
	"--XX--\r\n"

func TestSelectExamine(t *testing.T) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", "Subject: 1\r\n\r\none\r\n", storeFlags(store.FlagSeen))
	ts.appendMsg(t, "INBOX", "Subject: 2\r\n\r\ntwo\r\n", storeFlags())
	rc := ts.login(t)
	u, tagged := rc.cmd("a EXAMINE INBOX")
	if tagged != "a OK [READ-ONLY] EXAMINE completed" {
		t.Fatalf("%q", tagged)
	}
	for _, want := range []string{"* 2 EXISTS", "* 2 RECENT", "* OK [UNSEEN 2] first unseen", "* OK [UIDNEXT 3] predicted next UID", "* OK [PERMANENTFLAGS ()] read-only mailbox"} {
		if !hasLine(u, want) {
			t.Errorf("EXAMINE lacks %q: %q", want, u)
		}
	}
	if !hasPrefix(u, "* OK [UIDVALIDITY ") || !hasPrefix(u, "* OK [HIGHESTMODSEQ ") {
		t.Errorf("%q", u)
	}
	// EXAMINE is read-only: no flag changes, no implicit \Seen, no expunge.
	_, tagged = rc.cmd(`b STORE 1 +FLAGS (\Deleted)`)
	if !strings.HasPrefix(tagged, "b NO") {
		t.Fatalf("%q", tagged)
	}
	u = rc.ok("c FETCH 2 (BODY[TEXT])")
	if hasPrefix(u, "* 2 FETCH (FLAGS") || strings.Contains(strings.Join(u, ""), `\Seen`) {
		t.Fatalf("EXAMINE set \\Seen: %q", u)
	}
	_, tagged = rc.cmd("d EXPUNGE")
	if !strings.HasPrefix(tagged, "d NO") {
		t.Fatalf("%q", tagged)
	}
	// offlineimap EXAMINEs, then SELECTs: the old mailbox is closed.
	u, tagged = rc.cmd("e SELECT INBOX")
	if tagged != "e OK [READ-WRITE] SELECT completed" || u[0] != "* OK [CLOSED] previous mailbox closed" {
		t.Fatalf("%q %q", u, tagged)
	}
	// \Recent went to the EXAMINE-less first SELECT session only once.
	if !hasLine(u, "* 2 RECENT") {
		t.Fatalf("%q", u)
	}
	u = rc.ok("f FETCH 1:* (FLAGS)")
	if !hasLine(u, `* 1 FETCH (FLAGS (\Seen \Recent))`) || !hasLine(u, `* 2 FETCH (FLAGS (\Recent))`) {
		t.Fatalf("%q", u)
	}
	rc.ok("g UNSELECT")
	rc2 := ts.login(t)
	u = rc2.ok("h SELECT INBOX")
	if !hasLine(u, "* 0 RECENT") {
		t.Fatalf("second session sees recent: %q", u)
	}
	_, tagged = rc2.cmd("i SELECT Nope")
	if !strings.HasPrefix(tagged, "i NO [NONEXISTENT]") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc2.cmd("j FETCH 1 FLAGS")
	if !strings.HasPrefix(tagged, "j BAD") {
		t.Fatalf("failed SELECT must leave no mailbox selected: %q", tagged)
	}
}

func TestAppend(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	msg := "Subject: hi\r\n\r\nhello\r\n"
	rc.send(fmt.Sprintf("a APPEND INBOX (\\Seen $Work) \"05-Mar-2026 11:12:13 +0200\" {%d}\r\n", len(msg)))
	if l := rc.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("%q", l)
	}
	rc.send(msg + "\r\n")
	_, tagged := rc.until("a")
	if !strings.HasPrefix(tagged, "a OK [APPENDUID ") || !strings.HasSuffix(tagged, " 1] APPEND completed") {
		t.Fatalf("%q", tagged)
	}
	// LITERAL+ (mbsync): no continuation.
	rc.send(fmt.Sprintf("b APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	_, tagged = rc.until("b")
	if !strings.HasSuffix(tagged, " 2] APPEND completed") {
		t.Fatalf("%q", tagged)
	}
	// Missing mailbox: TRYCREATE without sending the literal.
	rc.send("c APPEND Nope {5}\r\n")
	_, tagged = rc.until("c")
	if tagged != "c NO [TRYCREATE] no such mailbox" {
		t.Fatalf("%q", tagged)
	}
	// Missing mailbox with a non-synchronising literal: octets skipped.
	rc.send("d APPEND Nope {5+}\r\nhello\r\n")
	_, tagged = rc.until("d")
	if tagged != "d NO [TRYCREATE] no such mailbox" {
		t.Fatalf("%q", tagged)
	}
	u := rc.ok("e SELECT INBOX")
	if !hasLine(u, "* 2 EXISTS") {
		t.Fatalf("%q", u)
	}
	u = rc.ok("f FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
	if len(u) != 1 || u[0] != `* 1 FETCH (FLAGS (\Seen \Recent $Work) INTERNALDATE "05-Mar-2026 11:12:13 +0200" RFC822.SIZE 22)` {
		t.Fatalf("%q", u)
	}
	// APPEND to the selected mailbox announces the new message.
	rc.send(fmt.Sprintf("g APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	u, _ = rc.until("g")
	if !hasLine(u, "* 3 EXISTS") {
		t.Fatalf("%q", u)
	}
}

func TestAppendUTF8(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	msg := "Subject: Grüße\r\nFrom: jörg@bücher.example\r\n\r\nHallo\r\n"
	rc.send(fmt.Sprintf("a APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n", len(msg), msg))
	if _, tagged := rc.until("a"); !strings.HasPrefix(tagged, "a BAD") {
		t.Fatalf("UTF8 before ENABLE: %q", tagged)
	}
	rc.ok("b ENABLE UTF8=ACCEPT")
	rc.send(fmt.Sprintf("c APPEND INBOX (\\Seen) UTF8 (~{%d+}\r\n%s)\r\n", len(msg), msg))
	if _, tagged := rc.until("c"); !strings.HasPrefix(tagged, "c OK [APPENDUID") {
		t.Fatalf("%q", tagged)
	}
	rc.ok("d SELECT INBOX")
	u := rc.ok("e FETCH 1 (ENVELOPE)")
	if !strings.Contains(u[0], `"Grüße"`) || !strings.Contains(u[0], `"jörg" "bücher.example"`) {
		t.Fatalf("UTF-8 envelope: %q", u)
	}
}

func TestMultiAppend(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	m1, m2, m3 := "Subject: 1\r\n\r\none\r\n", "Subject: 2\r\n\r\ntwo\r\n", "Subject: 3\r\n\r\nthree\r\n"
	// RFC 3502: several messages, one atomic APPEND, mixed literal kinds.
	rc.send(fmt.Sprintf("a APPEND INBOX (\\Seen) {%d+}\r\n%s {%d}\r\n", len(m1), m1, len(m2)))
	if l := rc.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("%q", l)
	}
	rc.send(fmt.Sprintf("%s (\\Flagged) \"05-Mar-2026 11:12:13 +0200\" {%d+}\r\n%s\r\n", m2, len(m3), m3))
	_, tagged := rc.until("a")
	if !strings.HasPrefix(tagged, "a OK [APPENDUID ") || !strings.HasSuffix(tagged, " 1:3] APPEND completed") {
		t.Fatalf("%q", tagged)
	}
	rc.ok("b SELECT INBOX")
	u := rc.ok("c FETCH 1:3 (FLAGS BODY.PEEK[TEXT])")
	if len(u) != 3 || !strings.Contains(u[0], `\Seen`) || !strings.Contains(u[2], `\Flagged`) || !strings.Contains(u[2], "three") {
		t.Fatalf("%q", u)
	}
	// A bad message anywhere fails the whole command: nothing is added.
	rc.send(fmt.Sprintf("d APPEND INBOX {%d+}\r\n%s (\\Bogus) {%d+}\r\n%s\r\n", len(m1), m1, len(m2), m2))
	_, tagged = rc.until("d")
	if !strings.HasPrefix(tagged, "d BAD") {
		t.Fatalf("%q", tagged)
	}
	u = rc.ok("e STATUS INBOX (MESSAGES)")
	if !hasLine(u, "* STATUS INBOX (MESSAGES 3)") {
		t.Fatalf("%q", u)
	}
	// The second message's synchronising literal is refused unsent.
	rc.send(fmt.Sprintf("f APPEND Nope {%d+}\r\n%s {%d}\r\n", len(m1), m1, len(m2)))
	_, tagged = rc.until("f")
	if tagged != "f NO [TRYCREATE] no such mailbox" {
		t.Fatalf("%q", tagged)
	}
	rc.ok("g NOOP")
}

func TestAppendLimit(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.AppendLimit = 100 })
	rc := ts.login(t)
	rc.send("a APPEND INBOX {101}\r\n")
	_, tagged := rc.until("a")
	if tagged != "a NO [TOOBIG] message larger than APPENDLIMIT" {
		t.Fatalf("%q", tagged)
	}
	rc.ok("b NOOP")
	// A non-synchronising literal over the limit cannot be skipped safely.
	rc.send("c APPEND INBOX {1000+}\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "* BYE [TOOBIG]") {
		t.Fatalf("%q", l)
	}
	rc.expectEOF()
}

func TestFetchItems(t *testing.T) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", mimeMsg, storeFlags())
	rc := ts.login(t)
	rc.ok("s SELECT INBOX")
	u := rc.ok("a FETCH 1 (UID ENVELOPE)")
	want := `* 1 FETCH (UID 1 ENVELOPE ("Mon, 02 Mar 2026 10:00:00 +0100" "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=" (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Bob" NIL "bob" "example.com")) NIL NIL NIL "<m1@example.org>"))`
	if len(u) != 1 || u[0] != want {
		t.Fatalf("got  %q\nwant %q", u, want)
	}
	u = rc.ok("b FETCH 1 BODYSTRUCTURE")
	if len(u) != 1 || !strings.HasPrefix(u[0], `* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 11 0 NIL NIL NIL NIL)`) ||
		!strings.Contains(u[0], `("application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 8 NIL ("attachment" ("filename" "a.bin")) NIL NIL) "mixed" ("boundary" "XX") NIL NIL NIL))`) {
		t.Fatalf("%q", u)
	}
	u = rc.ok("c FETCH 1 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (subject message-id)] BODY.PEEK[1]<2.3>)")
	wantParts := []string{
		"BODY[1] {11}\r\nHello world",
		"BODY[2.MIME] {142}\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\n",
		"BODY[HEADER.FIELDS (subject message-id)] {70}\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <m1@example.org>\r\n\r\n",
		"BODY[1]<2> {3}\r\nllo",
	}
	for _, w := range wantParts {
		if !strings.Contains(u[0], w) {
			t.Errorf("lacks %q in %q", w, u[0])
		}
	}
	if strings.Contains(u[0], "FLAGS") {
		t.Errorf("PEEK set flags: %q", u)
	}
	u = rc.ok("d FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2] BODY.PEEK[3] BODY.PEEK[HEADER.FIELDS.NOT (From To Subject Date Message-ID MIME-Version)])")
	if !strings.Contains(u[0], "BINARY.SIZE[2] 5") || !strings.Contains(u[0], "BINARY[2] ~{5}\r\n\x00\x01\x02\x03\x04") ||
		!strings.Contains(u[0], `BODY[3] ""`) || !strings.Contains(u[0], "BODY[HEADER.FIELDS.NOT (From To Subject Date Message-ID MIME-Version)] {48}\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n") {
		t.Fatalf("%q", u)
	}
	// curl: non-peek BODY[] sets \Seen and reports FLAGS.
	u = rc.ok("e FETCH 1 BODY[]")
	if !strings.HasPrefix(u[0], fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n", len(mimeMsg))) || !strings.HasSuffix(u[0], `FLAGS (\Seen \Recent))`) {
		t.Fatalf("%q", u)
	}
	u = rc.ok("f FETCH 1 (RFC822.SIZE RFC822.HEADER)")
	if !strings.HasPrefix(u[0], fmt.Sprintf("* 1 FETCH (RFC822.SIZE %d RFC822.HEADER {", len(mimeMsg))) {
		t.Fatalf("%q", u)
	}
	u = rc.ok("g FETCH 1 FAST")
	if !strings.HasPrefix(u[0], `* 1 FETCH (FLAGS (\Seen \Recent) INTERNALDATE "`) {
		t.Fatalf("%q", u)
	}
	u = rc.ok("h FETCH 1 (BODY)")
	if !strings.HasPrefix(u[0], `* 1 FETCH (BODY (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 11 0)`) {
		t.Fatalf("%q", u)
	}
	_, tagged := rc.cmd("i FETCH 2 FLAGS")
	if !strings.HasPrefix(tagged, "i BAD") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("j FETCH 1 (FLAGS BOGUS)")
	if !strings.HasPrefix(tagged, "j BAD") {
		t.Fatalf("%q", tagged)
	}
	// mbsync: UID ranges past the last message are fine.
	u = rc.ok("k UID FETCH 1:100 (FLAGS)")
	if len(u) != 1 || u[0] != `* 1 FETCH (UID 1 FLAGS (\Seen \Recent))` {
		t.Fatalf("%q", u)
	}
	u = rc.ok("l UID FETCH 5:* (FLAGS)")
	if len(u) != 1 {
		t.Fatalf("%q", u)
	}
	u = rc.ok("m FETCH 1 (MODSEQ)")
	if !strings.HasPrefix(u[0], "* 1 FETCH (MODSEQ (") {
		t.Fatalf("%q", u)
	}
}

func TestFetchEmptyMailbox(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	rc.ok("a SELECT INBOX")
	u := rc.ok("b FETCH 1:* FLAGS")
	if len(u) != 0 {
		t.Fatalf("%q", u)
	}
	rc.ok("c UID FETCH 1:* FLAGS")
	rc.ok("d UID SEARCH ALL")
}

func TestStoreCopyMoveExpunge(t *testing.T) {
	ts := newTestServer(t)
	for i := 1; i <= 5; i++ {
		ts.appendMsg(t, "INBOX", fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i), storeFlags())
	}
	rc := ts.login(t)
	rc.ok("a SELECT INBOX")
	u := rc.ok(`b STORE 1:2 +FLAGS (\Flagged $Label1)`)
	// RFC 9051 §7.3.5: the new keyword is announced first.
	if !hasLine(u, `* 1 FETCH (UID 1 FLAGS (\Flagged \Recent $Label1))`) || len(u) != 4 || u[0] != `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1)` {
		t.Fatalf("%q", u)
	}
	u = rc.ok(`c STORE 1 -FLAGS.SILENT (\Flagged)`)
	if len(u) != 0 {
		t.Fatalf("silent: %q", u)
	}
	u = rc.ok(`d UID STORE 2 FLAGS \Seen`)
	if !hasLine(u, `* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`) {
		t.Fatalf("%q", u)
	}
	// Unchanged messages are reported too (RFC 9051 §6.4.6).
	u = rc.ok(`d2 STORE 1:3 +FLAGS (\Seen)`)
	if len(u) != 3 || !hasLine(u, `* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`) {
		t.Fatalf("%q", u)
	}
	rc.ok(`d3 STORE 1,3 -FLAGS.SILENT (\Seen)`)
	_, tagged := rc.cmd(`e STORE 1 +FLAGS (\Bogus)`)
	if !strings.HasPrefix(tagged, "e BAD") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("f COPY 1:2 Archive")
	if !strings.HasPrefix(tagged, "f OK [COPYUID ") || !strings.HasSuffix(tagged, " 1:2 1:2] COPY completed") {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd("g COPY 1 Nope")
	if tagged != "g NO [TRYCREATE] no such mailbox" {
		t.Fatalf("%q", tagged)
	}
	u, tagged = rc.cmd("h MOVE 2:3 Trash")
	if !hasPrefix(u, "* OK [COPYUID ") || !hasLine(u, "* 2 EXPUNGE") || len(u) != 3 || u[2] != "* 2 EXPUNGE" || tagged != "h OK MOVE completed" {
		t.Fatalf("%q %q", u, tagged)
	}
	// now UIDs 1 4 5 as seq 1 2 3
	u, tagged = rc.cmd("i UID MOVE 5 Trash")
	if !hasLine(u, "* 3 EXPUNGE") {
		t.Fatalf("%q %q", u, tagged)
	}
	rc.ok(`j STORE 1:2 +FLAGS (\Deleted)`)
	u = rc.ok("k UID EXPUNGE 4")
	if len(u) != 1 || u[0] != "* 2 EXPUNGE" {
		t.Fatalf("%q", u)
	}
	u = rc.ok("l EXPUNGE")
	if len(u) != 1 || u[0] != "* 1 EXPUNGE" {
		t.Fatalf("%q", u)
	}
	u = rc.ok("m STATUS Trash (MESSAGES)")
	if !hasLine(u, "* STATUS Trash (MESSAGES 3)") {
		t.Fatalf("%q", u)
	}
	// CLOSE expunges silently (mbsync expunges only that way).
	rc.ok("n SELECT Archive")
	rc.ok(`o STORE 1 +FLAGS (\Deleted)`)
	u = rc.ok("p CLOSE")
	if len(u) != 0 {
		t.Fatalf("%q", u)
	}
	u = rc.ok("q STATUS Archive (MESSAGES)")
	if !hasLine(u, "* STATUS Archive (MESSAGES 1)") {
		t.Fatalf("%q", u)
	}
}

func TestFetchmailSequence(t *testing.T) {
	// fetchmail works on sequence numbers, expunging after each message
	// and fetching "message 1" again.
	ts := newTestServer(t)
	for i := 1; i <= 3; i++ {
		ts.appendMsg(t, "INBOX", fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i), storeFlags())
	}
	rc := ts.login(t)
	rc.ok("a SELECT INBOX")
	for i := 1; i <= 3; i++ {
		u := rc.ok("b FETCH 1 RFC822")
		if !strings.Contains(u[0], fmt.Sprintf("body %d", i)) {
			t.Fatalf("round %d: %q", i, u)
		}
		rc.ok(`c STORE 1 +FLAGS.SILENT (\Seen \Deleted)`)
		u = rc.ok("d EXPUNGE")
		if len(u) != 1 || u[0] != "* 1 EXPUNGE" {
			t.Fatalf("%q", u)
		}
	}
	u := rc.ok("e NOOP")
	if len(u) != 0 {
		t.Fatalf("%q", u)
	}
}

// TestSelectListsKeywords: FLAGS and PERMANENTFLAGS name the keywords in
// use in the mailbox (RFC 9051 §7.3.5), first spelling, besides the system
// flags and \*.
func TestSelectListsKeywords(t *testing.T) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", "Subject: 1\r\n\r\none\r\n", store.Flags{Keywords: []string{"$Label1", "Work"}})
	rc := ts.login(t)
	u, tagged := rc.cmd("a SELECT INBOX")
	if !strings.HasPrefix(tagged, "a OK") {
		t.Fatalf("%q", tagged)
	}
	for _, want := range []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 Work)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 Work \*)] flags permitted`,
	} {
		if !hasLine(u, want) {
			t.Errorf("SELECT lacks %q: %q", want, u)
		}
	}
	// A keyword set later (in another spelling) is listed once, as first spelled.
	rc.ok(`b STORE 1 +FLAGS (work $Junk)`)
	rc.ok("c UNSELECT")
	u = rc.ok("d SELECT INBOX")
	if !hasLine(u, `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk $Label1 Work)`) {
		t.Errorf("after STORE: %q", u)
	}
}
