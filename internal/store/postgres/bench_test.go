package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// BenchmarkAppend1K measures Stage+Append of 1 KB messages into one
// mailbox, with -cpu controlling concurrency via RunParallel.
func BenchmarkAppend1K(b *testing.B) {
	s, _ := openTest(b, Options{})
	ctx := context.Background()
	a, _ := s.CreateAccount(ctx, "bench@example.com", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	msg := testMessage("bench", strings.Repeat("0123456789abcdef\n", 56))
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st, err := s.Stage(ctx, strings.NewReader(msg), 0)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}}); err != nil {
				b.Error(err)
				return
			}
			st.Discard()
		}
	})
}

// BenchmarkDeliver1K measures Deliver of 1 KB messages to 4 accounts'
// INBOXes from parallel goroutines.
func BenchmarkDeliver1K(b *testing.B) {
	s, _ := openTest(b, Options{})
	ctx := context.Background()
	var targets []store.DeliveryTarget
	for _, n := range []string{"a", "b", "c", "d"} {
		a, _ := s.CreateAccount(ctx, n+"@example.com", "x")
		targets = append(targets, store.DeliveryTarget{Account: a.ID})
	}
	msg := testMessage("bench", strings.Repeat("0123456789abcdef\n", 56))
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			st, err := s.Stage(ctx, strings.NewReader(msg), 0)
			if err != nil {
				b.Error(err)
				return
			}
			i++
			if _, err := s.Deliver(ctx, st, targets[i%4:i%4+1]); err != nil {
				b.Error(err)
				return
			}
			st.Discard()
		}
	})
}
