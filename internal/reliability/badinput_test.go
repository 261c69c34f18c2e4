package reliability

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/smtpd"
	"github.com/skrytka/skrytka/internal/testharness"
)

// badCase is one hostile input. After the setup for its state, send is
// written in one piece; then for each entry of want a line is read
// (untagged IMAP lines "* ..." are skipped unless the entry starts with
// "*") and must start with one of the "|"-separated prefixes. Then the
// connection must be alive (a harmless probe command succeeds) or closed.
type badCase struct {
	name   string
	state  string // protocol-specific, e.g. "pre", "auth", "sel"
	send   string
	want   []string
	closed bool
}

// matchAny reports whether line starts with one of the "|"-separated
// prefixes of want.
func matchAny(line, want string) bool {
	for _, p := range strings.Split(want, "|") {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// runBad drives one case over a fresh connection.
func runBad(t *testing.T, c badCase, dial func(t *testing.T, state string) *testharness.LineConn, skipUntagged bool, probe, probeWant string) {
	t.Helper()
	lc := dial(t, c.state)
	lc.Timeout = 5 * time.Second
	lc.Write(c.send)
	for _, w := range c.want {
		for {
			l := lc.ReadLine()
			if skipUntagged && strings.HasPrefix(l, "* ") && !strings.HasPrefix(w, "*") {
				continue
			}
			if !matchAny(l, w) {
				t.Fatalf("got %.200q, want %q", l, w)
			}
			break
		}
	}
	if c.closed {
		lc.ExpectClosed()
		return
	}
	lc.Write(probe)
	for {
		l := lc.ReadLine()
		if skipUntagged && strings.HasPrefix(l, "* ") {
			continue
		}
		if !strings.HasPrefix(l, probeWant) {
			t.Fatalf("connection did not survive: probe got %.200q", l)
		}
		return
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

const (
	big    = "4294967295"
	nested = "((((((((((((((((((((((((((((((((((((((((ALL))))))))))))))))))))))))))))))))))))))))"
)

func TestBadInputIMAP(t *testing.T) {
	srvTLS, cliTLS := testharness.TLSConfigs(t)
	s := startStack(t, stackOpts{TLS: srvTLS})
	a := s.addUser(t, "a@localhost")
	s.addUser(t, "b@localhost")
	if _, err := s.Store.CreateMailbox(t.Context(), a.ID, "Full", ""); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, s.Store, a, "Full", "Subject: one\r\n\r\n1\r\n")
	appendMsg(t, s.Store, a, "Full", "Subject: two\r\n\r\n2\r\n")

	dial := func(t *testing.T, state string) *testharness.LineConn {
		t.Helper()
		lc := testharness.Dial(t, s.IMAPAddr)
		lc.Expect("* OK")
		if state == "pre" {
			return lc
		}
		lc.Send(`p LOGIN a@localhost "%s"`, testPass)
		lc.ExpectUntil("p OK")
		switch state {
		case "sel":
			lc.Send("p SELECT INBOX")
			lc.ExpectUntil("p OK")
		case "full":
			lc.Send("p SELECT Full")
			lc.ExpectUntil("p OK")
		}
		return lc
	}
	cases := []badCase{
		// Lines and bytes.
		{"over-long line", "pre", "a " + strings.Repeat("x", 70<<10) + "\r\n", []string{"* BYE [TOOBIG]"}, true},
		{"over-long line logged in", "auth", "a LIST \"\" " + strings.Repeat("x", 70<<10) + "\r\n", []string{"* BYE [TOOBIG]"}, true},
		{"NUL in command", "pre", "a NOOP\x00\r\n", []string{"a BAD"}, false},
		{"NUL in mailbox name", "auth", "a SELECT \"IN\x00BOX\"\r\n", []string{"a BAD|a NO"}, false},
		{"bare LF", "auth", "a NOOP\n", []string{"a OK|a BAD"}, false},
		{"only CRLF", "auth", "\r\n", []string{"* BAD|BAD"}, false},
		{"HTTP first", "pre", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", []string{"* BYE"}, true},
		{"binary junk", "auth", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", []string{"* BAD|\x16"}, false},
		// Literals.
		{"literal over APPENDLIMIT", "auth", "a APPEND INBOX {999999999}\r\n", []string{"a NO [TOOBIG]"}, false},
		{"non-sync literal over APPENDLIMIT", "auth", "a APPEND INBOX {999999999+}\r\n", []string{"* BYE [TOOBIG]|a BAD [TOOBIG]"}, true},
		{"literal larger than int64", "auth", "a APPEND INBOX {99999999999999999999}\r\n", []string{"a BAD|a NO"}, false},
		{"huge literal outside APPEND", "pre", "a LOGIN {99999999}\r\n", []string{"a BAD|a NO|* BYE"}, false},
		{"huge non-sync literal outside APPEND", "pre", "a LOGIN {99999999+}\r\n", []string{"* BYE|a BAD"}, true},
		{"literal in wrong state", "pre", "a APPEND INBOX {5}\r\n", []string{"a BAD|a NO"}, false},
		{"negative literal", "auth", "a APPEND INBOX {-5}\r\n", []string{"a BAD"}, false},
		// Mailbox names.
		{"invalid UTF-8 name", "auth", "a CREATE \"\xff\xfe\"\r\n", []string{"a NO|a BAD"}, false},
		{"overlong UTF-8 name", "auth", "a CREATE \"\xc0\xaf\"\r\n", []string{"a NO|a BAD"}, false},
		{"UTF-8 surrogate name", "auth", "a CREATE \"\xed\xa0\x80\"\r\n", []string{"a NO|a BAD"}, false},
		{"mUTF-7 encoding ASCII", "auth", "a CREATE \"&AGE-\"\r\n", []string{"a NO|a BAD"}, false},
		{"mUTF-7 unterminated", "auth", "a CREATE \"&Jjo\"\r\n", []string{"a NO|a BAD"}, false},
		{"mUTF-7 bad base64", "auth", "a CREATE \"&!!!-\"\r\n", []string{"a NO|a BAD"}, false},
		{"name of 2000 bytes", "auth", "a CREATE " + strings.Repeat("n", 2000) + "\r\n", []string{"a NO|a BAD"}, false},
		{"name nested beyond the limit", "auth", "a CREATE " + strings.Repeat("d/", 60) + "x\r\n", []string{"a NO|a BAD"}, false},
		{"dot-dot path", "auth", "a SELECT ../b@localhost/INBOX\r\n", []string{"a NO [NONEXISTENT]|a BAD"}, false},
		{"dot-dot inside", "auth", "a SELECT INBOX/../../b@localhost/INBOX\r\n", []string{"a NO|a BAD"}, false},
		{"absolute path", "auth", "a SELECT /INBOX\r\n", []string{"a NO|a BAD"}, false},
		{"absolute create", "auth", "a CREATE /etc\r\n", []string{"a NO|a BAD"}, false},
		{"quoted tilde user", "auth", "a SELECT \"~b@localhost\"\r\n", []string{"a NO"}, false},
		{"percent-encoded dots", "auth", "a SELECT \"%2e%2e/b@localhost/INBOX\"\r\n", []string{"a NO"}, false},
		{"other user's address", "auth", "a SELECT b@localhost/INBOX\r\n", []string{"a NO"}, false},
		{"shared namespace", "auth", "a SELECT \"#shared/b@localhost\"\r\n", []string{"a NO"}, false},
		{"status other user", "auth", "a STATUS \"../b@localhost/INBOX\" (MESSAGES)\r\n", []string{"a NO"}, false},
		{"append escape", "auth", "a APPEND \"../b@localhost/INBOX\" {3+}\r\nhi\n\r\n", []string{"a NO [TRYCREATE]|a NO"}, false},
		{"list escape", "auth", "a LIST \"../\" \"*\"\r\n", []string{"a OK"}, false},
		// Nesting.
		{"nested search keys", "full", "a SEARCH " + nested + "\r\n", []string{"a BAD"}, false},
		{"nested fetch list", "full", "a FETCH 1 " + strings.Repeat("(", 100) + "FLAGS" + strings.Repeat(")", 100) + "\r\n", []string{"a BAD"}, false},
		{"nested append flags", "auth", "a APPEND INBOX " + strings.Repeat("(", 100) + "\r\n", []string{"a BAD"}, false},
		// Work per command is bounded (each case must also finish within
		// the 5 s read timeout).
		{"LIST wildcards", "auth", "a LIST \"\" \"" + strings.Repeat("*a", 40) + "b\"\r\n", []string{"a OK"}, false},
		{"LIST percent wildcards", "auth", "a LIST \"\" \"" + strings.Repeat("%a", 40) + "b\"\r\n", []string{"a OK"}, false},
		{"deep section", "full", "a FETCH 1 BODY.PEEK[" + strings.Repeat("1.", 2000) + "1]\r\n", []string{"a BAD|a NO"}, false},
		{"many header fields", "full", "a FETCH 1 BODY.PEEK[HEADER.FIELDS (" + strings.TrimSpace(strings.Repeat("X-A ", 5000)) + ")]\r\n", []string{"* 1 FETCH", "", ")", "a OK"}, false},
		{"search too complex", "full", "a SEARCH " + strings.Repeat("OR SUBJECT a ", 2000) + "ALL\r\n", []string{"a BAD|a NO"}, false},
		// Sequence sets.
		{"FETCH 1:* empty", "sel", "a FETCH 1:* (FLAGS)\r\n", []string{"a OK|a NO"}, false},
		{"UID FETCH 1:* empty", "sel", "a UID FETCH 1:* (FLAGS)\r\n", []string{"a OK"}, false},
		{"FETCH billions empty", "sel", "a FETCH 1:" + big + " (FLAGS)\r\n", []string{"a BAD|a NO|a OK"}, false},
		{"STORE billions empty", "sel", "a STORE 1:" + big + " +FLAGS (\\Seen)\r\n", []string{"a BAD|a NO|a OK"}, false},
		{"SEARCH billions", "full", "a SEARCH 1:" + big + "," + big + ":1 UID 1:" + big + "\r\n", []string{"* SEARCH 1 2", "a OK"}, false},
		{"UID FETCH billions", "full", "a UID FETCH 1:" + big + " (UID)\r\n", []string{"* 1 FETCH", "* 2 FETCH", "a OK"}, false},
		{"UID STORE billions", "full", "a UID STORE 1:" + big + " +FLAGS.SILENT (\\Seen)\r\n", []string{"a OK"}, false},
		{"UID COPY billions", "full", "a UID COPY 1:" + big + " Trash\r\n", []string{"a OK"}, false},
		{"FETCH billions full", "full", "a FETCH 1:" + big + " (UID)\r\n", []string{"a BAD|a NO|* 1 FETCH"}, false},
		{"many ranges", "full", "a UID FETCH " + manyRanges(5000) + " (UID)\r\n", []string{"* 1 FETCH", "* 2 FETCH", "a OK"}, false},
		{"number too large", "full", "a FETCH 4294967296 (UID)\r\n", []string{"a BAD"}, false},
		{"sequence zero", "full", "a FETCH 0 (UID)\r\n", []string{"a BAD"}, false},
		// Wrong state.
		{"SELECT before login", "pre", "a SELECT INBOX\r\n", []string{"a BAD|a NO"}, false},
		{"FETCH before login", "pre", "a FETCH 1 FLAGS\r\n", []string{"a BAD|a NO"}, false},
		{"FETCH without SELECT", "auth", "a FETCH 1 FLAGS\r\n", []string{"a BAD|a NO"}, false},
		{"EXPUNGE without SELECT", "auth", "a EXPUNGE\r\n", []string{"a BAD|a NO"}, false},
		{"LOGIN twice", "auth", "a LOGIN a@localhost x\r\n", []string{"a BAD|a NO"}, false},
		{"DONE without IDLE", "auth", "DONE\r\n", []string{"DONE BAD|* BAD"}, false},
		// AUTHENTICATE.
		{"AUTHENTICATE bad base64", "pre", "a AUTHENTICATE PLAIN\r\n!!!notbase64\r\n", []string{"+", "a BAD"}, false},
		{"AUTHENTICATE bad initial response", "pre", "a AUTHENTICATE PLAIN !!!=\r\n", []string{"a BAD"}, false},
		{"AUTHENTICATE cancelled", "pre", "a AUTHENTICATE PLAIN\r\n*\r\n", []string{"+", "a BAD|a NO"}, false},
		{"AUTHENTICATE unknown mechanism", "pre", "a AUTHENTICATE X-NOPE\r\n", []string{"a NO|a BAD"}, false},
		{"AUTHENTICATE no NULs", "pre", "a AUTHENTICATE PLAIN YWJj\r\n", []string{"a BAD|a NO"}, false},
		{"AUTHENTICATE huge response", "pre", "a AUTHENTICATE PLAIN\r\n" + strings.Repeat("QUFB", 20<<10) + "\r\n", []string{"+", "* BYE|a BAD|a NO"}, true},
	}
	base := heapInUse()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runBad(t, c, dial, true, "z NOOP\r\n", "z OK")
		})
	}
	if grown := int64(heapInUse()) - int64(base); grown > 32<<20 {
		t.Errorf("heap grew by %d MiB over the bad-input cases", grown>>20)
	}

	t.Run("announced literals not sent", func(t *testing.T) {
		// Twenty clients announce 40 MB APPENDs (under APPENDLIMIT), get
		// the continuation and send almost nothing: the server must
		// stream, not reserve the announced size.
		before := heapInUse()
		var conns []*testharness.LineConn
		for i := 0; i < 20; i++ {
			lc := dial(t, "auth")
			lc.Send("a APPEND INBOX {40000000}")
			lc.Expect("+")
			lc.Write("Subject: x\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 8000))
			conns = append(conns, lc)
		}
		// Past the inline limit, the bodies are being staged in files.
		waitFor(t, func() bool {
			ents, _ := os.ReadDir(filepath.Join(s.Dir, "tmp"))
			return len(ents) == len(conns)
		})
		if grown := int64(heapInUse()) - int64(before); grown > 64<<20 {
			t.Errorf("20 pending 40 MB literals grew the heap by %d MiB", grown>>20)
		}
		for _, lc := range conns {
			lc.Close()
		}
		// The abandoned bodies' staging files are removed.
		waitFor(t, func() bool {
			ents, _ := os.ReadDir(filepath.Join(s.Dir, "tmp"))
			return len(ents) == 0
		})
	})

	t.Run("STARTTLS with pipelined plaintext", func(t *testing.T) {
		lc := dial(t, "pre")
		lc.Write("a STARTTLS\r\nb LOGIN a@localhost \"" + testPass + "\"\r\n")
		lc.Expect("a OK")
		lc.StartTLS(cliTLS)
		lc.Send("c NOOP")
		if l := lc.ReadLine(); !strings.HasPrefix(l, "c OK") {
			t.Fatalf("injected command was executed or reply out of step: %q", l)
		}
		lc.Send("d SELECT INBOX")
		if l := lc.ReadLine(); !strings.HasPrefix(l, "d BAD") && !strings.HasPrefix(l, "d NO") {
			t.Fatalf("plaintext LOGIN sent before STARTTLS took effect: %q", l)
		}
	})
}

// manyRanges is a UID set of n disjoint ranges, the last covering
// everything.
func manyRanges(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d:%d,", 1000+2*i, 1000+2*i)
	}
	b.WriteString("1:" + big)
	return b.String()
}

func TestBadInputPOP3(t *testing.T) {
	srvTLS, cliTLS := testharness.TLSConfigs(t)
	s := startStack(t, stackOpts{TLS: srvTLS})
	a := s.addUser(t, "a@localhost")
	s.addUser(t, "b@localhost")
	appendMsg(t, s.Store, a, "INBOX", "Subject: one\r\n\r\n1\r\n")
	dial := func(t *testing.T, state string) *testharness.LineConn {
		t.Helper()
		for start := time.Now(); ; {
			lc := testharness.Dial(t, s.POP3Addr)
			lc.Expect("+OK")
			if state != "auth" {
				return lc
			}
			lc.Send("USER a@localhost")
			lc.Expect("+OK")
			lc.Send("PASS %s", testPass)
			l := lc.ReadLine()
			if strings.HasPrefix(l, "+OK") {
				return lc
			}
			// The previous case's session may not have ended yet on the
			// server: its maildrop lock is still held (RFC 2449 [IN-USE]).
			if !strings.HasPrefix(l, "-ERR [IN-USE]") || time.Since(start) > 5*time.Second {
				t.Fatalf("login: %q", l)
			}
			lc.Close()
			time.Sleep(20 * time.Millisecond)
		}
	}
	cases := []badCase{
		{"over-long line", "pre", strings.Repeat("x", 5000) + "\r\n", []string{"-ERR"}, false},
		{"over-long line logged in", "auth", "RETR " + strings.Repeat("1", 5000) + "\r\n", []string{"-ERR"}, false},
		{"NUL first command", "pre", "NO\x00OP\r\n", []string{"-ERR"}, true},
		{"NUL logged in", "auth", "NO\x00OP\r\n", []string{"-ERR"}, false},
		{"HTTP first", "pre", "GET / HTTP/1.1\r\n", []string{"-ERR"}, true},
		{"STAT before login", "pre", "STAT\r\n", []string{"-ERR"}, false},
		{"RETR before login", "pre", "RETR 1\r\n", []string{"-ERR"}, false},
		{"PASS without USER", "pre", "PASS x\r\n", []string{"-ERR"}, false},
		{"USER after login", "auth", "USER a@localhost\r\n", []string{"-ERR"}, false},
		{"RETR 2^32", "auth", "RETR 4294967296\r\n", []string{"-ERR"}, false},
		{"RETR negative", "auth", "RETR -1\r\n", []string{"-ERR"}, false},
		{"RETR zero", "auth", "RETR 0\r\n", []string{"-ERR"}, false},
		{"TOP huge count", "auth", "TOP 1 99999999999999999999\r\n", []string{"-ERR|+OK"}, false},
		{"DELE twice", "auth", "DELE 1\r\nDELE 1\r\n", []string{"+OK", "-ERR"}, false},
		{"RETR deleted", "auth", "DELE 1\r\nRETR 1\r\n", []string{"+OK", "-ERR"}, false},
		{"AUTH bad base64", "pre", "AUTH PLAIN\r\n!!!\r\n", []string{"+", "-ERR"}, false},
		{"AUTH bad initial response", "pre", "AUTH PLAIN ===\r\n", []string{"-ERR"}, false},
		{"AUTH cancelled", "pre", "AUTH PLAIN\r\n*\r\n", []string{"+", "-ERR"}, false},
		{"AUTH unknown mechanism", "pre", "AUTH X-NOPE\r\n", []string{"-ERR"}, false},
		{"AUTH no NULs", "pre", "AUTH PLAIN YWJj\r\n", []string{"-ERR"}, false},
		{"USER dot-dot", "pre", "USER ../b@localhost\r\nPASS " + testPass + "\r\n", []string{"+OK", "-ERR"}, false},
		{"USER path", "pre", "USER b@localhost/../a@localhost\r\nPASS " + testPass + "\r\n", []string{"+OK|-ERR", "-ERR"}, false},
		{"invalid UTF-8 user", "pre", "USER \xff\xfe@localhost\r\nPASS x\r\n", []string{"+OK|-ERR", "-ERR"}, false},
	}
	base := heapInUse()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probe, want := "CAPA\r\n", "+OK"
			runBad(t, c, dial, false, probe, want)
		})
	}
	if grown := int64(heapInUse()) - int64(base); grown > 32<<20 {
		t.Errorf("heap grew by %d MiB over the bad-input cases", grown>>20)
	}
	t.Run("too many bad commands", func(t *testing.T) {
		lc := dial(t, "auth")
		// One write: the server may close after the tenth bad command,
		// and a later separate write would then fail with EPIPE.
		var sb strings.Builder
		for i := 0; i < 30; i++ {
			fmt.Fprintf(&sb, "XYZZY %d\r\n", i)
		}
		lc.Write(sb.String())
		lc.ExpectClosed()
	})
	t.Run("STLS with pipelined plaintext", func(t *testing.T) {
		lc := dial(t, "pre")
		lc.Write("STLS\r\nUSER a@localhost\r\n")
		lc.Expect("+OK")
		lc.StartTLS(cliTLS)
		lc.Send("PASS %s", testPass)
		if l := lc.ReadLine(); !strings.HasPrefix(l, "-ERR") {
			t.Fatalf("USER sent before STLS was kept: PASS got %q", l)
		}
	})
}

