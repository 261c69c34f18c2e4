package postgres

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/storetest"
	"github.com/skrytka/skrytka/internal/testharness"
)

func TestMain(m *testing.M) {
	storetest.RunCrashChild(openAt) // never returns in the crash test's child
	os.Exit(testharness.RunWithPG(m))
}

// openTest opens a Store on a fresh database of the shared throwaway server.
func openTest(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	dsn := testharness.PG(t).NewDatabase(t)
	s := openDSN(t, dsn, opts)
	return s, dsn
}

func openDSN(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func stage(t testing.TB, s store.Store, msg string) store.Staged {
	t.Helper()
	st, err := s.Stage(context.Background(), strings.NewReader(msg), 0)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	t.Cleanup(func() { st.Discard() })
	return st
}

func testMessage(subject, body string) string {
	return "From: a@example.com\nTo: b@example.com\nSubject: " + subject + "\nMessage-ID: <" + subject + "@x>\n\n" + body + "\n"
}
