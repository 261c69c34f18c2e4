package reliability

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/imapd"
	"github.com/skrytka/skrytka/internal/pop3d"
	"github.com/skrytka/skrytka/internal/smtpd"
	"github.com/skrytka/skrytka/internal/testharness"
)

// imapTry logs in once and reports whether it worked and how long it took.
func imapTry(t *testing.T, addr, user, pass string) (bool, time.Duration) {
	t.Helper()
	w, err := dialWire(addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.line()
	start := time.Now()
	w.send("l LOGIN " + user + ` "` + pass + "\"\r\n")
	l, _, err := w.until("l ")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return strings.HasPrefix(l, "l OK"), time.Since(start)
}

func pop3Try(t *testing.T, addr, user, pass string) (bool, time.Duration) {
	t.Helper()
	w, err := dialWire(addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.line()
	w.send("USER " + user + "\r\n")
	w.line()
	start := time.Now()
	w.send("PASS " + pass + "\r\n")
	l, err := w.line()
	if err != nil {
		t.Fatalf("PASS: %v", err)
	}
	return strings.HasPrefix(l, "+OK"), time.Since(start)
}

// TestAuthThrottling: failures over IMAP slow the next attempts over IMAP
// and POP3 alike (one Authenticator per process), and once the window has
// passed the real user logs in at once. Loopback is made untrusted so the
// per-address bucket applies too.
func TestAuthThrottling(t *testing.T) {
	const delay = 200 * time.Millisecond
	s := startStack(t, stackOpts{
		Trusted:  []netip.Prefix{},
		Throttle: auth.Throttle{Delay: delay, MaxDelay: 800 * time.Millisecond, Window: 1500 * time.Millisecond},
	})
	s.addUserArgon(t, "a@localhost")

	ok, _ := imapTry(t, s.IMAPAddr, "a@localhost", "wrong-1")
	if ok {
		t.Fatal("wrong password accepted")
	}
	ok, d2 := imapTry(t, s.IMAPAddr, "a@localhost", "wrong-2")
	if ok || d2 < delay*8/10 {
		t.Errorf("second failure took %v, want at least %v", d2, delay)
	}
	ok, d3 := pop3Try(t, s.POP3Addr, "a@localhost", "wrong-3")
	if ok || d3 < 2*delay*8/10 {
		t.Errorf("third attempt (POP3, after two IMAP failures) took %v, want at least %v", d3, 2*delay)
	}
	// Another account from the same (untrusted) address is slowed too.
	_, d4 := imapTry(t, s.IMAPAddr, "nobody@localhost", "x")
	if d4 < 3*delay*8/10 {
		t.Errorf("other account from the same address took %v, want at least %v", d4, 3*delay)
	}
	// The real user, after the window: straight in.
	time.Sleep(1600 * time.Millisecond)
	ok, d := imapTry(t, s.IMAPAddr, "a@localhost", testPass)
	if !ok {
		t.Fatal("real user refused after the window")
	}
	ok, _ = pop3Try(t, s.POP3Addr, "a@localhost", testPass)
	if !ok {
		t.Fatal("real user refused over POP3 after the window")
	}
	t.Logf("waits: 2nd %v, 3rd %v, 4th %v; real user after window %v", d2, d3, d4, d)
}

// TestAuthThrottlingParallel: twenty parallel guesses from an untrusted
// address take at least the sum of the growing delays up to the cap, or
// are refused; none is checked early.
func TestAuthThrottlingParallel(t *testing.T) {
	const delay = 100 * time.Millisecond
	s := startStack(t, stackOpts{
		Trusted:  []netip.Prefix{},
		Throttle: auth.Throttle{Delay: delay, MaxDelay: 400 * time.Millisecond, Window: time.Minute},
	})
	s.addUserArgon(t, "a@localhost")
	imapTry(t, s.IMAPAddr, "a@localhost", "first-wrong")
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var succeeded int
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := dialWire(s.IMAPAddr, 30*time.Second)
			if err != nil {
				return
			}
			defer w.Close()
			w.line()
			w.send("l LOGIN a@localhost wrong\r\n")
			l, _, _ := w.until("l ")
			if strings.HasPrefix(l, "l OK") {
				mu.Lock()
				succeeded++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if succeeded > 0 {
		t.Fatal("wrong password accepted")
	}
	// With a cap of 400 ms only the attempts whose queued wait fits under
	// it have their password checked (waiting 100 ms, then 300 ms); the
	// others are refused without a check.
	res := s.Log.authResults()
	if res["fail"] > 1+3 || res["throttled"] < 16 {
		t.Errorf("20 parallel guesses after one failure: %v; want at most 3 checked, the rest throttled", res)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("20 parallel guesses finished in %v: not spaced by the throttle", el)
	}
	t.Logf("auth results %v in %v", res, time.Since(start))
}

// TestConnectionLimits: with loopback untrusted, the per-address cap counts
// every protocol together and each refuses in its own words; with loopback
// trusted (the default) it does not apply, but the total cap does.
func TestConnectionLimits(t *testing.T) {
	t.Run("per address, loopback untrusted", func(t *testing.T) {
		s := startStack(t, stackOpts{Trusted: []netip.Prefix{}, MaxPerIP: 3})
		var open []*testharness.LineConn
		for i := 0; i < 3; i++ {
			lc := testharness.Dial(t, s.IMAPAddr)
			lc.Expect("* OK")
			open = append(open, lc)
		}
		over := testharness.Dial(t, s.IMAPAddr)
		over.Expect("* BYE [UNAVAILABLE]")
		over.ExpectClosed()
		p := testharness.Dial(t, s.POP3Addr)
		p.Expect("-ERR [SYS/TEMP]")
		p.ExpectClosed()
		m := testharness.Dial(t, s.SMTPAddr)
		m.Expect("421 ")
		m.ExpectClosed()
		l := testharness.Dial(t, s.LMTPAddr)
		l.Expect("421 ")
		// A slot freed is a slot for the next client.
		open[0].Close()
		waitFor(t, func() bool { return s.Lim.Open() < 3 })
		again := testharness.Dial(t, s.POP3Addr)
		again.Expect("+OK")
	})
	t.Run("trusted loopback exempt, total cap applies", func(t *testing.T) {
		s := startStack(t, stackOpts{MaxPerIP: 3, MaxConns: 8})
		for i := 0; i < 8; i++ {
			lc := testharness.Dial(t, []string{s.IMAPAddr, s.POP3Addr}[i%2])
			lc.Expect([]string{"* OK", "+OK"}[i%2])
		}
		over := testharness.Dial(t, s.IMAPAddr)
		over.Expect("* BYE [UNAVAILABLE]")
		m := testharness.Dial(t, s.SMTPAddr)
		m.Expect("421 ")
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowLoris: clients that send one byte every 300 ms are cut off by
// the command timeouts while a normal client on each protocol is served
// promptly.
func TestSlowLoris(t *testing.T) {
	const slow = 15 // per protocol
	s := startStack(t, stackOpts{
		IMAP: func(o *imapd.Options) { o.PreAuthTimeout, o.CommandTimeout = time.Second, time.Second },
		POP3: func(o *pop3d.Options) { o.AuthTimeout = time.Second },
		SMTP: func(o *smtpd.Options) { o.CommandTimeout, o.SessionTimeout = time.Second, 2*time.Second },
	})
	s.addUserArgon(t, "a@localhost")
	type lorisResult struct {
		proto string
		alive time.Duration
	}
	results := make(chan lorisResult, 4*slow)
	loris := func(proto, addr, line string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			results <- lorisResult{proto, -1}
			return
		}
		defer c.Close()
		start := time.Now()
		// Keep reading so the server's writes never block on us.
		closed := make(chan struct{})
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					close(closed)
					return
				}
			}
		}()
		for i := 0; ; i++ {
			select {
			case <-closed:
				results <- lorisResult{proto, time.Since(start)}
				return
			case <-time.After(300 * time.Millisecond):
			}
			if time.Since(start) > 20*time.Second {
				results <- lorisResult{proto, time.Since(start)}
				return
			}
			c.Write([]byte{line[i%len(line)]})
		}
	}
	for i := 0; i < slow; i++ {
		go loris("imap", s.IMAPAddr, "a NOOP and then some more words\r\n")
		go loris("pop3", s.POP3Addr, "CAPA and then some more words\r\n")
		go loris("smtp", s.SMTPAddr, "EHLO slow.example.org and more\r\n")
		go loris("lmtp", s.LMTPAddr, "LHLO slow.example.org and more\r\n")
	}
	time.Sleep(500 * time.Millisecond)
	// Normal clients are served while the slow ones hang on.
	for _, p := range []struct{ addr, greet, cmd, want string }{
		{s.IMAPAddr, "* OK", "a NOOP", "a OK"},
		{s.POP3Addr, "+OK", "CAPA", "+OK"},
		{s.SMTPAddr, "220 ", "EHLO ok.example.org", "250"},
		{s.LMTPAddr, "220 ", "LHLO ok.example.org", "250"},
	} {
		start := time.Now()
		lc := testharness.Dial(t, p.addr)
		lc.Timeout = 3 * time.Second
		lc.Expect(p.greet)
		lc.Send("%s", p.cmd)
		lc.Expect(p.want)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: normal client waited %v", p.addr, d)
		}
	}
	if ok, d := imapTry(t, s.IMAPAddr, "a@localhost", testPass); !ok || d > 3*time.Second {
		t.Errorf("login during slow-loris: ok=%v after %v", ok, d)
	}
	worst := map[string]time.Duration{}
	for i := 0; i < 4*slow; i++ {
		r := <-results
		if r.alive < 0 {
			t.Errorf("%s: dial failed", r.proto)
			continue
		}
		worst[r.proto] = max(worst[r.proto], r.alive)
	}
	for proto, d := range worst {
		if d > 5*time.Second {
			t.Errorf("%s: a slow-loris client stayed connected %v", proto, d)
		}
	}
	t.Logf("longest slow-loris connection per protocol: %v", worst)
}

// TestTLSHandshakeStall: clients that connect to the implicit-TLS ports and
// never finish (or never start) the handshake are disconnected by the
// pre-login timeout, and others are served meanwhile.
func TestTLSHandshakeStall(t *testing.T) {
	srvTLS, cliTLS := testharness.TLSConfigs(t)
	s := startStack(t, stackOpts{
		TLS:  srvTLS,
		IMAP: func(o *imapd.Options) { o.PreAuthTimeout, o.CommandTimeout = time.Second, time.Second },
		POP3: func(o *pop3d.Options) { o.AuthTimeout = time.Second },
		SMTP: func(o *smtpd.Options) { o.CommandTimeout, o.SessionTimeout = time.Second, 3*time.Second },
	})
	// STARTTLS accepted, then no handshake.
	for _, p := range []struct{ name, addr, greet, hello, starttls, ok string }{
		{"imap STARTTLS", s.IMAPAddr, "* OK", "", "a STARTTLS", "a OK"},
		{"pop3 STLS", s.POP3Addr, "+OK", "", "STLS", "+OK"},
		{"smtp STARTTLS", s.SMTPAddr, "220 ", "EHLO x.example.org", "STARTTLS", "220 "},
		{"lmtp STARTTLS", s.LMTPAddr, "220 ", "LHLO x.example.org", "STARTTLS", "220 "},
	} {
		t.Run(p.name, func(t *testing.T) {
			lc := testharness.Dial(t, p.addr)
			lc.Expect(p.greet)
			if p.hello != "" {
				lc.Send("%s", p.hello)
				lc.ExpectUntil("250 ")
			}
			lc.Send("%s", p.starttls)
			lc.Expect(p.ok)
			start := time.Now()
			lc.ExpectClosed()
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("closed only after %v", d)
			}
		})
	}
	for _, p := range []struct{ name, addr, greet string }{{"imaps", s.IMAPSAddr, "* OK"}, {"pop3s", s.POP3SAddr, "+OK"}} {
		t.Run(p.name, func(t *testing.T) {
			var stalled []net.Conn
			for i := 0; i < 10; i++ {
				c, err := net.Dial("tcp", p.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if i%2 == 1 {
					c.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, then nothing
				}
				stalled = append(stalled, c)
			}
			lc := testharness.DialTLS(t, p.addr, cliTLS)
			lc.Expect(p.greet)
			start := time.Now()
			for _, c := range stalled {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						if ne, ok := err.(net.Error); ok && ne.Timeout() {
							t.Fatalf("a stalled handshake is still open after %v", time.Since(start))
						}
						break
					}
				}
			}
			t.Logf("stalled handshakes closed within %v", time.Since(start))
		})
	}
}

// TestPOP3LockFreedOnHangUp: a POP3 client that hangs up without QUIT
// (or is cut off) does not lock its owner out of the maildrop.
func TestPOP3LockFreedOnHangUp(t *testing.T) {
	s := startStack(t, stackOpts{})
	a := s.addUserArgon(t, "a@localhost")
	appendMsg(t, s.Store, a, "INBOX", "Subject: x\r\n\r\ny\r\n")
	for i := 0; i < 3; i++ {
		w, err := pop3Login(s.POP3Addr, "a@localhost", 5*time.Second)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		w.send("DELE 1\r\nRETR 1\r\n") // and hang up mid-conversation
		w.Close()
	}
	start := time.Now()
	for {
		w, err := pop3Login(s.POP3Addr, "a@localhost", 5*time.Second)
		if err == nil {
			w.send("STAT\r\n")
			if l, _ := w.line(); !strings.HasPrefix(l, "+OK 1 ") {
				t.Errorf("after hang-ups without QUIT: STAT %q, want the message kept", l)
			}
			w.Close()
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("maildrop still locked %v after the client hung up: %v", time.Since(start), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("maildrop free again after %v", time.Since(start))
}
