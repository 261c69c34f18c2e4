package embedded

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// TestReadersNoDeadlock: read transactions that prepare their statements
// for the first time while every reader connection is taken must not
// wait for each other for ever (a fresh server hit this with 32 logins at
// once: each SELECT's transaction waited for a connection to prepare on).
func TestReadersNoDeadlock(t *testing.T) {
	for _, readers := range []int{1, 2} {
		ctx := context.Background()
		s := openTest(t, t.TempDir(), Options{driver: testDriver, Readers: readers})
		a, err := s.CreateAccount(ctx, "readers@example.org", "x")
		if err != nil {
			t.Fatal(err)
		}
		inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
		appendRaw(t, s, a.ID, inbox.ID, "Subject: a\r\n\r\nbody\r\n")
		// A new store: no statement is prepared yet. Each call below runs
		// a read transaction that prepares statements inside it.
		s.Close()
		s = openTest(t, s.dir, Options{driver: testDriver, Readers: readers})
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, _, _, err := s.SelectMailbox(tctx, a.ID, store.InboxName); err != nil {
					errs <- err
				}
				if _, err := s.Changes(tctx, a.ID, inbox.ID, 0); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		cancel()
		close(errs)
		for err := range errs {
			t.Fatalf("readers=%d: %v", readers, err)
		}
		s.Close()
	}
}
