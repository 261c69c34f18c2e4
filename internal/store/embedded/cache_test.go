package embedded

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// oracle reads a mailbox's messages straight from SQL, bypassing the cache.
func oracle(t *testing.T, s *Store, mbox store.MailboxID) string {
	t.Helper()
	rows, err := s.rdb.Query(`SELECT id, uid, modseq, flags, keywords, size FROM messages WHERE mailbox_id = ? ORDER BY uid`, mbox)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, uid, modseq, flags, size int64
		var kws string
		if err := rows.Scan(&id, &uid, &modseq, &flags, &kws, &size); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d %d %d %d %q %d\n", id, uid, modseq, flags, strings.Fields(kws), size)
	}
	return b.String()
}

func viaCache(t *testing.T, s *Store, acct store.AccountID, mbox store.MailboxID) string {
	t.Helper()
	var b strings.Builder
	err := s.Messages(context.Background(), acct, mbox, store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}, store.FetchOptions{}, func(m *store.Message) error {
		fmt.Fprintf(&b, "%d %d %d %d %q %d\n", m.ID, m.UID, m.ModSeq, m.Flags.Sys, m.Flags.Keywords, m.Size)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestCacheFollowsWrites runs concurrent appends, flag changes, expunges
// and moves while readers read, and checks after each round that Messages
// and SelectState (served by the cache) match the table.
func TestCacheFollowsWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{driver: testDriver})
	defer func() { s.Close() }()
	a, _ := s.CreateAccount(ctx, "cache@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	other, err := s.CreateMailbox(ctx, a.ID, "Other", store.SpecialNone)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	appendN := func(mbox store.MailboxID, n int) {
		var msgs []store.AppendMessage
		for i := 0; i < n; i++ {
			st, err := s.Stage(ctx, strings.NewReader("Subject: c\r\n\r\nbody\r\n"), 0)
			if err != nil {
				t.Error(err)
				return
			}
			msgs = append(msgs, store.AppendMessage{Body: st})
		}
		if _, err := s.Append(ctx, a.ID, mbox, msgs); err != nil {
			t.Error(err)
		}
	}
	check := func(round int) {
		for _, mb := range []store.MailboxID{inbox.ID, other.ID} {
			if got, want := viaCache(t, s, a.ID, mb), oracle(t, s, mb); got != want {
				t.Fatalf("round %d mailbox %d: cache\n%s\ntable\n%s", round, mb, got, want)
			}
			m, uids, err := s.SelectState(ctx, a.ID, mb)
			if err != nil || len(uids) != int(m.Messages) {
				t.Fatalf("round %d: SelectState %d UIDs, %d messages, %v", round, len(uids), m.Messages, err)
			}
		}
	}
	appendN(inbox.ID, 50)
	check(0)
	for round := 1; round <= 12; round++ {
		// Appends and flag changes alone (the copy-and-patch update).
		viaCache(t, s, a.ID, inbox.ID)
		appendN(inbox.ID, 2)
		u := store.UID(rng.Intn(60) + 1)
		if _, err := s.SetFlags(ctx, a.ID, inbox.ID, store.UIDSet{{Start: u, Stop: u + 3}}, store.FlagsReplace, store.Flags{Sys: store.FlagFlagged, Keywords: []string{"p"}}, 0); err != nil {
			t.Fatal(err)
		}
		check(round)
		var wg sync.WaitGroup
		seeds := []int64{rng.Int63(), rng.Int63(), rng.Int63(), rng.Int63()}
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int, seed int64) {
				defer wg.Done()
				r := rand.New(rand.NewSource(seed))
				lo := store.UID(r.Intn(60) + 1)
				set := store.UIDSet{{Start: lo, Stop: lo + store.UID(r.Intn(8))}}
				var err error
				switch w {
				case 0:
					appendN(inbox.ID, r.Intn(5)+1)
				case 1:
					_, err = s.SetFlags(ctx, a.ID, inbox.ID, set, store.FlagsAdd, store.Flags{Sys: store.FlagSeen, Keywords: []string{fmt.Sprintf("k%d", r.Intn(3))}}, 0)
				case 2:
					if _, err = s.SetFlags(ctx, a.ID, inbox.ID, set, store.FlagsAdd, store.Flags{Sys: store.FlagDeleted}, 0); err == nil {
						_, err = s.Expunge(ctx, a.ID, inbox.ID, set)
					}
				case 3:
					_, err = s.Move(ctx, a.ID, inbox.ID, other.ID, set)
				}
				if err != nil {
					t.Error(err)
				}
			}(w, seeds[w])
		}
		// Readers race the writers; what they see must be ascending.
		for r := 0; r < 3; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var last store.UID
				err := s.Messages(ctx, a.ID, inbox.ID, store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}, store.FetchOptions{}, func(m *store.Message) error {
					if m.UID <= last {
						return fmt.Errorf("UID %d after %d", m.UID, last)
					}
					last = m.UID
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		check(round)
		if round%4 == 0 {
			// A reopened store starts with an empty cache.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir, Options{driver: testDriver})
			check(round)
		}
	}
}
