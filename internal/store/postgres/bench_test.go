package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// benchWords is a vocabulary of pronounceable pseudo-words; benchMessage
// draws from it with a Zipf distribution, roughly like natural text.
var benchWords = func() []string {
	r := rand.New(rand.NewPCG(7, 8))
	cons, vow := "bcdfghjklmnprstvwz", "aeiou"
	words := make([]string, 20000)
	for i := range words {
		var b strings.Builder
		for n := 1 + r.IntN(4); n > 0; n-- {
			b.WriteByte(cons[r.IntN(len(cons))])
			b.WriteByte(vow[r.IntN(len(vow))])
		}
		if r.IntN(2) == 0 {
			b.WriteByte(cons[r.IntN(len(cons))])
		}
		words[i] = b.String()
	}
	return words
}()

// benchMessage is message i of a generated mailbox: about 2 KB of text,
// the word "meeting" in 60% of the messages, "rare<i>x" in message i only.
func benchMessage(r *rand.Rand, z *rand.Zipf, i int) string {
	var subj, body []string
	for n := 3 + r.IntN(5); n > 0; n-- {
		subj = append(subj, benchWords[z.Uint64()])
	}
	for n := 250 + r.IntN(150); n > 0; n-- {
		body = append(body, benchWords[z.Uint64()])
	}
	if r.IntN(10) < 6 {
		body[r.IntN(len(body))] = "Meeting"
	}
	body[r.IntN(len(body))] = fmt.Sprintf("rare%dx", i)
	return "From: sender" + fmt.Sprint(i%97) + "@example.com\r\nTo: big@example.com\r\nSubject: " + strings.Join(subj, " ") +
		"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Join(body, " ") + "\r\n"
}

// benchFill appends n generated messages (numbered from first) to mbox.
func benchFill(b *testing.B, s *Store, acct store.AccountID, mbox store.MailboxID, seed uint64, first, n int) {
	b.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 1))
	z := rand.NewZipf(r, 1.1, 2, uint64(len(benchWords)-1))
	for done := 0; done < n; {
		var batch []store.AppendMessage
		for ; done < n && len(batch) < 200; done++ {
			st, err := s.Stage(ctx, strings.NewReader(benchMessage(r, z, first+done)), 0)
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, store.AppendMessage{Body: st})
		}
		if _, err := s.Append(ctx, acct, mbox, batch); err != nil {
			b.Fatal(err)
		}
		for _, m := range batch {
			m.Body.Discard()
		}
	}
}

// BenchmarkSearchText compares the old scan with the indexed search on a
// 10,000-message mailbox ("big") and on a 500-message mailbox ("small")
// in the same database, for a rare word (one message) and a common one
// (60% of the messages). Each case runs twice, interleaved (A B A B).
//
//	go test -run XXX -bench SearchText ./internal/store/postgres/
func BenchmarkSearchText(b *testing.B) {
	s, _ := openTest(b, Options{})
	ctx := context.Background()
	big, _ := s.CreateAccount(ctx, "big@example.com", "x")
	small, _ := s.CreateAccount(ctx, "small@example.com", "x")
	bigIn, _ := s.Mailbox(ctx, big.ID, "INBOX")
	smallIn, _ := s.Mailbox(ctx, small.ID, "INBOX")
	benchFill(b, s, big.ID, bigIn.ID, 1, 0, 10000)
	benchFill(b, s, small.ID, smallIn.ID, 2, 10000, 500)
	if _, err := s.pool.Exec(ctx, `VACUUM ANALYZE bodies`); err != nil {
		b.Fatal(err)
	}
	auto := s.search
	type box struct {
		name string
		acct store.AccountID
		mbox store.MailboxID
		rare string
	}
	boxes := []box{{"big", big.ID, bigIn.ID, "rare4242x"}, {"small", small.ID, smallIn.ID, "rare10042x"}}
	plans := []struct {
		name  string
		force searchPlan
	}{{"scan", planScan}, {"index", planIndex}, {"auto", planAuto}}
	for round := 0; round < 2; round++ {
		for _, bx := range boxes {
			for _, w := range []struct{ name, needle string }{{"rare", bx.rare}, {"common", "meeting"}} {
				for _, p := range plans {
					b.Run(bx.name+"/"+w.name+"/"+p.name, func(b *testing.B) {
						s.search = auto
						s.search.force = p.force
						n := 0
						for i := 0; i < b.N; i++ {
							got, err := s.SearchText(ctx, bx.acct, bx.mbox, nil, store.TextBody, w.needle)
							if err != nil {
								b.Fatal(err)
							}
							n = len(got)
						}
						b.ReportMetric(float64(n), "found")
					})
				}
			}
		}
	}
	s.search = auto
}

// BenchmarkDeliverTextIndex measures the cost the text index adds to
// delivery: 2 KB-text messages delivered one at a time into a mailbox,
// with the trigram indexes ("index") and into a database without them
// ("noindex"), interleaved five times (the machine is shared: compare
// the medians). Note that the throwaway server runs with
// fsync off, so the figures are CPU cost, not a disk-bound delivery's.
//
//	go test -run XXX -bench DeliverTextIndex -benchtime 2000x ./internal/store/postgres/
func BenchmarkDeliverTextIndex(b *testing.B) {
	ctx := context.Background()
	with, _ := openTest(b, Options{})
	without, _ := openTest(b, Options{})
	if _, err := without.pool.Exec(ctx, `DROP INDEX `+headerTrgmIndex+`; DROP INDEX `+bodyTrgmIndex); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	z := rand.NewZipf(r, 1.1, 2, uint64(len(benchWords)-1))
	msgs := make([]string, 1000)
	for i := range msgs {
		msgs[i] = benchMessage(r, z, i)
	}
	for _, st := range []*Store{with, without} {
		if _, err := st.CreateAccount(ctx, "d@example.com", "x"); err != nil {
			b.Fatal(err)
		}
	}
	for round := 0; round < 5; round++ {
		for _, c := range []struct {
			name string
			s    *Store
		}{{"index", with}, {"noindex", without}} {
			b.Run(c.name, func(b *testing.B) {
				acct, err := c.s.Account(ctx, "d@example.com")
				if err != nil {
					b.Fatal(err)
				}
				targets := []store.DeliveryTarget{{Account: acct.ID}}
				for i := 0; i < b.N; i++ {
					st, err := c.s.Stage(ctx, strings.NewReader(msgs[i%len(msgs)]), 0)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := c.s.Deliver(ctx, st, targets); err != nil {
						b.Fatal(err)
					}
					st.Discard()
				}
			})
		}
	}
}
