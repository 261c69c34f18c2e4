package pop3d

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestLockTwoSessions: a second login to a locked maildrop gets [IN-USE]
// and changes nothing; it can log in once the first session quits.
func TestLockTwoSessions(t *testing.T) {
	e := newEnv(t, nil)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	a := e.login()
	a.cmd("DELE 1").expect("+OK message 1 deleted")

	b := e.dialGreeted()
	b.cmd("USER " + e.acct.Address).expect("+OK send PASS")
	b.cmd("PASS " + testPassword).expect("-ERR [IN-USE] maildrop is locked by another session")
	b.cmd("STAT").expect("-ERR command not valid in this state")
	b.cmd("AUTH PLAIN " + b64("\x00"+e.acct.Address+"\x00"+testPassword)).expect("-ERR [IN-USE] maildrop is locked by another session")

	// A's session is unaffected.
	a.cmd("STAT").expect("+OK 0 0")
	a.cmd("QUIT").expect("+OK pop.example.org POP3 server signing off (1 messages deleted)")
	a.expectClosed()

	b.cmd("USER " + e.acct.Address).expect("+OK send PASS")
	b.cmd("PASS " + testPassword).expect("+OK maildrop locked and ready, 0 messages (0 octets)")
}

// TestDropWithoutQuit: a connection that goes away without QUIT deletes
// nothing and releases the lock.
func TestDropWithoutQuit(t *testing.T) {
	e := newEnv(t, nil)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	deliver(t, e.st, e.acct, e.inbox.ID, msg2)
	a := e.login()
	a.cmd("DELE 1").expect("+OK message 1 deleted")
	a.cmd("DELE 2").expect("+OK message 2 deleted")
	a.nc.Close()

	// The lock is released once the server notices the close.
	var b *client
	waitFor(t, "lock release", func() bool {
		b = e.dialGreeted()
		b.cmd("USER " + e.acct.Address).expect("+OK send PASS")
		b.cmd("PASS " + testPassword)
		return strings.HasPrefix(b.line(), "+OK")
	})
	b.cmd("STAT").expectPrefix("+OK 2 ")
	if n := len(e.inboxUIDs()); n != 2 {
		t.Fatalf("%d messages left after a drop, want 2", n)
	}
}

// TestLockHeldByOtherHolder: the lock is the store's, so any holder (an
// other node, a maintenance job) keeps POP3 out.
func TestLockHeldByOtherHolder(t *testing.T) {
	e := newEnv(t, nil)
	lease, err := e.st.LockMaildrop(context.Background(), e.acct.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	c := e.dialGreeted()
	c.cmd("AUTH PLAIN " + b64("\x00"+e.acct.Address+"\x00"+testPassword)).expect("-ERR [IN-USE] maildrop is locked by another session")
	lease.Release()
	c.cmd("AUTH PLAIN " + b64("\x00"+e.acct.Address+"\x00"+testPassword)).expectPrefix("+OK")
	// And the session holds it now.
	if _, err := e.st.LockMaildrop(context.Background(), e.acct.ID, "test"); err != store.ErrLocked {
		t.Fatalf("LockMaildrop during a session: %v, want ErrLocked", err)
	}
	c.cmd("QUIT").expectPrefix("+OK")
	c.expectClosed()
	waitFor(t, "lock release after QUIT", func() bool {
		l, err := e.st.LockMaildrop(context.Background(), e.acct.ID, "test")
		if err == nil {
			l.Release()
		}
		return err == nil
	})
}

// TestConcurrentLogins: of many simultaneous logins, exactly one gets the
// maildrop. (auth.Authenticator queues simultaneous attempts on one
// account with growing delays and refuses beyond a minute, so keep n
// below 7.)
func TestConcurrentLogins(t *testing.T) {
	e := newEnv(t, nil)
	const n = 6
	results := make(chan string, n)
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = e.dialGreeted()
	}
	for i := range clients {
		go func(c *client) {
			fmt.Fprintf(c.nc, "AUTH PLAIN %s\r\n", b64("\x00"+e.acct.Address+"\x00"+testPassword))
			s, _ := c.br.ReadString('\n')
			results <- s
		}(clients[i])
	}
	ok, inUse := 0, 0
	for range n {
		switch s := <-results; {
		case strings.HasPrefix(s, "+OK"):
			ok++
		case strings.HasPrefix(s, "-ERR [IN-USE]"):
			inUse++
		default:
			t.Errorf("unexpected reply %q", s)
		}
	}
	if ok != 1 || inUse != n-1 {
		t.Fatalf("%d logins succeeded, %d got IN-USE", ok, inUse)
	}
}
