package pop3d

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzSession runs arbitrary client input through a real server over a
// real socket, before login (state byte even) or after it (odd), then sends
// QUIT. It checks that the server never panics, never hangs, answers with
// the greeting first and with CRLF-terminated lines only, and that the
// connection ends.
func FuzzSession(f *testing.F) {
	for _, seed := range []struct {
		state byte
		input string
	}{
		{0, "CAPA\r\n"},
		{0, "USER user@example.org\r\nPASS wrong\r\n"},
		{0, "AUTH PLAIN\r\n=\r\n"},
		{0, "AUTH LOGIN\r\ndXNlcg==\r\n*\r\n"},
		{0, "AUTH\r\nAPOP x y\r\nUTF8\r\n"},
		{0, "STLS\r\nCAPA\r\n"},
		{0, "GET / HTTP/1.1\r\n"},
		{1, "STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\n"},
		{1, "DELE 1\r\nLIST 1\r\nRSET\r\nDELE 2\r\nDELE 3\r\n"},
		{1, "LIST 99999999999\r\nTOP 1 4294967296\r\nRETR 0\r\n"},
		{1, "CAPA\r\nNOOP x\r\nUSER a\r\nRETR 3\r\n"},
		{1, "DELE 1\r\nQUIT\r\n"},
	} {
		f.Add(seed.state, []byte(seed.input))
	}
	e := newEnv(f, func(o *Options) {
		o.AuthTimeout = 2 * time.Second
		o.IdleTimeout = 2 * time.Second
		o.MaxBadCommands = 1000
		o.MarkSeenOnRetr = true
	})
	e.srv.opts.Logger = testLogger(f)
	// Keep three messages in the maildrop whatever the inputs delete.
	refill := func(t *testing.T) {
		_, uids, err := e.st.SelectState(context.Background(), e.acct.ID, e.inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		for n := len(uids); n < 3; n++ {
			deliver(t, e.st, e.acct, e.inbox.ID, []string{msg1, msg2, msg3}[n])
		}
	}
	f.Fuzz(func(t *testing.T, state byte, input []byte) {
		refill(t)
		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		var script bytes.Buffer
		if state%2 == 1 {
			script.WriteString("USER " + e.acct.Address + "\r\nPASS " + testPassword + "\r\n")
		}
		script.Write(input)
		script.WriteString("\r\nQUIT\r\n")
		go func() {
			nc.Write(script.Bytes())
			// Half-close: a server waiting for more (a SASL continuation,
			// a TLS handshake after STLS) sees EOF at once.
			nc.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(nc)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("server still talking after 20 s (%d bytes so far)", len(out))
			}
			// A reset after the server closed with unread input is fine.
		}
		s := string(out)
		if !strings.HasPrefix(s, "+OK pop.example.org Skrytka POP3 server ready\r\n") {
			t.Fatalf("no greeting: %q", s)
		}
		if i := strings.LastIndex(s, "\r\n"); i >= 0 && i != len(s)-2 && !strings.Contains(s, "+OK begin TLS") {
			t.Fatalf("output does not end with CRLF: %q", s[max(0, len(s)-80):])
		}
		for _, line := range strings.SplitAfter(s, "\n") {
			if line != "" && !strings.HasSuffix(line, "\r\n") && !strings.Contains(s, "+OK begin TLS") {
				t.Fatalf("line %q without CRLF", line)
			}
		}
		if n := e.srv.panics.Load(); n != 0 {
			t.Fatalf("%d panics", n)
		}
	})
}
