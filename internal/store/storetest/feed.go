package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// next waits for one change.
func next(t *testing.T, sub store.Subscription) store.Change {
	t.Helper()
	select {
	case c, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change within 5s")
	}
	return store.Change{}
}

func testFeed(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	other := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	sub, err := e.s.Subscribe(e.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	osub, err := e.s.Subscribe(e.ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer osub.Close()

	u1 := e.append(a.ID, inbox.ID, msg("f1"), store.Flags{})
	c := next(t, sub)
	m := e.mailboxByID(a.ID, inbox.ID)
	if c.Kind != store.ChangeAppend || c.Account != a.ID || c.Mailbox != inbox.ID || !equalUIDs(c.UIDs, []store.UID{u1}) || c.ModSeq != m.HighestModSeq {
		t.Errorf("append change %+v (mailbox %+v)", c, m)
	}
	e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(u1), store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0)
	c = next(t, sub)
	if c.Kind != store.ChangeFlags || !equalUIDs(c.UIDs, []store.UID{u1}) || c.ModSeq != e.mailboxByID(a.ID, inbox.ID).HighestModSeq {
		t.Errorf("flags change %+v", c)
	}
	e.s.Expunge(e.ctx, a.ID, inbox.ID, store.UIDSetOf(u1))
	c = next(t, sub)
	if c.Kind != store.ChangeExpunge || !equalUIDs(c.UIDs, []store.UID{u1}) {
		t.Errorf("expunge change %+v", c)
	}
	e.create(a.ID, "FeedBox")
	c = next(t, sub)
	if c.Kind != store.ChangeMailboxes || c.Account != a.ID {
		t.Errorf("mailbox change %+v", c)
	}
	e.s.SetSubscribed(e.ctx, a.ID, "FeedBox", true)
	if c = next(t, sub); c.Kind != store.ChangeMailboxes {
		t.Errorf("subscribe change %+v", c)
	}
	// Deliveries to the account are published too.
	st := e.stage(msg("d"))
	if _, err := e.s.Deliver(e.ctx, st, []store.DeliveryTarget{{Account: a.ID}}); err != nil {
		t.Fatal(err)
	}
	if c = next(t, sub); c.Kind != store.ChangeAppend || c.Mailbox != inbox.ID {
		t.Errorf("deliver change %+v", c)
	}
	select {
	case c := <-osub.C():
		t.Errorf("other account received %+v", c)
	default:
	}

	// Completeness and order under concurrency: every acknowledged append
	// is published, and ModSeqs per mailbox arrive increasing.
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				st, err := e.s.Stage(e.ctx, stringsReader(msg(fmt.Sprint(w, "-", i))), 0)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := e.s.Append(e.ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}}); err != nil {
					t.Error(err)
				}
				st.Discard()
			}
		}(w)
	}
	wg.Wait()
	seen := map[store.UID]bool{}
	var last store.ModSeq
	for len(seen) < writers*each {
		c := next(t, sub)
		if c.Kind == store.ChangeOverflow {
			t.Fatal("overflow with only 80 changes queued")
		}
		if c.ModSeq <= last {
			t.Errorf("ModSeq %d after %d: out of order", c.ModSeq, last)
		}
		last = c.ModSeq
		for _, u := range c.UIDs {
			if seen[u] {
				t.Errorf("UID %d published twice", u)
			}
			seen[u] = true
		}
	}
	// Close ends the channel.
	sub.Close()
	for range sub.C() {
	}
}

func testFeedOverflow(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	u := e.append(a.ID, inbox.ID, msg("o"), store.Flags{})
	sub, err := e.s.Subscribe(e.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Far more changes than any sane per-subscriber queue (the suite
	// assumes a queue under 500), without reading.
	const n = 600
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			kw := fmt.Sprint("t", w)
			for i := 0; i < n/6; i++ {
				op := store.FlagsAdd
				if i%2 == 1 {
					op = store.FlagsRemove
				}
				if _, err := e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(u), op, store.Flags{Keywords: []string{kw}}, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	final := e.mailboxByID(a.ID, inbox.ID).HighestModSeq
	got, overflow := 0, false
	var last store.Change
	for {
		select {
		case c := <-sub.C():
			got++
			last = c
			if c.Kind == store.ChangeOverflow {
				overflow = true
				if c.Account != a.ID {
					t.Errorf("overflow for account %d", c.Account)
				}
			}
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	if !overflow {
		t.Errorf("no ChangeOverflow after %d unread changes (received %d)", n, got)
	}
	if got >= n {
		t.Errorf("queue not bounded: %d changes delivered", got)
	}
	// After an overflow, later changes still arrive.
	e.append(a.ID, inbox.ID, msg("after"), store.Flags{})
	c := next(t, sub)
	if c.Kind != store.ChangeAppend || c.ModSeq <= final {
		t.Errorf("change after overflow %+v (last before %+v)", c, last)
	}
}

func testMaildropLock(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	o := e.account()
	l1, err := e.s.LockMaildrop(e.ctx, a.ID, "session-1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.s.LockMaildrop(e.ctx, a.ID, "session-2")
	wantErr(t, "second lock", err, store.ErrLocked)
	l3, err := e.s.LockMaildrop(e.ctx, o.ID, "session-3")
	if err != nil {
		t.Fatalf("lock of another account: %v", err)
	}
	defer l3.Release()
	if err := l1.Refresh(e.ctx); err != nil {
		t.Errorf("Refresh of a held lease: %v", err)
	}
	if err := l1.Release(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Refresh after Release", l1.Refresh(e.ctx), store.ErrLocked)
	l2, err := e.s.LockMaildrop(e.ctx, a.ID, "session-2")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	// Releasing the old lease again must not free the new holder's lock.
	l1.Release()
	_, err = e.s.LockMaildrop(e.ctx, a.ID, "session-4")
	wantErr(t, "lock after stale double release", err, store.ErrLocked)
	l2.Release()
	_, err = e.s.LockMaildrop(e.ctx, a.ID+10000, "x")
	wantErr(t, "lock of a missing account", err, store.ErrNotFound)
}
