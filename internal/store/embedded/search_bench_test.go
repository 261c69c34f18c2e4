package embedded

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skrytka/skrytka/bench/corpus"
	"github.com/skrytka/skrytka/internal/store"
)

// corpusMailbox fills the INBOX of a new account with messages 0..n-1 of
// the benchmark corpus (compact profile), staged by two goroutines and
// appended 500 at a time.
func corpusMailbox(tb testing.TB, s *Store, user string, gen *corpus.Generator, n int) (store.AccountID, store.MailboxID) {
	tb.Helper()
	ctx := context.Background()
	a, err := s.CreateAccount(ctx, user, "x")
	if err != nil {
		tb.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, store.InboxName)
	if err != nil {
		tb.Fatal(err)
	}
	const chunk = 500
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		batch := make([]store.AppendMessage, end-start)
		var wg sync.WaitGroup
		var failed atomic.Value
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := start + w; i < end; i += 2 {
					st, err := s.Stage(ctx, bytes.NewReader(gen.Message(i)), 0)
					if err != nil {
						failed.Store(err)
						return
					}
					batch[i-start] = store.AppendMessage{Body: st}
				}
			}(w)
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			tb.Fatal(err)
		}
		if _, err := s.Append(ctx, a.ID, inbox.ID, batch); err != nil {
			tb.Fatal(err)
		}
		for _, m := range batch {
			m.Body.Discard()
		}
	}
	return a.ID, inbox.ID
}

// BenchmarkSearchText measures SearchText on a mailbox of 10,000 corpus
// messages (SKRYTKA_BENCH_MESSAGES=100000 for the benchmark issue's big
// mailbox), beside a second account with as many other messages
// (SKRYTKA_BENCH_OTHER), so that the index holds both: a rare word (in 1 of 20,011), the common word (in
// 60%), a sender address in the header text, and a two-letter needle
// (which the index cannot answer: the scan). It reports the index's size
// on disk beside the stored text's.
func BenchmarkSearchText(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("SKRYTKA_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	gen := &corpus.Generator{Seed: 1, Profile: corpus.Compact}
	t0 := time.Now()
	acct, mbox := corpusMailbox(b, s, "big@example.org", gen, n)
	other := n
	if v, err := strconv.Atoi(os.Getenv("SKRYTKA_BENCH_OTHER")); err == nil && v >= 0 {
		other = v
	}
	corpusMailbox(b, s, "other@example.org", &corpus.Generator{Seed: 2, Profile: corpus.Compact}, other)
	b.Logf("loaded %d + %d messages in %v", n, other, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := s.indexAll(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexed the rest in %v", time.Since(t0).Round(time.Millisecond))
	if os.Getenv("SKRYTKA_BENCH_OPTIMIZE") != "" {
		t0 = time.Now()
		if _, err := s.wdb.Exec(`INSERT INTO textidx(textidx) VALUES('optimize')`); err != nil {
			b.Fatal(err)
		}
		b.Logf("optimized the index in %v", time.Since(t0).Round(time.Millisecond))
	}
	var segs int
	s.rdb.QueryRow(`SELECT count(*) FROM textidx_idx WHERE term = ''`).Scan(&segs)
	b.Logf("index segments: %d", segs)
	var rare, common, from int
	for i := 0; i < n; i++ {
		m := gen.Meta(i)
		if m.HasRare {
			rare++
		}
		if m.HasCommon {
			common++
		}
		if m.Sender == corpus.SearchSender {
			from++
		}
	}
	var textBytes, idxBytes int64
	s.rdb.QueryRow(`SELECT sum(length(CAST(header AS BLOB)) + length(CAST(body AS BLOB))) FROM texts`).Scan(&textBytes)
	s.rdb.QueryRow(`SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'textidx%'`).Scan(&idxBytes)
	var textPages int64
	s.rdb.QueryRow(`SELECT sum(pgsize) FROM dbstat WHERE name = 'texts'`).Scan(&textPages)
	b.Logf("texts: %d bytes of text, %d bytes of pages; text index: %d bytes of pages (%.2fx the texts' pages)", textBytes, textPages, idxBytes, float64(idxBytes)/float64(max(textPages, 1)))

	cases := []struct {
		name   string
		scope  store.TextScope
		needle string
		want   int // -1: not checked
	}{
		{"Rare", store.TextBody, corpus.RareWord, rare},
		{"Common", store.TextBody, corpus.CommonWord, common},
		{"HeaderFrom", store.TextHeader, corpus.SenderAddr(corpus.SearchSender), -1},
		{"TextAllRare", store.TextAll, "QUOKKAFJORD", rare},
		{"TwoLetters", store.TextBody, "qx", -1},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				got, err := s.SearchText(ctx, acct, mbox, nil, c.scope, c.needle)
				if err != nil {
					b.Fatal(err)
				}
				if c.want >= 0 && len(got) != c.want {
					b.Fatalf("%q: %d hits, want %d", c.needle, len(got), c.want)
				}
				if c.name == "HeaderFrom" && len(got) < from {
					b.Fatalf("%q: %d hits, want at least %d", c.needle, len(got), from)
				}
				b.ReportMetric(float64(len(got)), "hits")
			}
		})
	}
}

// BenchmarkDeliverTextIndex measures 4 KB deliveries (corpus fixed4k
// profile, 20 concurrent deliverers into 20 accounts, the LMTP workload's
// shape) with the text index (queued at delivery, filled by the
// background indexer; "queued" is what it had left at the end) and, in
// the same run, with the index's triggers dropped (what delivery cost
// before the index), alternating: A B A B.
func BenchmarkDeliverTextIndex(b *testing.B) {
	gen := &corpus.Generator{Seed: 3, Profile: corpus.Fixed4K}
	msgs := make([][]byte, 512)
	for i := range msgs {
		msgs[i] = gen.Message(i)
	}
	for _, variant := range []string{"index", "noindex", "index", "noindex"} {
		b.Run(variant, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if q := os.Getenv("SKRYTKA_BENCH_FTSCONF"); q != "" && variant == "index" {
				if _, err := s.wdb.Exec(q); err != nil {
					b.Fatal(err)
				}
			}
			if variant == "noindex" {
				for _, q := range []string{`DROP TRIGGER textidx_ins`, `DROP TRIGGER textidx_del`} {
					if _, err := s.wdb.Exec(q); err != nil {
						b.Fatal(err)
					}
				}
			}
			var accts []store.AccountID
			for i := 0; i < 20; i++ {
				a, err := s.CreateAccount(ctx, fmt.Sprintf("u%d@example.org", i), "x")
				if err != nil {
					b.Fatal(err)
				}
				accts = append(accts, a.ID)
			}
			var next atomic.Int64
			b.SetBytes(4096)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < 20; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						st, err := s.Stage(ctx, bytes.NewReader(msgs[i%int64(len(msgs))]), 0)
						if err != nil {
							b.Error(err)
							return
						}
						if _, err := s.Deliver(ctx, st, []store.DeliveryTarget{{Account: accts[w]}}); err != nil {
							b.Error(err)
							return
						}
						st.Discard()
					}
				}(w)
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
			var queued int
			s.rdb.QueryRow(`SELECT count(*) FROM textq`).Scan(&queued)
			b.ReportMetric(float64(queued), "queued")
		})
	}
}