func smtpDial(addr, hello string) func(t *testing.T, state string) *testharness.LineConn {
	return func(t *testing.T, state string) *testharness.LineConn {
		t.Helper()
		lc := testharness.Dial(t, addr)
		lc.Expect("220 ")
		if state != "pre" {
			lc.Send("%s client.example.org", hello)
			lc.ExpectUntil("250 ")
		}
		if state == "mail" {
			lc.Send("MAIL FROM:<x@example.org>")
			lc.Expect("250 ")
		}
		return lc
	}
}

func smtpBadCases(hello string) []badCase {
	return []badCase{
		{"over-long line", "helo", strings.Repeat("x", 9000) + "\r\n", []string{"500 "}, true},
		{"NUL in address", "helo", "MAIL FROM:<a\x00b@example.org>\r\n", []string{"501 |500 "}, false},
		{"invalid UTF-8 address", "helo", "MAIL FROM:<\xff\xfe@example.org>\r\n", []string{"501 |553 |550 "}, false},
		{"MAIL before " + hello, "pre", "MAIL FROM:<x@example.org>\r\n", []string{"503 |502 "}, false},
		{"RCPT before MAIL", "helo", "RCPT TO:<a@localhost>\r\n", []string{"503 |502 "}, false},
		{"DATA before RCPT", "mail", "DATA\r\n", []string{"503 |502 |554 "}, false},
		{"dot-dot recipient", "mail", "RCPT TO:<../b@localhost>\r\n", []string{"550 |501 |553 "}, false},
		{"path recipient", "mail", "RCPT TO:<a@localhost/../b>\r\n", []string{"501 |550 |553 "}, false},
		{"absolute path recipient", "mail", "RCPT TO:</etc/passwd@localhost>\r\n", []string{"501 |550 |553 "}, false},
		{"address-literal recipient", "mail", "RCPT TO:<a@[127.0.0.1]>\r\n", []string{"550 |554 |553 "}, false},
		{"source route", "mail", "RCPT TO:<@evil.example:a@localhost>\r\n", []string{"250 |501 |550 |553 "}, false},
		{"recipients over the cap", "mail", strings.Repeat("RCPT TO:<a@localhost>\r\n", 101), append(repeatWant("250 ", 100), "452 "), false},
		{"SIZE too large", "helo", "MAIL FROM:<x@example.org> SIZE=99999999999999\r\n", []string{"552 |501 "}, false},
		{"SIZE overflow", "helo", "MAIL FROM:<x@example.org> SIZE=999999999999999999999999\r\n", []string{"552 |501 |555 "}, false},
		// RFC 5321 §4.1.1.11 says 555; go-smtp answers 500 5.5.4.
		{"unknown MAIL parameter", "helo", "MAIL FROM:<x@example.org> X-EVIL=1\r\n", []string{"555 |501 |504 |500 "}, false},
		{"AUTH bad base64", "helo", "AUTH PLAIN !!!\r\n", []string{"454 |501 |502 |503 |504 |535 "}, false},
		{"BDAT size unparsable", "mail", "RCPT TO:<a@localhost>\r\nBDAT 99999999999 LAST\r\n", []string{"250 ", "552 |500 |501 |554 "}, false},
		{"BDAT negative", "mail", "RCPT TO:<a@localhost>\r\nBDAT -1\r\n", []string{"250 ", "501 |500 "}, false},
		{"HTTP request", "pre", "GET / HTTP/1.1\r\n", []string{"500 |501 |502 |421 "}, false},
	}
}

