package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/listen"
)

const simpleMsg = "From: Sender <sender@example.org>\r\n" +
	"To: alice@skrytka.test\r\n" +
	"Subject: test\r\n" +
	"\r\n" +
	"Hello Alice.\r\n" +
	".dot-stuffed line\r\n"

func TestEHLOCapabilities(t *testing.T) {
	e := newEnv(t, ModeMX, nil)
	c := e.dial()
	r := c.cmd("EHLO client.example.org", "250-")
	for _, capability := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING",
		"STARTTLS", "SMTPUTF8", fmt.Sprintf("SIZE %d", DefaultMaxMessageBytes)} {
		if !strings.Contains(r, "250-"+capability+"\n") && !strings.HasSuffix(r, "250 "+capability) {
			t.Errorf("EHLO reply lacks %s:\n%s", capability, r)
		}
	}
	if strings.Contains(r, "AUTH") {
		t.Errorf("MX offers AUTH:\n%s", r)
	}
	c.cmd("QUIT", "221 2.0.0")
}

func TestRelayDenied(t *testing.T) {
	e := newEnv(t, ModeMX, nil)
	c := e.dial()
	c.cmd("EHLO client.example.org", "250")
	c.cmd("MAIL FROM:<x@example.org>", "250")
	c.cmd("RCPT TO:<someone@example.com>", "554 5.7.1")
	c.cmd("RCPT TO:<alice@skrytka.test.example.com>", "554 5.7.1")
	c.cmd("RCPT TO:<alice@[127.0.0.1]>", "554 5.7.1")
	c.cmd("RCPT TO:<alice%example.com@skrytka.test>", "550 5.1.1") // no source routing tricks
	c.cmd("RCPT TO:<away@skrytka.test>", "550 5.1.1")              // alias pointing off-server
	c.cmd("DATA", "502")                                           // nobody accepted
}

func TestUnknownUser(t *testing.T) {
	e := newEnv(t, ModeMX, nil)
	c := e.dial()
	c.cmd("EHLO client.example.org", "250")
	c.cmd("MAIL FROM:<x@example.org>", "250")
	c.cmd("RCPT TO:<nobody@skrytka.test>", "550 5.1.1")
	c.cmd("RCPT TO:<loop1@skrytka.test>", "550 5.1.1") // alias loop resolves to nobody
	c.cmd("RCPT TO:<ALICE@SKRYTKA.TEST>", "250")
	c.cmd("RCPT TO:<bad address@skrytka.test>", "501")
	c.cmd("RCPT TO:<\"a\\\x01b\"@skrytka.test>", "501 5.1.3")
}

// deliverGo sends msg with go-smtp's client and returns its error.
func deliverGo(t *testing.T, addr, from string, to []string, msg string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		return err
	}
	return c.SendMail(from, to, strings.NewReader(msg))
}

func TestDeliverHeaders(t *testing.T) {
	e := newEnv(t, ModeMX, nil)
	if err := deliverGo(t, e.addr, "sender@example.org", []string{"alice@skrytka.test"}, simpleMsg); err != nil {
		t.Fatal(err)
	}
	msgs := e.inbox("alice")
	if len(msgs) != 1 {
		t.Fatalf("alice has %d messages", len(msgs))
	}
	m := msgs[0]
	want := []string{"Return-Path", "Delivered-To", "Authentication-Results", "Received", "From", "To", "Subject"}
	if got := fieldNames(m); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("fields %v, want %v", got, want)
	}
	if got := header(m, "Return-Path"); got != "<sender@example.org>" {
		t.Errorf("Return-Path %q", got)
	}
	if got := header(m, "Delivered-To"); got != "alice@skrytka.test" {
		t.Errorf("Delivered-To %q", got)
	}
	rcv := header(m, "Received")
	for _, part := range []string{"from client.example.org ([127.0.0.1])", "by " + testHost + " (Skrytka) with ESMTP id ", "for <alice@skrytka.test>;"} {
		if !strings.Contains(rcv, part) {
			t.Errorf("Received %q lacks %q", rcv, part)
		}
	}
	ar := header(m, "Authentication-Results")
	if !strings.HasPrefix(ar, testHost+";") || !strings.Contains(ar, "spf=none") || !strings.Contains(ar, "dkim=none") {
		t.Errorf("Authentication-Results %q", ar)
	}
	// The original message follows our fields byte for byte (the client
	// dot-stuffed ".dot-stuffed line"; the server removed the stuffing).
	if !strings.HasSuffix(m, "\r\n"+simpleMsg) {
		t.Errorf("original message not intact:\n%s", m)
	}
}

