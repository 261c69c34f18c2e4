package embedded

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// benchDrivers are the SQLite drivers the benchmarks compare. The cgo
// driver joins with -tags sqlitecgo (see driver_cgo_bench_test.go).
var benchDrivers = []string{"sqlite"}

func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: bench@example.org\r\nTo: user@example.org\r\nSubject: benchmark message\r\n\r\n")
	line := strings.Repeat("lorem ipsum dolor sit amet ", 3) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()[:size]
}

// BenchmarkAppend measures Stage+Append of one message per call, with
// fsync on (synchronous=FULL), for 1 KB and 100 KB messages and 1 and 8
// concurrent writers. Sub-benchmarks vary the driver, group commit
// (batch=1 turns it off) and where 100 KB bodies go (inline or file).
func BenchmarkAppend(b *testing.B) {
	type variant struct {
		name string
		opts Options
	}
	var variants []variant
	for _, d := range benchDrivers {
		variants = append(variants,
			variant{d + "/group", Options{driver: d}},
			variant{d + "/nogroup", Options{driver: d, MaxBatch: 1}},
			variant{d + "/allinline", Options{driver: d, InlineMaxBytes: 1 << 20}},
			variant{d + "/allfiles", Options{driver: d, InlineMaxBytes: -1}},
		)
	}
	for _, v := range variants {
		for _, size := range []int{1 << 10, 100 << 10} {
			for _, writers := range []int{1, 8} {
				name := fmt.Sprintf("%s/%dKB/w%d", v.name, size>>10, writers)
				b.Run(name, func(b *testing.B) { benchAppend(b, v.opts, size, writers) })
			}
		}
	}
}

func benchAppend(b *testing.B, opts Options, size, writers int) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateAccount(ctx, "bench@example.org", "x")
	if err != nil {
		b.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, store.InboxName)
	if err != nil {
		b.Fatal(err)
	}
	body := benchMessage(size)
	var left atomic.Int64
	left.Store(int64(b.N))
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				st, err := s.Stage(ctx, bytes.NewReader(body), 0)
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
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
	batches, ops := s.WriteStats()
	b.ReportMetric(float64(ops)/float64(batches), "ops/commit")
}

// BenchmarkDeliver measures one 4 KB delivery to one INBOX with 20
// concurrent deliverers (the LMTP workload's shape).
func BenchmarkDeliver(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var accts []store.AccountID
	for i := 0; i < 20; i++ {
		a, err := s.CreateAccount(ctx, fmt.Sprintf("u%d@example.org", i), "x")
		if err != nil {
			b.Fatal(err)
		}
		accts = append(accts, a.ID)
	}
	body := benchMessage(4 << 10)
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				st, err := s.Stage(ctx, bytes.NewReader(body), 0)
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
}
