package imapd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestSortCollation: i;ascii-casemap folds ASCII letters only, so "É"
// and "é" stay different (UTF-8 order: É before é) while "b" and "B" tie.
func TestSortCollation(t *testing.T) {
	ts := newTestServer(t)
	for _, subj := range []string{"=?utf-8?q?=C3=A9clair?=", "b", "=?utf-8?q?=C3=89clair?=", "B", "a"} {
		ts.appendMsg(t, "INBOX", "Subject: "+subj+"\r\n\r\nx\r\n", store.Flags{})
	}
	rc := ts.login(t)
	rc.ok("S SELECT INBOX")
	if u := rc.ok("T SORT (SUBJECT) UTF-8 ALL"); len(u) != 1 || u[0] != "* SORT 5 2 4 3 1" {
		t.Fatalf("SORT (SUBJECT): %q, want a, b, B, É, é", u)
	}
}

// TestSortDisplay: DISPLAYFROM and DISPLAYTO (RFC 5957) sort by the
// first address's decoded display name, or its addr-spec without one;
// FROM sorts by the local part.
func TestSortDisplay(t *testing.T) {
	ts := newTestServer(t)
	for _, h := range []string{
		"From: \"Zoe Adams\" <adams@x.org>\r\nTo: Carl <c@x.org>\r\n",
		"From: bert@x.org\r\nTo: a@x.org\r\n",
		"From: =?utf-8?q?Anna_B?= <zz@x.org>\r\n",
		"Subject: no addresses\r\n",
	} {
		ts.appendMsg(t, "INBOX", h+"\r\nx\r\n", store.Flags{})
	}
	rc := ts.login(t)
	if caps := rc.ok("C CAPABILITY"); !strings.Contains(caps[0], " SORT=DISPLAY") {
		t.Fatalf("SORT=DISPLAY not advertised: %q", caps)
	}
	rc.ok("S SELECT INBOX")
	for _, c := range []struct{ cmd, want string }{
		{"SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 4 3 2 1"},
		{"SORT (FROM) UTF-8 ALL", "* SORT 4 1 2 3"},
		{"SORT (DISPLAYTO) UTF-8 ALL", "* SORT 3 4 2 1"},
		{"SORT (REVERSE DISPLAYFROM) UTF-8 ALL", "* SORT 1 2 3 4"},
	} {
		if u := rc.ok("T " + c.cmd); len(u) != 1 || u[0] != c.want {
			t.Errorf("%s: %q, want %q", c.cmd, u, c.want)
		}
	}
}

