package imapd

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

func TestGreetingCapabilities(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.dial(t)
	g := rc.line()
	for _, c := range []string{"IMAP4rev1", "IMAP4rev2", "AUTH=PLAIN", "SASL-IR", "ID", "LITERAL+", "ENABLE"} {
		if !strings.Contains(g, " "+c+" ") && !strings.Contains(g, " "+c+"]") {
			t.Errorf("greeting lacks %s: %q", c, g)
		}
	}
	if strings.Contains(g, "STARTTLS") {
		t.Errorf("STARTTLS offered without TLS config: %q", g)
	}
	u := rc.ok("a CAPABILITY")
	if len(u) != 1 || !strings.HasPrefix(u[0], "* CAPABILITY IMAP4rev1 IMAP4rev2") {
		t.Fatalf("capability %q", u)
	}
	rc.ok("b NOOP")
	u, tagged := rc.cmd("c LOGOUT")
	if !hasLine(u, "* BYE logging out") || tagged != "c OK LOGOUT completed" {
		t.Fatalf("logout %q %q", u, tagged)
	}
	rc.expectEOF()
}

func TestLoginCapabilityCode(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.dialGreet(t)
	// mbsync and fetchmail read capabilities from the LOGIN OK code.
	_, tagged := rc.cmd(`a LOGIN demo@localhost "secret pass"`)
	if !strings.HasPrefix(tagged, "a OK [CAPABILITY IMAP4rev1 IMAP4rev2") || strings.Contains(tagged, "AUTH=") {
		t.Fatalf("login %q", tagged)
	}
	_, tagged = rc.cmd(`b LOGIN demo@localhost x`)
	if !strings.HasPrefix(tagged, "b BAD") {
		t.Fatalf("second login %q", tagged)
	}
}

