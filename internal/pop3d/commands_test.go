package pop3d

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

const (
	msg1 = "From: a@example.org\r\nSubject: one\r\n\r\nfirst body\r\nsecond line\r\n"
	// msg2 has lines that need dot-stuffing and bare LF line endings, which
	// the store turns into CRLF.
	msg2 = "From: b@example.org\nSubject: two\n\n.\n..double\n.hidden\nend.\n"
	msg3 = "From: c@example.org\r\nSubject: three\r\n\r\nl1\r\nl2\r\nl3\r\n"
)

// storedMessages returns INBOX's messages as the store has them.
func (e *env) storedMessages() []store.Message {
	e.t.Helper()
	var out []store.Message
	uids := e.inboxUIDs()
	if len(uids) == 0 {
		return nil
	}
	err := e.st.Messages(context.Background(), e.acct.ID, e.inbox.ID, store.UIDSetOf(uids...), store.FetchOptions{}, func(m *store.Message) error {
		out = append(out, *m)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func TestGreetingAndCAPA(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.expect("+OK pop.example.org Skrytka POP3 server ready")
	c.cmd("CAPA").expect("+OK capability list follows")
	want := []string{"TOP", "UIDL", "USER", "SASL PLAIN LOGIN", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "STLS", "IMPLEMENTATION Skrytka"}
	if got := c.lines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("CAPA before login:\n got %q\nwant %q", got, want)
	}
	c.cmd("USER " + e.acct.Address).expect("+OK send PASS")
	c.cmd("PASS " + testPassword).expect("+OK maildrop locked and ready, 0 messages (0 octets)")
	c.cmd("CAPA").expect("+OK capability list follows")
	want = []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION Skrytka"}
	if got := c.lines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("CAPA after login:\n got %q\nwant %q", got, want)
	}
	c.cmd("CAPA x").expect("-ERR CAPA takes no arguments")
	c.cmd("QUIT").expect("+OK pop.example.org POP3 server signing off")
	c.expectClosed()
}

func TestCAPAOptions(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Expire = "30"
		o.LoginDelay = 1500 * 1e6 // 1.5 s, advertised rounded up
		o.TLSConfig = nil
	})
	c := e.dialGreeted()
	c.cmd("CAPA").expectPrefix("+OK")
	got := strings.Join(c.lines(), "|")
	for _, w := range []string{"|EXPIRE 30|", "|LOGIN-DELAY 2|"} {
		if !strings.Contains(got, w) {
			t.Errorf("CAPA %q lacks %q", got, w)
		}
	}
	if strings.Contains(got, "STLS") {
		t.Errorf("CAPA %q offers STLS without a TLS config", got)
	}
	c.cmd("STLS").expect("-ERR STLS is not available")
}

