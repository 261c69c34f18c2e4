package embedded

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// benchMailbox fills a mailbox with n small messages of varied text.
func benchMailbox(b *testing.B, opts Options, n int) (*Store, store.AccountID, store.MailboxID) {
	b.Helper()
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	a, err := s.CreateAccount(ctx, "reader@example.org", "x")
	if err != nil {
		b.Fatal(err)
	}
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	var batch []store.AppendMessage
	for i := 0; i < n; i++ {
		var m bytes.Buffer
		fmt.Fprintf(&m, "From: sender%d@example.org\r\nSubject: message number %d\r\n\r\n", i%97, i)
		for j := 0; j < 20; j++ {
			fmt.Fprintf(&m, "line %d of message %d with some common words and token%08d\r\n", j, i, i*31+j)
		}
		st, err := s.Stage(ctx, &m, 0)
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, store.AppendMessage{Body: st})
		if len(batch) == 1000 || i == n-1 {
			if _, err := s.Append(ctx, a.ID, inbox.ID, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return s, a.ID, inbox.ID
}

// BenchmarkRead measures the read paths on a mailbox of 10,000 messages
// (SKRYTKA_BENCH_MESSAGES=100000 for the benchmark issue's big mailbox).
func BenchmarkRead(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("SKRYTKA_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	for _, d := range benchDrivers {
		b.Run(d, func(b *testing.B) {
			s, acct, mbox := benchMailbox(b, Options{driver: d}, n)
			ctx := context.Background()
			b.Run("SearchTextRare", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					got, err := s.SearchText(ctx, acct, mbox, nil, store.TextBody, fmt.Sprintf("token%08d", (n/2)*31+3))
					if err != nil || len(got) != 1 {
						b.Fatal(got, err)
					}
				}
			})
			b.Run("SearchTextCommon", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					got, err := s.SearchText(ctx, acct, mbox, nil, store.TextBody, "COMMON words")
					if err != nil || len(got) != n {
						b.Fatal(len(got), err)
					}
				}
			})
			b.Run("MessagesFlags", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					c := 0
					err := s.Messages(ctx, acct, mbox, store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}, store.FetchOptions{}, func(*store.Message) error { c++; return nil })
					if err != nil || c != n {
						b.Fatal(c, err)
					}
				}
			})
			b.Run("MessagesParsed", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					c := 0
					err := s.Messages(ctx, acct, mbox, store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}, store.FetchOptions{Parsed: true}, func(*store.Message) error { c++; return nil })
					if err != nil || c != n {
						b.Fatal(c, err)
					}
				}
			})
			// A flag change on one message, then SELECT: the cached
			// snapshot is brought up to date (the write is not timed).
			b.Run("SelectStateAfterFlagChange", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					u := store.UID(i%n + 1)
					if _, err := s.SetFlags(ctx, acct, mbox, store.UIDSet{{Start: u, Stop: u}}, store.FlagsAdd, store.Flags{Keywords: []string{"$bench"}}, 0); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					_, uids, err := s.SelectState(ctx, acct, mbox)
					if err != nil || len(uids) != n {
						b.Fatal(len(uids), err)
					}
				}
			})
			b.Run("SelectState", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					_, uids, err := s.SelectState(ctx, acct, mbox)
					if err != nil || len(uids) != n {
						b.Fatal(len(uids), err)
					}
				}
			})
		})
	}
}
