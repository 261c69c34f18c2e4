package store

import (
	"sync"
	"testing"
	"time"
)

func recv(t *testing.T, s Subscription) Change {
	t.Helper()
	select {
	case c, ok := <-s.C():
		if !ok {
			t.Fatal("closed")
		}
		return c
	case <-time.After(2 * time.Second):
		t.Fatal("nothing received")
	}
	return Change{}
}

func TestHubOrderAndAccounts(t *testing.T) {
	h := NewHub(8)
	a, _ := h.Subscribe(1)
	a2, _ := h.Subscribe(1)
	b, _ := h.Subscribe(2)
	h.Publish(Change{Kind: ChangeAppend, Account: 1, ModSeq: 5}, Change{Kind: ChangeFlags, Account: 2, ModSeq: 9}, Change{Kind: ChangeExpunge, Account: 1, ModSeq: 6})
	for _, s := range []Subscription{a, a2} {
		if c := recv(t, s); c.Kind != ChangeAppend || c.ModSeq != 5 {
			t.Errorf("first %+v", c)
		}
		if c := recv(t, s); c.Kind != ChangeExpunge || c.ModSeq != 6 {
			t.Errorf("second %+v", c)
		}
	}
	if c := recv(t, b); c.Account != 2 || c.ModSeq != 9 {
		t.Errorf("account 2 got %+v", c)
	}
	select {
	case c := <-b.C():
		t.Errorf("account 2 got account 1's change %+v", c)
	default:
	}
	if n := h.Subscribers(1); n != 2 {
		t.Errorf("Subscribers(1) = %d", n)
	}
	a.Close()
	a.Close() // twice is fine
	if _, ok := <-a.C(); ok {
		t.Error("C not closed after Close")
	}
	if n := h.Subscribers(1); n != 1 {
		t.Errorf("after Close Subscribers(1) = %d", n)
	}
	h.Publish(Change{Kind: ChangeAppend, Account: 1}) // no send on a closed channel
}

func TestHubOverflow(t *testing.T) {
	h := NewHub(4)
	s, _ := h.Subscribe(7)
	for i := 1; i <= 10; i++ {
		h.Publish(Change{Kind: ChangeAppend, Account: 7, ModSeq: ModSeq(i)})
	}
	var got []Change
	for len(s.C()) > 0 {
		got = append(got, <-s.C())
	}
	if len(got) > 4 {
		t.Fatalf("queue grew to %d", len(got))
	}
	overflow := false
	for _, c := range got {
		if c.Kind == ChangeOverflow {
			overflow = true
			if c.Account != 7 {
				t.Errorf("overflow account %d", c.Account)
			}
		}
	}
	if !overflow {
		t.Fatalf("no overflow in %+v", got)
	}
	// The newest changes after the overflow are delivered in order.
	last := got[len(got)-1]
	if last.Kind != ChangeOverflow && last.ModSeq != 10 {
		t.Errorf("last change %+v", last)
	}
	h.Publish(Change{Kind: ChangeFlags, Account: 7, ModSeq: 11})
	if c := recv(t, s); c.Kind != ChangeFlags || c.ModSeq != 11 {
		t.Errorf("after draining %+v", c)
	}
}

func TestHubClose(t *testing.T) {
	h := NewHub(0)
	s, _ := h.Subscribe(1)
	h.Close()
	if _, ok := <-s.C(); ok {
		t.Error("subscription open after hub Close")
	}
	s.Close()
	if _, err := h.Subscribe(1); err != ErrClosed {
		t.Errorf("Subscribe after Close: %v", err)
	}
	h.Publish(Change{Account: 1})
}

// TestHubCloseRacesSubscriberClose: sessions closing their subscriptions
// while the store closes the hub (a server shutting down) must neither
// deadlock nor close a channel twice. Run with -race.
func TestHubCloseRacesSubscriberClose(t *testing.T) {
	for round := 0; round < 200; round++ {
		h := NewHub(0)
		var subs []Subscription
		for i := 0; i < 8; i++ {
			s, err := h.Subscribe(AccountID(i % 2))
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, s)
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		for _, s := range subs {
			wg.Add(1)
			go func() { defer wg.Done(); s.Close(); s.Close() }()
		}
		go func() { h.Close(); wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Hub.Close and Subscription.Close deadlocked", round)
		}
		for _, s := range subs {
			if _, ok := <-s.C(); ok {
				t.Fatal("subscription still open")
			}
		}
	}
}

// TestHubCloseWhileSubscriberCloses forces the interleaving that once
// deadlocked: the hub's Close is waiting for the hub's mutex first, and a
// subscriber's Close is waiting for it too, already inside its own close.
func TestHubCloseWhileSubscriberCloses(t *testing.T) {
	for round := 0; round < 20; round++ {
		h := NewHub(0)
		s, _ := h.Subscribe(1)
		h.mu.Lock()
		hubDone, subDone := make(chan struct{}), make(chan struct{})
		go func() { h.Close(); close(hubDone) }()
		time.Sleep(2 * time.Millisecond)
		go func() { s.Close(); close(subDone) }()
		time.Sleep(2 * time.Millisecond)
		h.mu.Unlock()
		for _, c := range []chan struct{}{hubDone, subDone} {
			select {
			case <-c:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: deadlock between Hub.Close and Subscription.Close", round)
			}
		}
	}
}