// TestTransaction walks through every TRANSACTION command with exact
// replies.
func TestTransaction(t *testing.T) {
	e := newEnv(t, nil)
	for _, m := range []string{msg1, msg2, msg3} {
		deliver(t, e.st, e.acct, e.inbox.ID, m)
	}
	stored := e.storedMessages()
	if len(stored) != 3 {
		t.Fatalf("%d messages stored", len(stored))
	}
	bodies := []string{crlf(msg1), crlf(msg2), crlf(msg3)}
	var total int64
	for i, m := range stored {
		if m.Size != int64(len(bodies[i])) {
			t.Fatalf("store size %d, want %d", m.Size, len(bodies[i]))
		}
		total += m.Size
	}
	s1, s2, s3 := stored[0].Size, stored[1].Size, stored[2].Size

	c := e.dialGreeted()
	c.cmd("USER " + e.acct.Address).expect("+OK send PASS")
	c.cmd("PASS " + testPassword).expect(fmt.Sprintf("+OK maildrop locked and ready, 3 messages (%d octets)", total))

	c.cmd("STAT").expect(fmt.Sprintf("+OK 3 %d", total))
	c.cmd("LIST").expect(fmt.Sprintf("+OK 3 messages (%d octets)", total))
	if got, want := c.lines(), []string{fmt.Sprint("1 ", s1), fmt.Sprint("2 ", s2), fmt.Sprint("3 ", s3)}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("LIST = %q, want %q", got, want)
	}
	c.cmd("LIST 2").expect(fmt.Sprintf("+OK 2 %d", s2))
	c.cmd("LIST 4").expect("-ERR no such message")
	c.cmd("LIST 0").expect("-ERR no such message")

	c.cmd("UIDL").expect("+OK unique-id listing follows")
	var wantUIDL []string
	for i, m := range stored {
		wantUIDL = append(wantUIDL, fmt.Sprintf("%d %016x", i+1, m.ID))
	}
	if got := c.lines(); strings.Join(got, "|") != strings.Join(wantUIDL, "|") {
		t.Fatalf("UIDL = %q, want %q", got, wantUIDL)
	}
	c.cmd("UIDL 3").expect("+OK " + wantUIDL[2])

	// RETR: byte count in the reply equals what is sent after unstuffing.
	for i, body := range bodies {
		c.cmd(fmt.Sprintf("RETR %d", i+1)).expect(fmt.Sprintf("+OK %d octets", len(body)))
		raw := c.multiline()
		if got := unstuff(raw); got != body {
			t.Fatalf("RETR %d: got %q, want %q", i+1, got, body)
		}
	}
	c.cmd("RETR 2").expectPrefix("+OK")
	want2 := "From: b@example.org\r\nSubject: two\r\n\r\n..\r\n...double\r\n..hidden\r\nend.\r\n"
	if got := c.multiline(); got != want2 {
		t.Fatalf("RETR 2 raw bytes %q, want %q", got, want2)
	}

	c.cmd("TOP 3 0").expect("+OK top of message 3 follows")
	if got := c.multiline(); got != "From: c@example.org\r\nSubject: three\r\n\r\n" {
		t.Fatalf("TOP 3 0 = %q", got)
	}
	c.cmd("TOP 3 2").expectPrefix("+OK")
	if got := c.multiline(); got != "From: c@example.org\r\nSubject: three\r\n\r\nl1\r\nl2\r\n" {
		t.Fatalf("TOP 3 2 = %q", got)
	}
	c.cmd("TOP 2 1").expectPrefix("+OK")
	if got := c.multiline(); got != "From: b@example.org\r\nSubject: two\r\n\r\n..\r\n" {
		t.Fatalf("TOP 2 1 = %q", got)
	}
	c.cmd("TOP 1 99999").expectPrefix("+OK")
	if got := unstuff(c.multiline()); got != bodies[0] {
		t.Fatalf("TOP 1 99999 = %q", got)
	}

	c.cmd("NOOP").expect("+OK")
	c.cmd("DELE 1").expect("+OK message 1 deleted")
	c.cmd("DELE 1").expect("-ERR message 1 already deleted")
	c.cmd("RETR 1").expect("-ERR message 1 already deleted")
	c.cmd("TOP 1 0").expect("-ERR message 1 already deleted")
	c.cmd("LIST 1").expect("-ERR message 1 already deleted")
	c.cmd("UIDL 1").expect("-ERR message 1 already deleted")
	c.cmd("STAT").expect(fmt.Sprintf("+OK 2 %d", s2+s3))
	c.cmd("LIST").expect(fmt.Sprintf("+OK 2 messages (%d octets)", s2+s3))
	// Deleted messages are hidden, not renumbered.
	if got := c.lines(); strings.Join(got, "|") != fmt.Sprintf("2 %d|3 %d", s2, s3) {
		t.Fatalf("LIST after DELE = %q", got)
	}
	c.cmd("UIDL").expectPrefix("+OK")
	if got := c.lines(); strings.Join(got, "|") != wantUIDL[1]+"|"+wantUIDL[2] {
		t.Fatalf("UIDL after DELE = %q", got)
	}
	c.cmd("RSET").expect(fmt.Sprintf("+OK maildrop has 3 messages (%d octets)", total))
	c.cmd("STAT").expect(fmt.Sprintf("+OK 3 %d", total))
	c.cmd("DELE 2").expect("+OK message 2 deleted")
	c.cmd("QUIT").expect("+OK pop.example.org POP3 server signing off (1 messages deleted)")
	c.expectClosed()

	left := e.storedMessages()
	if len(left) != 2 || left[0].ID != stored[0].ID || left[1].ID != stored[2].ID {
		t.Fatalf("after QUIT the store has %+v", left)
	}

	// A second session numbers afresh and keeps the UIDLs.
	c = e.login()
	c.cmd("UIDL").expectPrefix("+OK")
	if got := c.lines(); strings.Join(got, "|") != fmt.Sprintf("1 %016x|2 %016x", stored[0].ID, stored[2].ID) {
		t.Fatalf("UIDL in second session = %q", got)
	}
}