func TestSubaddressing(t *testing.T) {
	e := newEnv(t, ModeMX, nil)
	if err := deliverGo(t, e.addr, "", []string{"Alice+Lists@skrytka.test"}, simpleMsg); err != nil {
		t.Fatal(err)
	}
	msgs := e.inbox("alice")
	if len(msgs) != 1 {
		t.Fatalf("alice has %d messages", len(msgs))
	}
	if got := header(msgs[0], "Delivered-To"); got != "Alice+Lists@skrytka.test" {
		t.Errorf("Delivered-To %q", got)
	}
	if got := header(msgs[0], "Return-Path"); got != "<>" {
		t.Errorf("Return-Path %q", got)
	}

	// Another delimiter, and sub-addressing switched off.
	e2 := newEnv(t, ModeMX, func(o *Options) { o.RecipientDelimiter = "-+" })
	if err := deliverGo(t, e2.addr, "a@example.org", []string{"bob-x@skrytka.test", "bob+y@skrytka.test"}, simpleMsg); err != nil {
		t.Fatal(err)
	}
	if n := len(e2.inbox("bob")); n != 1 {
		t.Errorf("bob has %d messages, want 1 (two RCPTs, one account)", n)
	}
	e3 := newEnv(t, ModeMX, func(o *Options) { o.NoSubaddressing = true })
	c := e3.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<>", "250")
	c.cmd("RCPT TO:<alice+tag@skrytka.test>", "550 5.1.1")
}

func TestAliases(t *testing.T) {
	e := newEnv(t, ModeMX, nil)
	// team → alice, bob (and a missing account, skipped); catch-all of
	// other-local.test → carol; postmaster → alice.
	err := deliverGo(t, e.addr, "a@example.org",
		[]string{"team@skrytka.test", "whoever@Other-Local.test", "postmaster@skrytka.test"}, simpleMsg)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"alice": 1, "bob": 1, "carol": 1} {
		msgs := e.inbox(name)
		if len(msgs) != want {
			t.Errorf("%s has %d messages, want %d", name, len(msgs), want)
			continue
		}
		// Three recipients: no Delivered-To and no "for" (RFC 5321 §7.2).
		if header(msgs[0], "Delivered-To") != "" || strings.Contains(header(msgs[0], "Received"), " for <") {
			t.Errorf("%s: message names a recipient:\n%s", name, msgs[0])
		}
	}
}

func TestSizeLimit(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.MaxMessageBytes = 2000 })
	c := e.dial()
	r := c.cmd("EHLO x", "250")
	if !strings.Contains(r, "SIZE 2000") {
		t.Errorf("EHLO: %s", r)
	}
	c.cmd("MAIL FROM:<a@example.org> SIZE=5000", "552 5.3.4")
	c.cmd("MAIL FROM:<a@example.org> SIZE=1000", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	// The client lied about SIZE: the limit holds mid-DATA.
	c.send("Subject: big\r\n\r\n")
	for i := 0; i < 100; i++ {
		c.send(strings.Repeat("x", 78) + "\r\n")
	}
	c.send(".\r\n")
	c.expect("552 5.3.4")
	// The session goes on.
	c.cmd("NOOP", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: small\r\n\r\nok\r\n.\r\n")
	c.expect("250")
	msgs := e.inbox("alice")
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: small") {
		t.Fatalf("inbox: %q", msgs)
	}
}

func TestBDAT(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.MaxMessageBytes = 3000 })
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<bob@skrytka.test>", "250")
	part1 := "Subject: chunks\r\n\r\nfirst "
	part2 := "second\r\n.not stuffed\r\n"
	c.send(fmt.Sprintf("BDAT %d\r\n%s", len(part1), part1))
	c.expect("250")
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(part2), part2))
	c.expect("250")
	msgs := e.inbox("bob")
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], "\r\n"+part1+part2) {
		t.Fatalf("inbox: %q", msgs)
	}
	// Over the limit across chunks: 552, and nothing stored.
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<bob@skrytka.test>", "250")
	chunk := strings.Repeat("y", 2000)
	c.send(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
	c.expect("250")
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	c.expect("552 5.3.4")
	c.cmd("NOOP", "250")
	if n := len(e.inbox("bob")); n != 1 {
		t.Errorf("bob has %d messages after the oversized one", n)
	}
}

