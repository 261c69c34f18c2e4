package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/outbound"
	"github.com/skrytka/skrytka/internal/queue"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/testharness"
)

// TestQueueRunsOnOneNode: the queue runner holds the system account's
// maildrop lease while it runs, a second runner backs off, and the lease
// is released when the runner stops.
func TestQueueRunsOnOneNode(t *testing.T) {
	st := testharness.EmbeddedStore(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := queue.Open(ctx, st, outbound.New(outbound.Options{}), queue.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.Account(ctx, queue.SystemAddress)
	if err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runQueue(runCtx, st, q, "node A", time.Hour, log)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lease, err := st.LockMaildrop(ctx, acct.ID, "probe")
		if errors.Is(err, store.ErrLocked) {
			break // node A runs the queue
		}
		if err != nil {
			t.Fatal(err)
		}
		lease.Release()
		if time.Now().After(deadline) {
			t.Fatal("queue runner never took the lease")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Node B does not run it while A does.
	bCtx, bStop := context.WithTimeout(ctx, 5*time.Second)
	defer bStop()
	if err := runQueueOnce(bCtx, st, q, "node B", log); err != nil {
		t.Fatalf("second runner: %v", err)
	}
	if bCtx.Err() != nil {
		t.Fatal("second runner ran the queue instead of backing off")
	}

	stop()
	<-done
	lease, err := st.LockMaildrop(ctx, acct.ID, "probe")
	if err != nil {
		t.Fatalf("lease not released after the runner stopped: %v", err)
	}
	lease.Release()
}