func TestBadArguments(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBadCommands = 100 })
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	c := e.login()
	for _, tc := range []struct{ cmd, want string }{
		{"RETR", "-ERR RETR takes one argument"},
		{"RETR 1 2", "-ERR RETR takes one argument"},
		{"RETR x", "-ERR invalid message number"},
		{"RETR -1", "-ERR invalid message number"},
		{"RETR 99999999999", "-ERR invalid message number"},
		{"RETR 2", "-ERR no such message"},
		{"TOP 1", "-ERR TOP takes two arguments"},
		{"TOP 1 x", "-ERR invalid line count"},
		{"TOP 1 -1", "-ERR invalid line count"},
		{"DELE", "-ERR DELE takes one argument"},
		{"DELE 0", "-ERR no such message"},
		{"LIST 1 2", "-ERR LIST takes at most one argument"},
		{"UIDL a b c d", "-ERR UIDL takes at most one argument"},
		{"STAT 1", "-ERR STAT takes no arguments"},
		{"NOOP 1", "-ERR NOOP takes no arguments"},
		{"RSET 1", "-ERR RSET takes no arguments"},
		{"USER x", "-ERR command not valid in this state"},
		{"PASS x", "-ERR command not valid in this state"},
		{"STLS", "-ERR command not valid in this state"},
		{"AUTH PLAIN", "-ERR command not valid in this state"},
		{"XYZW", "-ERR unknown command"},
		{"XYZZY", "-ERR invalid command syntax"},
		{"UTF8", "-ERR command not supported"},
		{"RETR\x001", "-ERR invalid command syntax"},
	} {
		c.cmd(tc.cmd).expect(tc.want)
	}
	// Still usable.
	c.cmd("STAT").expectPrefix("+OK 1 ")
}

func TestAuthorizationState(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBadCommands = 100 })
	c := e.dialGreeted()
	for _, tc := range []struct{ cmd, want string }{
		{"STAT", "-ERR command not valid in this state"},
		{"RETR 1", "-ERR command not valid in this state"},
		{"NOOP", "-ERR command not valid in this state"},
		{"PASS x", "-ERR send USER first"},
		{"USER", "-ERR USER takes one argument"},
		{"APOP user@example.org 0123456789abcdef0123456789abcdef", "-ERR APOP is not supported, use USER/PASS or AUTH PLAIN over TLS"},
		{"USER nobody@example.org", "+OK send PASS"},
		{"PASS wrong", "-ERR [AUTH] authentication failed"},
		{"USER " + e.acct.Address, "+OK send PASS"},
		{"PASS wrong", "-ERR [AUTH] authentication failed"},
		{"PASS " + testPassword, "-ERR send USER first"},
		{"AUTH CRAM-MD5", "-ERR unsupported SASL mechanism"},
		{"AUTH PLAIN !!!", "-ERR invalid base64 in initial response"},
		{"AUTH PLAIN =", "-ERR [AUTH] authentication failed"},
	} {
		c.cmd(tc.cmd).expect(tc.want)
	}
	c.cmd("AUTH").expect("+OK SASL mechanisms follow")
	if got := strings.Join(c.lines(), " "); got != "PLAIN LOGIN" {
		t.Fatalf("AUTH list = %q", got)
	}
	c.cmd("QUIT").expect("+OK pop.example.org POP3 server signing off")
	c.expectClosed()
}

func TestPasswordWithSpaces(t *testing.T) {
	e := newEnv(t, nil)
	// testPassword has spaces: PASS takes the rest of the line.
	if !strings.Contains(testPassword, " ") {
		t.Fatal("test password has no spaces")
	}
	c := e.dialGreeted()
	c.cmd("user " + strings.ToUpper(e.acct.Address)).expect("+OK send PASS")
	c.cmd("pass " + testPassword).expectPrefix("+OK maildrop locked")
}