func repeatWant(w string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = w
	}
	return out
}

func TestBadInputSMTP(t *testing.T) {
	srvTLS, cliTLS := testharness.TLSConfigs(t)
	s := startStack(t, stackOpts{TLS: srvTLS, SMTP: func(o *smtpd.Options) { o.MaxMessageBytes = 1 << 20 }})
	s.addUser(t, "a@localhost")
	s.addUser(t, "b@localhost")
	for _, proto := range []struct {
		name, addr, hello string
	}{{"smtp", s.SMTPAddr, "EHLO"}, {"lmtp", s.LMTPAddr, "LHLO"}} {
		t.Run(proto.name, func(t *testing.T) {
			dial := smtpDial(proto.addr, proto.hello)
			base := heapInUse()
			for _, c := range smtpBadCases(proto.hello) {
				if proto.name == "lmtp" && c.name == "HTTP request" {
					continue // LMTP has no error cap and answers each line
				}
				t.Run(c.name, func(t *testing.T) {
					runBad(t, c, dial, false, "NOOP\r\n", "250 ")
				})
			}
			if grown := int64(heapInUse()) - int64(base); grown > 32<<20 {
				t.Errorf("heap grew by %d MiB", grown>>20)
			}
			t.Run("message over SIZE", func(t *testing.T) {
				lc := dial(t, "mail")
				lc.Send("RCPT TO:<a@localhost>")
				lc.Expect("250 ")
				lc.Send("DATA")
				lc.Expect("354 ")
				line := strings.Repeat("y", 998) + "\r\n"
				lc.Write("Subject: big\r\n\r\n")
				for i := 0; i < 1500; i++ {
					lc.Write(line)
				}
				lc.Write(".\r\n")
				lc.Expect("552 ")
				lc.Send("NOOP")
				lc.Expect("250 ")
			})
			t.Run("BDAT over SIZE is discarded, not read as commands", func(t *testing.T) {
				lc := dial(t, "mail")
				lc.Send("RCPT TO:<a@localhost>")
				lc.Expect("250 ")
				chunk := strings.Repeat("RSET\r\nNOOP\r\n", (2<<20)/12)
				lc.Write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
				lc.Expect("552 ")
				lc.Send("HELP")
				if l := lc.ReadLine(); !strings.HasPrefix(l, "214") && !strings.HasPrefix(l, "502") && !strings.HasPrefix(l, "500") {
					t.Fatalf("chunk data was read as commands: %q", l)
				}
			})
			t.Run("STARTTLS with pipelined plaintext", func(t *testing.T) {
				lc := dial(t, "helo")
				lc.Write("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
				lc.Expect("220 ")
				tc := tls.Client(lc.Conn(), cliTLS)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					return // the server read the plaintext as TLS and gave up: nothing injected
				}
				w := &wire{c: tc, r: newReader(tc), timeout: 5 * time.Second}
				if code, l, err := w.smtpCmd(proto.hello + " x"); code != 250 {
					t.Fatalf("after STARTTLS: %q %v", l, err)
				}
				// If MAIL had survived, a second MAIL would be 503.
				if code, l, err := w.smtpCmd("MAIL FROM:<x@example.org>"); code != 250 {
					t.Fatalf("pipelined plaintext MAIL was kept: %q %v", l, err)
				}
			})
		})
	}
	t.Run("too many errors", func(t *testing.T) {
		lc := smtpDial(s.SMTPAddr, "EHLO")(t, "mail")
		var sb strings.Builder // one write, as above
		for i := 0; i < 30; i++ {
			fmt.Fprintf(&sb, "RCPT TO:<nobody%d@localhost>\r\n", i)
		}
		lc.Write(sb.String())
		lines := lc.ExpectUntil("421 ")
		if len(lines) > 20 {
			t.Errorf("421 only after %d replies", len(lines))
		}
		lc.ExpectClosed()
	})
}