func TestPipelining(t *testing.T) {
	e := newEnv(t, ModeMX, nil)
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@skrytka.test>\r\nRCPT TO:<nobody@skrytka.test>\r\n" +
		"RCPT TO:<bob@skrytka.test>\r\nDATA\r\n")
	for _, want := range []string{"250", "250", "550 5.1.1", "250", "354"} {
		c.expect(want)
	}
	c.send("Subject: piped\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.org>\r\nRCPT TO:<carol@skrytka.test>\r\nDATA\r\n")
	for _, want := range []string{"250", "250", "250", "354"} {
		c.expect(want)
	}
	c.send("Subject: second\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	c.expect("250")
	c.expect("221")
	for name, n := range map[string]int{"alice": 1, "bob": 1, "carol": 1} {
		if got := len(e.inbox(name)); got != n {
			t.Errorf("%s has %d messages, want %d", name, got, n)
		}
	}
}

func TestSTARTTLS(t *testing.T) {
	e := newEnv(t, ModeMX, nil)
	c := e.dial()
	c.cmd("EHLO x", "250")
	// CVE-2011-0411: plaintext commands pipelined after STARTTLS must be
	// thrown away, not run inside the TLS session.
	c.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@skrytka.test>\r\n")
	c.expect("220")
	tc := tls.Client(c.c, &tls.Config{ServerName: testHost, RootCAs: e.roots})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c2 := &lineConn{t: t, c: tc, br: bufio.NewReader(tc)}
	// If the injected MAIL had run, RCPT would have been accepted and its
	// replies would come before EHLO's.
	r := c2.cmd("EHLO x", "250-")
	if strings.Contains(r, "STARTTLS") {
		t.Errorf("STARTTLS offered again inside TLS:\n%s", r)
	}
	c2.cmd("RCPT TO:<alice@skrytka.test>", "502 5.5.1") // no MAIL in this session yet (go-smtp says 502)
	c2.cmd("MAIL FROM:<a@example.org>", "250")
	c2.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c2.cmd("DATA", "354")
	c2.send("Subject: tls\r\n\r\nsecret\r\n.\r\n")
	c2.expect("250")
	msgs := e.inbox("alice")
	if len(msgs) != 1 {
		t.Fatalf("alice has %d messages", len(msgs))
	}
	if rcv := header(msgs[0], "Received"); !strings.Contains(rcv, "with ESMTPS") || !strings.Contains(rcv, "using TLS") {
		t.Errorf("Received %q does not record TLS", rcv)
	}
}

func TestMaxRecipients(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.MaxRecipients = 3 })
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	for i := 0; i < 3; i++ {
		c.cmd("RCPT TO:<alice+"+fmt.Sprint(i)+"@skrytka.test>", "250")
	}
	c.cmd("RCPT TO:<bob@skrytka.test>", "452 4.5.3")
	c.cmd("DATA", "354")
	c.send("Subject: x\r\n\r\nx\r\n.\r\n")
	c.expect("250")
	if n := len(e.inbox("alice")); n != 1 {
		t.Errorf("alice has %d messages, want 1", n)
	}
}

func TestMaxErrors(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.MaxErrors = 3 })
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	for i := 0; i < 3; i++ {
		c.cmd(fmt.Sprintf("RCPT TO:<guess%d@skrytka.test>", i), "550 5.1.1")
	}
	c.cmd("RCPT TO:<guess9@skrytka.test>", "421 4.7.0")
	c.expectClosed()
}

func TestLongLine(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.MaxLineBytes = 600 })
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<"+strings.Repeat("a", 700)+"@example.org>", "500 5.4.0")
	c.expectClosed()
}

