package pop3d

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// faultStore is the real embedded store with failures injected on demand,
// to check the replies on error paths (STYLE.md §7).
type faultStore struct {
	store.Store
	failExpunge atomic.Bool
	failOpen    atomic.Bool
	loseLease   atomic.Bool
	panicOpen   atomic.Bool
}

func (f *faultStore) Expunge(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uids store.UIDSet) ([]store.UID, error) {
	if f.failExpunge.Load() {
		return nil, store.ErrUnavailable
	}
	return f.Store.Expunge(ctx, acct, mbox, uids)
}

func (f *faultStore) OpenMessage(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uid store.UID) (store.MessageReader, error) {
	if f.failOpen.Load() {
		return nil, store.ErrUnavailable
	}
	if f.panicOpen.Load() {
		panic("injected panic")
	}
	return f.Store.OpenMessage(ctx, acct, mbox, uid)
}

func (f *faultStore) LockMaildrop(ctx context.Context, acct store.AccountID, holder string) (store.Lease, error) {
	l, err := f.Store.LockMaildrop(ctx, acct, holder)
	if err != nil {
		return nil, err
	}
	return &faultLease{Lease: l, f: f}, nil
}

type faultLease struct {
	store.Lease
	f *faultStore
}

func (l *faultLease) Refresh(ctx context.Context) error {
	if l.f.loseLease.Load() {
		return store.ErrLocked
	}
	return l.Lease.Refresh(ctx)
}

// newFaultEnv is newEnv with the store wrapped in a faultStore.
func newFaultEnv(t *testing.T) (*env, *faultStore) {
	t.Helper()
	e := newEnv(t, nil)
	e.srv.Close()
	fs := &faultStore{Store: e.st}
	opts := e.srv.opts
	opts.Store = fs
	e.srv = New(opts)
	e.srv.leaseRefresh = 20 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.serve(ln)
	return e, fs
}

// TestUpdateFailure: if the store cannot apply the deletions, QUIT says so
// with [SYS/TEMP], nothing is deleted and the lock is released.
func TestUpdateFailure(t *testing.T) {
	e, fs := newFaultEnv(t)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	c := e.login()
	c.cmd("DELE 1").expectPrefix("+OK")
	fs.failExpunge.Store(true)
	c.cmd("QUIT").expect("-ERR [SYS/TEMP] deleted messages not removed, try again later")
	c.expectClosed()
	if n := len(e.inboxUIDs()); n != 1 {
		t.Fatalf("%d messages left, want 1", n)
	}
	fs.failExpunge.Store(false)
	c = e.login()
	c.cmd("DELE 1").expectPrefix("+OK")
	c.cmd("QUIT").expectPrefix("+OK")
	c.expectClosed()
	if n := len(e.inboxUIDs()); n != 0 {
		t.Fatalf("%d messages left, want 0", n)
	}
}

// TestOpenFailure: a store failure before any byte of RETR is sent is a
// -ERR [SYS/TEMP]; the session goes on.
func TestOpenFailure(t *testing.T) {
	e, fs := newFaultEnv(t)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	c := e.login()
	fs.failOpen.Store(true)
	c.cmd("RETR 1").expect("-ERR [SYS/TEMP] temporary server problem, try again later")
	c.cmd("TOP 1 0").expect("-ERR [SYS/TEMP] temporary server problem, try again later")
	fs.failOpen.Store(false)
	c.cmd("RETR 1").expectPrefix("+OK")
	c.multiline()
}

// TestLeaseLost: when the store says the lock was lost (on a multi-node
// backend, another node took it after expiry), the session ends at its
// next command without UPDATE.
func TestLeaseLost(t *testing.T) {
	e, fs := newFaultEnv(t)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	c := e.login()
	c.cmd("DELE 1").expectPrefix("+OK")
	fs.loseLease.Store(true)
	time.Sleep(200 * time.Millisecond) // several refresh periods
	c.cmd("QUIT").expect("-ERR [IN-USE] maildrop lock lost, closing connection")
	c.expectClosed()
	if n := len(e.inboxUIDs()); n != 1 {
		t.Fatalf("a session without its lock deleted messages: %d left", n)
	}
}

// TestPanicRecovered: a panic in a command closes that connection only
// and releases its lock.
func TestPanicRecovered(t *testing.T) {
	e, fs := newFaultEnv(t)
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	other := e.dialGreeted()
	c := e.login()
	fs.panicOpen.Store(true)
	c.cmd("RETR 1")
	c.expectClosed()
	fs.panicOpen.Store(false)
	waitFor(t, "the panic to be counted", func() bool { return e.srv.panics.Load() == 1 })
	e.srv.panics.Store(0) // expected; the cleanup checks for others
	other.cmd("AUTH PLAIN " + b64("\x00"+e.acct.Address+"\x00"+testPassword)).expectPrefix("+OK maildrop locked and ready, 1 messages")
}