func TestBaseSubject(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"hello", "hello"},
		{"Re: hello", "hello"},
		{"RE: [list] Re: Fwd: hello (fwd)", "hello"},
		{"Re: Re:  Re:hello", "hello"},
		{"[list] hello", "hello"},
		{"[list]", "[list]"},
		{"[a] [b]", "[b]"},
		{"[fwd: Re: hello]", "hello"},
		{"Re: [fwd: hello] (fwd)", "hello"},
		{"Fw[x]: y", "y"},
		{"FWD : y", "y"},
		{"Re", "Re"},
		{"Reply: x", "Reply: x"},
		{"Re: ", ""},
		{"hello (FWD)  (fwd)", "hello"},
		{"=?utf-8?q?Re:_R=C3=A9union?=", "Réunion"},
		{"  spaced \t  out  ", "spaced out"},
		{"[unclosed hello", "[unclosed hello"},
		{"", ""},
	} {
		if got := baseSubject(c.in); got != c.want {
			t.Errorf("baseSubject(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestSort: SORT and UID SORT (RFC 5256) over raw lines and with
// Python's imaplib: every key, REVERSE, ties in mailbox order, search
// criteria, a message without the sorted field, and bad input.
func TestSort(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	if caps := rc.ok("C CAPABILITY"); !strings.Contains(caps[0], " SORT") {
		t.Fatalf("SORT not advertised: %q", caps)
	}
	msgs := []struct{ date, from, to, subject, sent, body string }{
		// uid 1 is expunged below, so sequence numbers are uid-1.
		{"01-Jan-2026 10:00:00 +0000", "zed@x.org", "a@x.org", "gone", "Thu, 1 Jan 2026 10:00:00 +0000", "x"},
		{"05-Jan-2026 10:00:00 +0000", "Bob@x.org", "carol@x.org", "Re: banana", "Mon, 5 Jan 2026 09:00:00 +0000", strings.Repeat("x", 200)},
		{"02-Jan-2026 10:00:00 +0000", "alice@x.org", "dave@x.org", "[list] apple", "Sat, 10 Jan 2026 09:00:00 +0100", strings.Repeat("x", 800)},
		{"04-Jan-2026 10:00:00 +0000", "carol@x.org", "bob@x.org", "Fwd: cherry (fwd)", "", strings.Repeat("x", 600)},
		{"03-Jan-2026 10:00:00 +0000", "alice@x.org", "", "APPLE", "Fri, 2 Jan 2026 09:00:00 -0500", strings.Repeat("x", 100)},
	}
	for _, m := range msgs {
		var h strings.Builder
		fmt.Fprintf(&h, "From: %s\r\n", m.from)
		if m.to != "" {
			fmt.Fprintf(&h, "To: %s\r\n", m.to)
		}
		if m.sent != "" {
			fmt.Fprintf(&h, "Date: %s\r\n", m.sent)
		}
		fmt.Fprintf(&h, "Subject: %s\r\n\r\n%s\r\n", m.subject, m.body)
		raw := h.String()
		rc.send(fmt.Sprintf("A APPEND INBOX \"%s\" {%d+}\r\n%s\r\n", m.date, len(raw), raw))
		if _, tagged := rc.until("A"); !strings.HasPrefix(tagged, "A OK") {
			t.Fatalf("APPEND: %q", tagged)
		}
	}
	rc.ok("S SELECT INBOX")
	rc.ok("D STORE 1 +FLAGS (\\Deleted)")
	rc.ok("X EXPUNGE")
	// Now: seq 1 = uid 2 (banana), 2 = uid 3 (apple), 3 = uid 4 (cherry),
	// 4 = uid 5 (APPLE); by size (the bodies outweigh the headers'
	// differences): APPLE, banana, cherry, apple.
	for _, c := range []struct{ cmd, want string }{
		{"SORT (SUBJECT) UTF-8 ALL", "* SORT 2 4 1 3"},         // apple, APPLE (tie: mailbox order), banana, cherry
		{"SORT (REVERSE SUBJECT) UTF-8 ALL", "* SORT 3 1 2 4"}, // REVERSE keeps ties in mailbox order
		{"SORT (ARRIVAL) UTF-8 ALL", "* SORT 2 4 3 1"},
		{"SORT (REVERSE ARRIVAL) US-ASCII ALL", "* SORT 1 3 4 2"},
		// Sent dates in UTC: banana 5 Jan 09:00, apple 10 Jan 08:00,
		// cherry has none (its arrival, 4 Jan 10:00), APPLE 2 Jan 14:00.
		{"SORT (DATE) UTF-8 ALL", "* SORT 4 3 1 2"},
		{"SORT (FROM) UTF-8 ALL", "* SORT 2 4 1 3"}, // alice, alice, bob (case folded), carol
		{"SORT (FROM REVERSE SIZE) UTF-8 ALL", "* SORT 2 4 1 3"},
		{"SORT (FROM SIZE) UTF-8 ALL", "* SORT 4 2 1 3"},
		{"SORT (TO) UTF-8 ALL", "* SORT 4 3 1 2"},      // none sorts first
		{"SORT (CC SIZE) UTF-8 ALL", "* SORT 4 1 3 2"}, // no Cc anywhere: by size
		{"SORT (SUBJECT) UTF-8 FROM alice", "* SORT 2 4"},
		{"SORT (SUBJECT) UTF-8 NOT FROM alice SMALLER 1000", "* SORT 1 3"},
		{"UID SORT (SUBJECT) UTF-8 ALL", "* SORT 3 5 2 4"},
		{"UID SORT (SIZE) UTF-8 UID 3:5", "* SORT 5 4 3"},
		{"SORT (SUBJECT) UTF-8 SUBJECT nothing-like-this", "* SORT"},
	} {
		u := rc.ok("T " + c.cmd)
		if len(u) != 1 || u[0] != c.want {
			t.Errorf("%s: got %q, want %q", c.cmd, u, c.want)
		}
	}
	for _, c := range []struct{ cmd, want string }{
		{"SORT (SUBJECT) ISO-8859-1 ALL", "B NO [BADCHARSET"},
		{"SORT () UTF-8 ALL", "B BAD"},
		{"SORT (REVERSE) UTF-8 ALL", "B BAD"},
		{"SORT (REVERSE REVERSE DATE) UTF-8 ALL", "B BAD"},
		{"SORT (BOGUS) UTF-8 ALL", "B BAD"},
		{"SORT (DATE) UTF-8", "B BAD"},
		{"SORT (DATE) ALL", "B BAD"},
		{"SORT DATE UTF-8 ALL", "B BAD"},
	} {
		if _, tagged := rc.cmd("B " + c.cmd); !strings.HasPrefix(tagged, c.want) {
			t.Errorf("%s: got %q, want %s", c.cmd, tagged, c.want)
		}
	}
	rc.ok("N NOOP") // the session survives all of the above

	runImaplib(t, ts, "imaplib sort ok", `
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
m.select("INBOX")
typ, data = m.sort("(REVERSE DATE)", "UTF-8", "ALL")
assert typ == "OK" and data == [b"2 1 3 4"], (typ, data)
typ, data = m.uid("SORT", "(SUBJECT)", "UTF-8", "FROM", "alice")
assert typ == "OK" and data == [b"3 5"], (typ, data)
m.logout()
print("imaplib sort ok")
`)
}