func TestLongDataLine(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.MaxLineBytes = 600 })
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send("Subject: x\r\n\r\n" + strings.Repeat("y", 700) + "\r\n.\r\n")
	c.expect("500 5.4.0")
	if n := len(e.inbox("alice")); n != 0 {
		t.Errorf("stored a message with an over-long line")
	}
}

func TestCommandTimeout(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.CommandTimeout = 200 * time.Millisecond })
	c := e.dial()
	c.cmd("EHLO x", "250")
	time.Sleep(400 * time.Millisecond)
	c.expect("421 4.4.2")
	c.expectClosed()
}

func TestSessionTimeout(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.SessionTimeout = 500 * time.Millisecond })
	c := e.dial()
	// A busy client is still cut off at the session cap.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.send("NOOP\r\n")
		r := c.reply()
		if strings.HasPrefix(r, "421") {
			break
		}
		if !strings.HasPrefix(r, "250") || time.Now().After(deadline) {
			t.Fatalf("reply %q", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.expectClosed()
}

func TestConnectionCaps(t *testing.T) {
	lim := &listen.Limiter{MaxPerIP: 1, MaxTotal: 10, Trusted: []netip.Prefix{}, Logger: testLogger(t)}
	e := newEnv(t, ModeMX, func(o *Options) { o.Limiter = lim })
	c1 := e.dial()
	c2, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	l2 := &lineConn{t: t, c: c2, br: bufio.NewReader(c2)}
	l2.expect("421 4.7.0")
	l2.expectClosed()
	c1.cmd("QUIT", "221")
	// The slot is free again.
	deadline := time.Now().Add(5 * time.Second)
	for lim.Open() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	e.dial().cmd("EHLO x", "250")
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, ModeMX, nil)
	idle := e.dial()
	idle.cmd("EHLO x", "250")
	busy := e.dial()
	busy.cmd("EHLO x", "250")
	busy.cmd("MAIL FROM:<a@example.org>", "250")
	busy.cmd("RCPT TO:<alice@skrytka.test>", "250")
	busy.cmd("DATA", "354")
	busy.send("Subject: in flight\r\n\r\n")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	idle.expect("421")
	idle.expectClosed()
	// The message in flight is finished and acknowledged.
	time.Sleep(100 * time.Millisecond)
	busy.send("still here\r\n.\r\n")
	busy.expect("250")
	busy.expect("421")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := len(e.inbox("alice")); n != 1 {
		t.Errorf("alice has %d messages", n)
	}
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
}

// A client that trickles a command a byte at a time (slow loris) is cut
// off after CommandFinishTimeout, while other clients carry on.
func TestSlowLorisCommand(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.CommandFinishTimeout = 500 * time.Millisecond })
	slow := e.dial()
	slow.cmd("EHLO x", "250")
	done := make(chan string, 1)
	go func() {
		for _, b := range []byte("MAIL FROM:<a@example.org>\r\n") {
			if _, err := slow.c.Write([]byte{b}); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		done <- "sent"
	}()
	// Meanwhile a normal client delivers.
	if err := deliverGo(t, e.addr, "a@example.org", []string{"bob@skrytka.test"}, simpleMsg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// bufio hands go-smtp the partial line before the timeout error, so a
	// 501 for the fragment may come first; then 421 and the close.
	var replies []string
	for {
		r := slow.reply()
		replies = append(replies, r)
		if !strings.HasPrefix(r, "50") || len(replies) > 3 {
			break
		}
	}
	if !strings.HasPrefix(replies[len(replies)-1], "421 4.4.2") {
		t.Fatalf("replies %q, want 421 4.4.2 last", replies)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("cut off only after %v", time.Since(start))
	}
	slow.expectClosed()
}

// A message arriving far below MinDataRate is cut off too.
func TestSlowLorisData(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) {
		o.CommandFinishTimeout = 300 * time.Millisecond
		o.MinDataRate = 10000
	})
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.c.Write([]byte("slow line\r\n")); err != nil {
				return
			}
		}
	}()
	r := c.reply()
	if !strings.HasPrefix(r, "451") && !strings.HasPrefix(r, "421") {
		t.Fatalf("reply %q, want 451 or 421", r)
	}
	for r != "EOF" && strings.HasPrefix(r, "4") {
		r = c.reply()
	}
	if n := len(e.inbox("alice")); n != 0 {
		t.Errorf("stored a trickled message")
	}
}
