package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/testharness"
)

// TestTwoNodesConcurrentAppenders runs 50 appenders split over two Store
// instances (two "nodes") on one database: every UID is handed out once,
// with no gap, and the counters match.
func TestTwoNodesConcurrentAppenders(t *testing.T) {
	a, dsn := openTest(t, Options{MaxConns: 10})
	b := openDSN(t, dsn, Options{MaxConns: 10})
	ctx := context.Background()
	acct, err := a.CreateAccount(ctx, "race@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := b.Mailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 50, 6
	var mu sync.Mutex
	var uids []store.UID
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func(w int, s *Store) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				st, err := s.Stage(ctx, strings.NewReader(testMessage(fmt.Sprintf("w%di%d", w, i), "x")), 0)
				if err != nil {
					errc <- err
					return
				}
				res, err := s.Append(ctx, acct.ID, inbox.ID, []store.AppendMessage{{Body: st}})
				st.Discard()
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				uids = append(uids, res.UIDs...)
				mu.Unlock()
			}
		}(w, s)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	if len(uids) != workers*each {
		t.Fatalf("got %d UIDs, want %d", len(uids), workers*each)
	}
	for i, u := range uids {
		if u != store.UID(i+1) {
			t.Fatalf("UID #%d is %d: duplicated or skipped", i, u)
		}
	}
	m, all, err := a.SelectState(ctx, acct.ID, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	if int(m.Messages) != workers*each || len(all) != workers*each || m.UIDNext != store.UID(workers*each+1) || m.Unseen != m.Messages {
		t.Fatalf("mailbox %+v with %d UIDs", m, len(all))
	}
	if m.HighestModSeq < store.ModSeq(workers*each) {
		t.Fatalf("HighestModSeq %d below the number of appends", m.HighestModSeq)
	}
}

