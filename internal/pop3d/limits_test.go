package pop3d

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

func TestAuthTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AuthTimeout = 200 * time.Millisecond })
	c := e.dialGreeted()
	start := time.Now()
	c.expect("-ERR disconnected for inactivity")
	c.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// TestIdleTimeout: the autologout timer ends a session without UPDATE and
// releases the lock.
func TestIdleTimeout(t *testing.T) {
	// Long enough for a loaded machine to send DELE in time.
	e := newEnv(t, func(o *Options) { o.IdleTimeout = 2 * time.Second })
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	c := e.login()
	c.cmd("DELE 1").expect("+OK message 1 deleted")
	c.expect("-ERR disconnected for inactivity")
	c.expectClosed()
	if n := len(e.inboxUIDs()); n != 1 {
		t.Fatalf("timeout deleted the message: %d left", n)
	}
	c = e.login() // the lock is free
	c.cmd("STAT").expectPrefix("+OK 1 ")
}

func TestDefaults(t *testing.T) {
	s := New(Options{})
	o := s.opts
	if o.IdleTimeout != 10*time.Minute || o.AuthTimeout != DefaultAuthTimeout || o.WriteTimeout != DefaultWriteTimeout ||
		o.MaxLineBytes != DefaultMaxLineBytes || o.MaxBadCommands != DefaultMaxBadCommands ||
		o.Hostname != DefaultHostname || o.AfterDownload != PolicyExpunge || o.Expire != "NEVER" || o.Plaintext != "loopback" {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestInvalidOptions(t *testing.T) {
	s := New(Options{AfterDownload: "shred", Expire: "soon"})
	if s.opts.AfterDownload != PolicyExpunge || s.opts.Expire != "NEVER" || s.opts.Auth == nil {
		t.Fatalf("invalid options kept: %+v", s.opts)
	}
	s = New(Options{AfterDownload: "archive", Expire: "0"})
	if s.opts.AfterDownload != PolicyArchive || s.opts.Expire != "0" {
		t.Fatalf("valid options changed: %+v", s.opts)
	}
}

func TestLineTooLong(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxLineBytes = 100 })
	c := e.dialGreeted()
	c.cmd("USER " + strings.Repeat("x", 200)).expect("-ERR line too long")
	c.cmd("USER " + strings.Repeat("x", 93)).expect("+OK send PASS") // 100 with CRLF
	c.cmd("USER " + strings.Repeat("x", 94)).expect("-ERR line too long")
	// A huge line is skipped without buffering it.
	c.send(strings.Repeat("y", 1<<20) + "\r\n").expect("-ERR line too long")
	c.cmd("CAPA").expectPrefix("+OK")
}

func TestTooManyBadCommands(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBadCommands = 3 })
	c := e.dialGreeted()
	c.cmd("CAPA").expectPrefix("+OK")
	c.multiline()
	c.cmd("STAT").expect("-ERR command not valid in this state")
	c.cmd("USER").expect("-ERR USER takes one argument")
	c.cmd("USER " + e.acct.Address).expect("+OK send PASS")
	c.cmd("PASS wrong").expect("-ERR [AUTH] authentication failed")
	c.expect("-ERR too many bad commands, closing connection")
	c.expectClosed()
}

// TestForeignProtocol: an HTTP request to the POP3 port gets one line and
// a close (cross-protocol defence).
func TestForeignProtocol(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialGreeted()
	c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nUSER")
	c.expect("-ERR unknown command")
	c.expectClosed()

	c = e.dialGreeted()
	c.send("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n")
	c.expect("-ERR invalid command syntax")
	c.expectClosed()

	// An empty line is only a mistake.
	c = e.dialGreeted()
	c.cmd("").expect("-ERR empty command")
	c.cmd("CAPA").expectPrefix("+OK")
	c.multiline()

	// After a valid command, an unknown one is only an error.
	c = e.dialGreeted()
	c.cmd("CAPA").expectPrefix("+OK")
	c.multiline()
	c.cmd("EHLO x").expect("-ERR unknown command")
	c.cmd("NOOP").expect("-ERR command not valid in this state")
}

func TestLoginDelay(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LoginDelay = time.Hour })
	c := e.login()
	c.cmd("QUIT").expectPrefix("+OK")
	c.expectClosed()
	c = e.dialGreeted()
	c.cmd("AUTH PLAIN " + b64("\x00"+e.acct.Address+"\x00"+testPassword)).expect("-ERR [LOGIN-DELAY] minimum time between logins not reached")
	c.cmd("CAPA").expectPrefix("+OK")
	if got := strings.Join(c.lines(), "|"); !strings.Contains(got, "|LOGIN-DELAY 3600|") {
		t.Fatalf("CAPA = %q", got)
	}
}

// TestShutdown: a session waiting for a command is told to go away and
// ends without UPDATE; Serve returns ErrServerClosed.
func TestShutdown(t *testing.T) {
	e := newEnv(t, nil)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	c := e.login()
	c.cmd("DELE 1").expect("+OK message 1 deleted")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c.expect("-ERR [SYS/TEMP] server shutting down, try again later")
	c.expectClosed()
	if n := len(e.inboxUIDs()); n != 1 {
		t.Fatalf("shutdown deleted messages: %d left", n)
	}
	// New connections are refused.
	if nc, err := dialRaw(e.addr); err == nil {
		nc.Close()
		t.Fatal("dial after Shutdown succeeded")
	}
}

// TestCloseReleasesLock: Close drops sessions abruptly; the locks go too.
func TestCloseReleasesLock(t *testing.T) {
	e := newEnv(t, nil)
	c := e.login()
	e.srv.Close()
	c.expectClosed()
	waitFor(t, "lock release after Close", func() bool {
		l, err := e.st.LockMaildrop(context.Background(), e.acct.ID, "test")
		if err == nil {
			l.Release()
		}
		return err == nil
	})
}

// TestWriteTimeout: a client that asks for a big message and stops reading
// is cut off after WriteTimeout, and its lock is released.
func TestWriteTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("20 MB message")
	}
	e := newEnv(t, func(o *Options) { o.WriteTimeout = 300 * time.Millisecond })
	ctx := context.Background()
	staged, err := e.st.Stage(ctx, bytes.NewReader(bigBody(20<<20)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Append(ctx, e.acct.ID, e.inbox.ID, []store.AppendMessage{{Body: staged}}); err != nil {
		t.Fatal(err)
	}
	c := e.login()
	c.nc.(*net.TCPConn).SetReadBuffer(4096)
	c.cmd("RETR 1")
	// Do not read. The server must give up and release the maildrop.
	waitFor(t, "lock release after the write timeout", func() bool {
		l, err := e.st.LockMaildrop(ctx, e.acct.ID, "test")
		if err == nil {
			l.Release()
		}
		return err == nil
	})
}