func TestLoginFailure(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.dialGreet(t)
	_, tagged := rc.cmd(`a LOGIN demo@localhost wrong`)
	if tagged != "a NO [AUTHENTICATIONFAILED] authentication failed" {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd(`b LOGIN nobody@localhost wrong`)
	if tagged != "b NO [AUTHENTICATIONFAILED] authentication failed" {
		t.Fatalf("%q", tagged)
	}
	_, tagged = rc.cmd(`c SELECT INBOX`)
	if !strings.HasPrefix(tagged, "c BAD") {
		t.Fatalf("select before login: %q", tagged)
	}
}

func TestTooManyLoginFailures(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.dialGreet(t)
	// Distinct unknown users, so the Authenticator's per-account throttle
	// does not slow the test down.
	for i := 1; i < maxLoginFailures; i++ {
		if _, tagged := rc.cmd(fmt.Sprintf("a LOGIN nobody%d@localhost wrong", i)); !strings.HasPrefix(tagged, "a NO") {
			t.Fatalf("%q", tagged)
		}
	}
	u, tagged := rc.cmd("b LOGIN nobody@localhost wrong")
	if !strings.HasPrefix(tagged, "b NO") {
		t.Fatalf("%q %q", u, tagged)
	}
	if l := rc.line(); l != "* BYE too many failed logins" {
		t.Fatalf("%q", l)
	}
	rc.expectEOF()
}

func TestAuthenticatePlain(t *testing.T) {
	ts := newTestServer(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name string
		resp string
		ok   bool
	}{
		{"curl empty authzid", "\x00demo@localhost\x00secret pass", true},
		{"mbsync repeats user", "demo@localhost\x00demo@localhost\x00secret pass", true},
		{"other authzid", "other@localhost\x00demo@localhost\x00secret pass", false},
		{"wrong password", "\x00demo@localhost\x00nope", false},
	}
	for _, tc := range cases {
		t.Run(tc.name+" SASL-IR", func(t *testing.T) {
			rc := ts.dialGreet(t)
			_, tagged := rc.cmd("a AUTHENTICATE PLAIN " + b64(tc.resp))
			if strings.HasPrefix(tagged, "a OK [CAPABILITY ") != tc.ok {
				t.Fatalf("%q", tagged)
			}
		})
		t.Run(tc.name+" continuation", func(t *testing.T) {
			// offlineimap sends no initial response and waits for "+".
			rc := ts.dialGreet(t)
			rc.send("a AUTHENTICATE PLAIN\r\n")
			if l := rc.line(); l != "+ " {
				t.Fatalf("continuation %q", l)
			}
			rc.send(b64(tc.resp) + "\r\n")
			_, tagged := rc.until("a")
			if strings.HasPrefix(tagged, "a OK [CAPABILITY ") != tc.ok {
				t.Fatalf("%q", tagged)
			}
		})
	}
	t.Run("cancel and bad base64", func(t *testing.T) {
		rc := ts.dialGreet(t)
		rc.send("a AUTHENTICATE PLAIN\r\n")
		rc.line()
		rc.send("*\r\n")
		if _, tagged := rc.until("a"); !strings.HasPrefix(tagged, "a BAD") {
			t.Fatalf("%q", tagged)
		}
		_, tagged := rc.cmd("b AUTHENTICATE PLAIN !!!notbase64")
		if !strings.HasPrefix(tagged, "b BAD") {
			t.Fatalf("%q", tagged)
		}
		_, tagged = rc.cmd("c AUTHENTICATE CRAM-MD5")
		if !strings.HasPrefix(tagged, "c NO") {
			t.Fatalf("%q", tagged)
		}
		_, tagged = rc.cmd("d AUTHENTICATE PLAIN =")
		if !strings.HasPrefix(tagged, "d BAD") && !strings.HasPrefix(tagged, "d NO") {
			t.Fatalf("empty response: %q", tagged)
		}
	})
}

func TestLoginDisabled(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.Plaintext = "never" })
	rc := ts.dial(t)
	g := rc.line()
	if !strings.Contains(g, "LOGINDISABLED") || strings.Contains(g, "AUTH=PLAIN") {
		t.Fatalf("greeting %q", g)
	}
	_, tagged := rc.cmd(`a LOGIN demo@localhost "secret pass"`)
	if !strings.HasPrefix(tagged, "a NO [PRIVACYREQUIRED]") {
		t.Fatalf("%q", tagged)
	}
}

func TestPreAuthCommands(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.dialGreet(t)
	// offlineimap sends ID before login.
	u := rc.ok(`a ID ("name" "offlineimap" "version" "8")`)
	if !hasPrefix(u, `* ID ("name" "Skrytka"`) {
		t.Fatalf("%q", u)
	}
	rc.ok("b ID NIL")
	// An unknown command is BAD, not a disconnect, once the client spoke IMAP.
	_, tagged := rc.cmd("c XUNKNOWN foo")
	if !strings.HasPrefix(tagged, "c BAD") {
		t.Fatalf("%q", tagged)
	}
	rc.ok("d NOOP")
}

func TestCrossProtocolGarbage(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.dialGreet(t)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("%q", l)
	}
	rc.expectEOF()
}

func TestEnableAndNamespace(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	// neomutt pipelines the next command behind ENABLE.
	rc.send("a ENABLE UTF8=ACCEPT\r\nb NAMESPACE\r\n")
	u, tagged := rc.until("a")
	if !hasLine(u, "* ENABLED UTF8=ACCEPT") || tagged != "a OK ENABLE completed" {
		t.Fatalf("%q %q", u, tagged)
	}
	u, _ = rc.until("b")
	if !hasLine(u, `* NAMESPACE (("" "/")) NIL NIL`) {
		t.Fatalf("%q", u)
	}
	u = rc.ok("c ENABLE IMAP4rev2 UTF8=ACCEPT XFOO")
	if !hasLine(u, "* ENABLED IMAP4rev2") {
		t.Fatalf("%q", u)
	}
}