// TestCrossNodeFeed checks that a subscriber on node B sees appends,
// flag changes and expunges committed through node A, in order.
func TestCrossNodeFeed(t *testing.T) {
	a, dsn := openTest(t, Options{})
	b := openDSN(t, dsn, Options{})
	ctx := context.Background()
	acct, err := a.CreateAccount(ctx, "feed@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := a.Mailbox(ctx, acct.ID, "INBOX")
	sub, err := b.Subscribe(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	start := time.Now()
	st := stage(t, a, testMessage("x", "y"))
	if _, err := a.Append(ctx, acct.ID, inbox.ID, []store.AppendMessage{{Body: st}, {Body: st}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetFlags(ctx, acct.ID, inbox.ID, store.UIDSetOf(2), store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Expunge(ctx, acct.ID, inbox.ID, store.UIDSetOf(1)); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind store.ChangeKind
		uids []store.UID
	}{{store.ChangeAppend, []store.UID{1, 2}}, {store.ChangeFlags, []store.UID{2}}, {store.ChangeExpunge, []store.UID{1}}}
	var last store.ModSeq
	for i, w := range want {
		select {
		case c := <-sub.C():
			if c.Kind != w.kind || fmt.Sprint(c.UIDs) != fmt.Sprint(w.uids) || c.Mailbox != inbox.ID || c.ModSeq <= last {
				t.Fatalf("change %d: got %+v, want kind %d uids %v", i, c, w.kind, w.uids)
			}
			last = c.ModSeq
		case <-time.After(2 * time.Second):
			t.Fatalf("change %d not seen on the other node", i)
		}
	}
	t.Logf("three changes crossed nodes in %v", time.Since(start))
	select {
	case c := <-sub.C():
		t.Fatalf("unexpected change %+v", c)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestLeaseAcrossNodes: a maildrop lock taken through store A refuses
// store B until A releases it; closing A releases its leases.
func TestLeaseAcrossNodes(t *testing.T) {
	a, dsn := openTest(t, Options{})
	b := openDSN(t, dsn, Options{})
	ctx := context.Background()
	acct, _ := a.CreateAccount(ctx, "pop@example.com", "x")
	la, err := a.LockMaildrop(ctx, acct.ID, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.LockMaildrop(ctx, acct.ID, "node-b"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("B took A's lock: %v", err)
	}
	if err := la.Refresh(ctx); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lb, err := b.LockMaildrop(ctx, acct.ID, "node-b")
	if err != nil {
		t.Fatalf("after A closed: %v", err)
	}
	if err := la.Refresh(ctx); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("A's released lease refreshed: %v", err)
	}
	lb.Release()
	if _, err := b.LockMaildrop(ctx, 999999, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lock of unknown account: %v", err)
	}
}

// TestLeaseExpiresWhenNodeKilled takes a lease in a child process, kills
// it with SIGKILL and checks that another node gets the lock within the
// lease time, not before it expires.
func TestLeaseExpiresWhenNodeKilled(t *testing.T) {
	if dsn := os.Getenv("SKRYTKA_PG_LEASE_CHILD"); dsn != "" {
		leaseChild(dsn)
		return
	}
	b, dsn := openTest(t, Options{})
	ctx := context.Background()
	acct, _ := b.CreateAccount(ctx, "kill@example.com", "x")
	const ttl = 2 * time.Second
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeaseExpiresWhenNodeKilled$")
	cmd.Env = append(os.Environ(), "SKRYTKA_PG_LEASE_CHILD="+dsn, fmt.Sprintf("SKRYTKA_PG_LEASE_ACCT=%d", acct.ID))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// A child that never gets the lock must not hang the test.
	watchdog := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "LOCKED" {
		t.Fatalf("child: %q %v", buf, err)
	}
	// The child refreshes every ttl/3: the lock must hold beyond one ttl.
	time.Sleep(ttl + ttl/2)
	if _, err := b.LockMaildrop(ctx, acct.ID, "b"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("live child's lease was taken: %v", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	killed := time.Now()
	for {
		l, err := b.LockMaildrop(ctx, acct.ID, "b")
		if err == nil {
			l.Release()
			break
		}
		if !errors.Is(err, store.ErrLocked) {
			t.Fatal(err)
		}
		if time.Since(killed) > ttl+time.Second {
			t.Fatalf("lease not free %v after the holder was killed (ttl %v)", time.Since(killed), ttl)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("lease free %v after SIGKILL (ttl %v)", time.Since(killed).Round(time.Millisecond), ttl)
}

func leaseChild(dsn string) {
	ctx := context.Background()
	s, err := Open(ctx, dsn, Options{LeaseTTL: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var id int64
	fmt.Sscan(os.Getenv("SKRYTKA_PG_LEASE_ACCT"), &id)
	if _, err := s.LockMaildrop(ctx, store.AccountID(id), "child"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.WriteString("LOCKED")
	select {} // until killed
}

// TestDatabaseOutage stops the PostgreSQL server under an open store:
// calls fail with ErrUnavailable, and once the server is back the same
// Store works again without reopening, and subscribers get a
// ChangeOverflow telling them to resync.
func TestDatabaseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL server")
	}
	testharness.PG(t) // skip or fail as the shared server would
	srv, err := testharness.StartPG()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Stop(); srv.Remove() }()
	dsn := srv.NewDatabase(t)
	s := openDSN(t, dsn, Options{ConnectTimeout: time.Second, StatementTimeout: 5 * time.Second})
	ctx := context.Background()
	acct, err := s.CreateAccount(ctx, "outage@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := s.Mailbox(ctx, acct.ID, "INBOX")
	sub, err := s.Subscribe(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	st := stage(t, s, testMessage("before", "x"))
	if _, err := s.Append(ctx, acct.ID, inbox.ID, []store.AppendMessage{{Body: st}}); err != nil {
		t.Fatal(err)
	}
	<-sub.C()

	srv.Stop()
	t0 := time.Now()
	st2 := stage(t, s, testMessage("during", "x"))
	if _, err := s.Append(ctx, acct.ID, inbox.ID, []store.AppendMessage{{Body: st2}}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("append while down: %v", err)
	}
	if _, _, err := s.SelectState(ctx, acct.ID, inbox.ID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("select while down: %v", err)
	}
	if _, err := s.LockMaildrop(ctx, acct.ID, "x"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("lock while down: %v", err)
	}
	t.Logf("three failing calls took %v", time.Since(t0).Round(time.Millisecond))

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// The pool reconnects on demand; the listener within its backoff.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := s.Append(ctx, acct.ID, inbox.ID, []store.AppendMessage{{Body: st2}})
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("append after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m, uids, err := s.SelectState(ctx, acct.ID, inbox.ID)
	if err != nil || m.Messages != 2 || len(uids) != 2 {
		t.Fatalf("after restart: %+v %v %v", m, uids, err)
	}
	sawOverflow := false
	timeout := time.After(15 * time.Second)
	for !sawOverflow {
		select {
		case c := <-sub.C():
			if c.Kind == store.ChangeOverflow {
				sawOverflow = true
			}
		case <-timeout:
			t.Fatal("no ChangeOverflow after the listener reconnected")
		}
	}
}
