package pop3d

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAuthPlain(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBadCommands = 100 })
	good := b64("\x00" + e.acct.Address + "\x00" + testPassword)
	t.Run("initial response", func(t *testing.T) {
		c := e.dialGreeted()
		c.cmd("AUTH PLAIN " + good).expectPrefix("+OK maildrop locked")
		c.cmd("QUIT").expectPrefix("+OK")
		c.expectClosed()
	})
	t.Run("continuation", func(t *testing.T) {
		c := e.dialGreeted()
		c.cmd("auth plain").expect("+ ")
		c.cmd(good).expectPrefix("+OK maildrop locked")
		c.cmd("QUIT").expectPrefix("+OK")
		c.expectClosed()
	})
	t.Run("authzid equal to user", func(t *testing.T) {
		c := e.dialGreeted()
		c.cmd("AUTH PLAIN " + b64(e.acct.Address+"\x00"+e.acct.Address+"\x00"+testPassword)).expectPrefix("+OK maildrop locked")
		c.cmd("QUIT").expectPrefix("+OK")
		c.expectClosed()
	})
	t.Run("other authzid", func(t *testing.T) {
		c := e.dialGreeted()
		c.cmd("AUTH PLAIN " + b64("admin@example.org\x00"+e.acct.Address+"\x00"+testPassword)).expect("-ERR [AUTH] authentication failed")
	})
	t.Run("wrong password", func(t *testing.T) {
		c := e.dialGreeted()
		c.cmd("AUTH PLAIN").expect("+ ")
		c.cmd(b64("\x00" + e.acct.Address + "\x00wrong")).expect("-ERR [AUTH] authentication failed")
		// Still in AUTHORIZATION, and can try again.
		c.cmd("AUTH PLAIN " + good).expectPrefix("+OK maildrop locked")
		c.cmd("QUIT").expectPrefix("+OK")
		c.expectClosed()
	})
	t.Run("cancel", func(t *testing.T) {
		c := e.dialGreeted()
		c.cmd("AUTH PLAIN").expect("+ ")
		c.cmd("*").expect("-ERR authentication cancelled")
		c.cmd("NOOP").expect("-ERR command not valid in this state")
	})
	t.Run("bad base64 in continuation", func(t *testing.T) {
		c := e.dialGreeted()
		c.cmd("AUTH PLAIN").expect("+ ")
		c.cmd("%%%").expect("-ERR invalid base64 in SASL response")
	})
	t.Run("malformed", func(t *testing.T) {
		c := e.dialGreeted()
		c.cmd("AUTH PLAIN " + b64("no nuls here")).expect("-ERR [AUTH] authentication failed")
	})
	t.Run("login mechanism", func(t *testing.T) {
		c := e.dialGreeted()
		c.cmd("AUTH LOGIN").expect("+ " + b64("Username:"))
		c.cmd(b64(e.acct.Address)).expect("+ " + b64("Password:"))
		c.cmd(b64(testPassword)).expectPrefix("+OK maildrop locked")
		c.cmd("QUIT").expectPrefix("+OK")
		c.expectClosed()
	})
}

// TestLoginThrottled: failed logins go through auth.Authenticator, which
// slows further attempts on the account; the real user still gets in.
// (Its refusals, ErrThrottled, map to [SYS/TEMP]: TestMapError.)
func TestLoginThrottled(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Auth = &auth.Authenticator{Store: o.Store, Throttle: auth.Throttle{Delay: 100 * time.Millisecond, MaxDelay: 400 * time.Millisecond}}
		o.MaxBadCommands = 100
	})
	c := e.dialGreeted()
	for range 3 {
		c.cmd("USER " + e.acct.Address).expect("+OK send PASS")
		c.cmd("PASS wrong").expect("-ERR [AUTH] authentication failed")
	}
	// After three failures the next attempt waits 100·2² = 400 ms after
	// the last one.
	start := time.Now()
	c.cmd("USER " + e.acct.Address).expect("+OK send PASS")
	c.cmd("PASS " + testPassword).expectPrefix("+OK maildrop locked")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("login after three failures took %v: not slowed", d)
	}
}
