package reliability

import (
	"strings"
	"testing"
	"time"
)

// TestStackSmoke delivers one message over LMTP and reads it back over
// IMAP and POP3: the stack every other test builds on works end to end.
func TestStackSmoke(t *testing.T) {
	s := startStack(t, stackOpts{})
	s.addUser(t, "a@localhost")
	w, err := dialWire(s.LMTPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if code, l, err := w.reply(); code != 220 {
		t.Fatalf("greeting %q %v", l, err)
	}
	for _, c := range []string{"LHLO x", "MAIL FROM:<s@example.org>", "RCPT TO:<a@localhost>", "DATA"} {
		if code, l, err := w.smtpCmd(c); code/100 != 2 && code != 354 {
			t.Fatalf("%s: %q %v", c, l, err)
		}
	}
	w.send("Subject: hi\r\n\r\nbody\r\n.\r\n")
	if code, l, err := w.reply(); code != 250 {
		t.Fatalf("data: %q %v", l, err)
	}
	im, err := imapLogin(s.IMAPAddr, "a@localhost", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	im.send("s SELECT INBOX\r\n")
	if l, _, err := im.until("s "); !strings.HasPrefix(l, "s OK") {
		t.Fatalf("select %q %v", l, err)
	}
	im.send("f FETCH 1 BODY[TEXT]\r\n")
	l, lines, err := im.until("f ")
	if !strings.HasPrefix(l, "f OK") || !strings.Contains(strings.Join(lines, "\n"), "body") {
		t.Fatalf("fetch %q %q %v", l, lines, err)
	}
	pw, err := pop3Login(s.POP3Addr, "a@localhost", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	pw.send("STAT\r\n")
	if l, _ := pw.line(); !strings.HasPrefix(l, "+OK 1 ") {
		t.Fatalf("stat %q", l)
	}
}
