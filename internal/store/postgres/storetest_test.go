package postgres

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/storetest"
	"github.com/skrytka/skrytka/internal/testharness"
)

// openAt opens a store on dsn for the crash test (both processes).
func openAt(ctx context.Context, dsn string) (store.Store, error) {
	return Open(ctx, dsn, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// TestConformance runs the backend-neutral store suite against PostgreSQL,
// unchanged, each test on a fresh database. Reopen closes the store and
// opens the same database again (as a restarted node would); the crash
// test SIGKILLs a child process (a node) in the middle of appending.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	dsns := map[store.Store]string{}
	storetest.RunBackend(t, storetest.Backend{
		Open: func(t *testing.T) store.Store {
			s, dsn := openTest(t, Options{})
			mu.Lock()
			dsns[s] = dsn
			mu.Unlock()
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			mu.Lock()
			dsn := dsns[s]
			mu.Unlock()
			s.Close()
			ns := openDSN(t, dsn, Options{})
			mu.Lock()
			dsns[ns] = dsn
			mu.Unlock()
			return ns
		},
		Crash: &storetest.Crash{
			NewLocation: func(t *testing.T) string { return testharness.PG(t).NewDatabase(t) },
			OpenAt:      openAt,
			Check:       checkConsistent,
		},
	})
}

// checkConsistent verifies what a crash must never leave behind: bodies
// nobody refers to, chunks without a body, counters that disagree with the
// rows, usage that disagrees with the entries.
func checkConsistent(t *testing.T, _ string, s store.Store) {
	t.Helper()
	ps := s.(*Store)
	ctx := context.Background()
	checks := []struct{ what, q string }{
		{"bodies whose refs disagree with their entries", `SELECT count(*) FROM bodies b
			WHERE b.refs <> (SELECT count(*) FROM messages m WHERE m.body_id = b.id)`},
		{"unreferenced bodies", `SELECT count(*) FROM bodies WHERE refs <= 0`},
		{"chunks without a body", `SELECT count(*) FROM body_chunks c WHERE NOT EXISTS (SELECT 1 FROM bodies b WHERE b.id = c.body_id)`},
		{"bodies whose chunks do not add up", `SELECT count(*) FROM bodies b
			WHERE b.size <> coalesce((SELECT sum(length(c.data)) FROM body_chunks c WHERE c.body_id = b.id), 0)`},
		{"mailboxes whose counters disagree", `SELECT count(*) FROM mailboxes x WHERE
			x.messages <> (SELECT count(*) FROM messages m WHERE m.mailbox_id = x.id) OR
			x.size <> coalesce((SELECT sum(size) FROM messages m WHERE m.mailbox_id = x.id), 0) OR
			x.unseen <> (SELECT count(*) FROM messages m WHERE m.mailbox_id = x.id AND m.sys_flags & 1 = 0) OR
			x.uidnext <= coalesce((SELECT max(uid) FROM messages m WHERE m.mailbox_id = x.id), 0)`},
		{"accounts whose usage disagrees", `SELECT count(*) FROM accounts a WHERE a.used_bytes <>
			coalesce((SELECT sum(m.size) FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE x.account_id = a.id), 0)`},
	}
	for _, c := range checks {
		var n int
		if err := ps.pool.QueryRow(ctx, c.q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if n != 0 {
			t.Errorf("%d %s", n, c.what)
		}
	}
}
