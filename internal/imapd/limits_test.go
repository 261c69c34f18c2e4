package imapd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLineTooLong(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.MaxLineBytes = 1024 })
	rc := ts.login(t)
	rc.send("a NOOP " + strings.Repeat("x", 2000) + "\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "a BAD") {
		t.Fatalf("%q", l)
	}
	if l := rc.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("%q", l)
	}
	rc.expectEOF()
	rc = ts.login(t)
	rc.send("a CREATE " + strings.Repeat("x", 2000) + "\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "* BYE [TOOBIG]") {
		t.Fatalf("%q", l)
	}
	rc.expectEOF()
}

func TestLiteralLimits(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.MaxLiteralBytes = 100 })
	rc := ts.login(t)
	// A synchronising literal over the cap is refused before it is sent.
	rc.send("a CREATE {101}\r\n")
	_, tagged := rc.until("a")
	if !strings.HasPrefix(tagged, "a BAD") {
		t.Fatalf("%q", tagged)
	}
	// Within the cap it works, with a continuation.
	rc.send("b CREATE {5}\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("%q", l)
	}
	rc.send("Lit01\r\n")
	if _, tagged := rc.until("b"); tagged != "b OK CREATE completed" {
		t.Fatalf("%q", tagged)
	}
	// A huge literal announced and never sent costs nothing: the
	// connection stays usable after the refusal.
	rc.send("c LOGIN {4294967296}\r\n")
	_, tagged = rc.until("c")
	if !strings.HasPrefix(tagged, "c BAD") {
		t.Fatalf("%q", tagged)
	}
	rc.ok("d NOOP")
	// An oversize non-synchronising literal ends the connection.
	rc.send("e CREATE {500+}\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "* BYE [TOOBIG]") {
		t.Fatalf("%q", l)
	}
	rc.expectEOF()
}

func TestTooManyLiterals(t *testing.T) {
	ts := newTestServer(t)
	rc := ts.login(t)
	var sb strings.Builder
	sb.WriteString("a ID (")
	for i := 0; i < 600; i++ {
		sb.WriteString("{0+}\r\n {0+}\r\n ")
	}
	rc.send(sb.String())
	if l := rc.line(); !strings.HasPrefix(l, "* BYE [LIMIT]") {
		t.Fatalf("%q", l)
	}
	rc.expectEOF()
}

func TestBadInputSurvives(t *testing.T) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", "Subject: 1\r\n\r\n1\r\n", storeFlags())
	rc := ts.login(t)
	rc.ok("s SELECT INBOX")
	for i, line := range []string{
		"a FETCH 1 (" + strings.Repeat("(", 50) + "FLAGS" + strings.Repeat(")", 50) + ")",
		"a FETCH 1:4294967295 FLAGS",
		"a UID FETCH 1:4294967295 FLAGS",
		"a FETCH 0 FLAGS",
		"a FETCH * BODY[1.2.3.4.5.6.7.8.9.10]",
		"a CREATE \"../../etc\"",
		"a CREATE &Jjo",
		"a STORE 1 +FLAGS (\\Seen",
		"a UID",
		"a",
		"a SEARCH UID 1:4294967295",
		"a APPEND INBOX (\\Seen) \"bad date\" {1}",
		"a LIST \"\" \"" + strings.Repeat("*%", 500) + "\"",
		"a NOOP\x00",
		"+ foo",
		"a ID (\"k\" \"v\" \"k2\")",
		"a SELECT \"\x01bad\"", // last: a failed SELECT deselects
	} {
		rc.send(line + "\r\n")
		if strings.HasPrefix(line, "+") {
			if l := rc.line(); !strings.HasPrefix(l, "* BAD") {
				t.Fatalf("%d: %q", i, l)
			}
			continue
		}
		u, tagged := rc.until("a")
		if !strings.HasPrefix(tagged, "a ") {
			t.Fatalf("%d %q: %q %q", i, line, u, tagged)
		}
		t.Logf("%q -> %q", line, tagged)
		rc.ok(fmt.Sprintf("n%d NOOP", i))
	}
}

func TestTooManyBadCommands(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.MaxBadCommands = 3 })
	rc := ts.login(t)
	for i := 0; i < 2; i++ {
		if _, tagged := rc.cmd("a BOGUS"); !strings.HasPrefix(tagged, "a BAD") {
			t.Fatalf("%q", tagged)
		}
	}
	rc.send("a BOGUS\r\n")
	rc.line()
	if l := rc.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("%q", l)
	}
	rc.expectEOF()
}

func TestPreAuthTimeout(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.PreAuthTimeout = 300 * time.Millisecond })
	rc := ts.dialGreet(t)
	start := time.Now()
	if l := rc.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("%q", l)
	}
	rc.expectEOF()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestSlowLoris(t *testing.T) {
	// One byte now and then does not keep a command alive forever.
	ts := newTestServer(t, func(o *Options) { o.CommandTimeout = 300 * time.Millisecond })
	rc := ts.dialGreet(t)
	rc.send("a NO")
	time.Sleep(500 * time.Millisecond)
	rc.expectEOF()
}

func TestShutdown(t *testing.T) {
	ts := newTestServer(t)
	idle := ts.login(t)
	idle.ok("a SELECT INBOX")
	idle.send("b IDLE\r\n")
	idle.line()
	waiting := ts.login(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if l := idle.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("idle: %q", l)
	}
	if l := waiting.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("waiting: %q", l)
	}
}

func TestSlowReaderDoesNotBlockOthers(t *testing.T) {
	ts := newTestServer(t)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 998)+"\r\n", 8000)
	ts.appendMsg(t, "INBOX", big, storeFlags())
	slow := ts.login(t)
	slow.ok("a SELECT INBOX")
	// Ask for 8 MB three times and never read the answer.
	slow.send("b FETCH 1 (BODY.PEEK[] BODY.PEEK[] BODY.PEEK[])\r\n")
	time.Sleep(200 * time.Millisecond)
	fast := ts.login(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fast.ok("c SELECT INBOX")
		fast.ok(`d STORE 1 +FLAGS (\Flagged)`)
		appendRaw(fast, "e", "INBOX", "Subject: x\r\n\r\nx\r\n")
		fast.ok("f FETCH 1:* (FLAGS)")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a slow reader blocked another session")
	}
}