// TestPipelining sends many commands in one write; the answers must come
// in order (RFC 2449 §6.6).
func TestPipelining(t *testing.T) {
	e := newEnv(t, nil)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	deliver(t, e.st, e.acct, e.inbox.ID, msg2)
	s1 := len(crlf(msg1))
	s2 := len(crlf(msg2))
	c := e.dialGreeted()
	c.send("CAPA\r\nUSER " + e.acct.Address + "\r\nPASS " + testPassword + "\r\nSTAT\r\nLIST\r\nRETR 1\r\nTOP 2 0\r\nDELE 1\r\nNOOP\r\nLIST 1\r\nSTAT\r\nBOGU\r\nUIDL 2\r\nRSET\r\nSTAT\r\nQUIT\r\n")
	c.expectPrefix("+OK capability")
	c.multiline()
	c.expect("+OK send PASS")
	c.expectPrefix("+OK maildrop locked and ready, 2 messages")
	c.expect(fmt.Sprintf("+OK 2 %d", s1+s2))
	c.expectPrefix("+OK 2 messages")
	if got := c.lines(); len(got) != 2 || got[0] != fmt.Sprint("1 ", s1) {
		t.Fatalf("LIST = %q", got)
	}
	c.expect(fmt.Sprintf("+OK %d octets", s1))
	if got := unstuff(c.multiline()); got != crlf(msg1) {
		t.Fatalf("RETR = %q", got)
	}
	c.expect("+OK top of message 2 follows")
	c.multiline()
	c.expect("+OK message 1 deleted")
	c.expect("+OK")
	c.expect("-ERR message 1 already deleted")
	c.expect(fmt.Sprintf("+OK 1 %d", s2))
	c.expect("-ERR unknown command")
	c.expectPrefix("+OK 2 ")
	c.expectPrefix("+OK maildrop has 2 messages")
	c.expect(fmt.Sprintf("+OK 2 %d", s1+s2))
	c.expect("+OK pop.example.org POP3 server signing off")
	c.expectClosed()
	if n := len(e.inboxUIDs()); n != 2 {
		t.Fatalf("RSET before QUIT, yet %d messages left", n)
	}
}

// TestSnapshot checks that the maildrop is fixed at login.
func TestSnapshot(t *testing.T) {
	e := newEnv(t, nil)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	c := e.login()
	deliver(t, e.st, e.acct, e.inbox.ID, msg2)
	c.cmd("STAT").expect(fmt.Sprintf("+OK 1 %d", len(crlf(msg1))))
	c.cmd("RETR 2").expect("-ERR no such message")
	c.cmd("QUIT").expectPrefix("+OK")
	c.expectClosed()
	c = e.login()
	c.cmd("STAT").expect(fmt.Sprintf("+OK 2 %d", len(crlf(msg1))+len(crlf(msg2))))
}

// TestMessageGoneDuringSession: IMAP expunges a message the POP3 session
// lists; RETR answers -ERR and the session goes on.
func TestMessageGoneDuringSession(t *testing.T) {
	e := newEnv(t, nil)
	uid := deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	deliver(t, e.st, e.acct, e.inbox.ID, msg2)
	c := e.login()
	if _, err := e.st.Expunge(context.Background(), e.acct.ID, e.inbox.ID, store.UIDSetOf(uid)); err != nil {
		t.Fatal(err)
	}
	c.cmd("RETR 1").expect("-ERR no such message")
	c.cmd("RETR 2").expectPrefix("+OK")
	c.multiline()
	c.cmd("DELE 1").expect("+OK message 1 deleted")
	c.cmd("QUIT").expectPrefix("+OK")
	c.expectClosed()
	if n := len(e.inboxUIDs()); n != 1 {
		t.Fatalf("%d messages left, want 1", n)
	}
}

// TestUIDLStable: UIDLs survive IMAP flag changes and other messages'
// expunges, and differ between messages with equal content.
func TestUIDLStable(t *testing.T) {
	e := newEnv(t, nil)
	u1 := deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	uidls := func() []string {
		c := e.login()
		c.cmd("UIDL").expectPrefix("+OK")
		var ids []string
		for _, l := range c.lines() {
			ids = append(ids, strings.Fields(l)[1])
		}
		c.cmd("QUIT").expectPrefix("+OK")
		c.expectClosed()
		return ids
	}
	before := uidls()
	if len(before) != 3 || before[0] == before[1] || before[1] == before[2] {
		t.Fatalf("UIDLs %q are not distinct", before)
	}
	ctx := context.Background()
	all := store.UIDSetOf(e.inboxUIDs()...)
	if _, err := e.st.SetFlags(ctx, e.acct.ID, e.inbox.ID, all, store.FlagsAdd, store.Flags{Sys: store.FlagSeen | store.FlagFlagged, Keywords: []string{"$Label1"}}, 0); err != nil {
		t.Fatal(err)
	}
	if got := uidls(); strings.Join(got, " ") != strings.Join(before, " ") {
		t.Fatalf("UIDLs changed with flags: %q -> %q", before, got)
	}
	if _, err := e.st.Expunge(ctx, e.acct.ID, e.inbox.ID, store.UIDSetOf(u1)); err != nil {
		t.Fatal(err)
	}
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	got := uidls()
	if len(got) != 3 || got[0] != before[1] || got[1] != before[2] || got[2] == before[0] {
		t.Fatalf("after expunge and new delivery: %q (before %q): a UIDL was reused or changed", got, before)
	}
}