// knownBug skips a test that demonstrates a bug found here in a package
// owned elsewhere, unless SKRYTKA_KNOWN_BUGS=1. Remove the call once the
// bug is fixed.
func knownBug(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("SKRYTKA_KNOWN_BUGS") != "1" {
		t.Skipf("known bug (set SKRYTKA_KNOWN_BUGS=1 to run): %s", what)
	}
}

// TestIMAPTildeAtomIsAName: "~" is an ATOM-CHAR (RFC 9051 §9, atom-specials
// do not include it); only "~{" starts a literal8. So `SELECT ~other` names
// a mailbox (NO [NONEXISTENT] here), and a user's own mailbox "~backup"
// can be selected unquoted.
func TestIMAPTildeAtomIsAName(t *testing.T) {
	s := startStack(t, stackOpts{})
	a := s.addUser(t, "a@localhost")
	if _, err := s.Store.CreateMailbox(t.Context(), a.ID, "~backup", ""); err != nil {
		t.Fatal(err)
	}
	lc := testharness.Dial(t, s.IMAPAddr)
	lc.Expect("* OK")
	lc.Send(`p LOGIN a@localhost "%s"`, testPass)
	lc.ExpectUntil("p OK")
	lc.Send("a SELECT ~other")
	if l := lc.ExpectUntil("a "); !strings.HasPrefix(l[len(l)-1], "a NO") {
		t.Errorf("SELECT ~other: %q, want NO", l)
	}
	lc.Send("b SELECT ~backup")
	if l := lc.ExpectUntil("b "); !strings.HasPrefix(l[len(l)-1], "b OK") {
		t.Errorf("SELECT ~backup: %q, want OK", l)
	}
}
