package embedded

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/storetest"
)

func TestMain(m *testing.M) {
	storetest.RunCrashChild(func(ctx context.Context, loc string) (store.Store, error) {
		return Open(ctx, loc, Options{driver: testDriver})
	})
	os.Exit(m.Run())
}

var (
	dirsMu sync.Mutex
	dirs   = map[store.Store]string{}
)

func openTest(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	dirsMu.Lock()
	dirs[s] = dir
	dirsMu.Unlock()
	return s
}

// testDriver lets a run pick the driver (SKRYTKA_TEST_SQLITE_DRIVER=sqlite3
// with -tags sqlitecgo) to compare test times.
var testDriver = os.Getenv("SKRYTKA_TEST_SQLITE_DRIVER")

func backend(opts Options) storetest.Backend {
	opts.driver = testDriver
	return storetest.Backend{
		Open: func(t *testing.T) store.Store {
			return openTest(t, t.TempDir(), opts)
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			dirsMu.Lock()
			dir := dirs[s]
			dirsMu.Unlock()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openTest(t, dir, opts)
		},
		Crash: &storetest.Crash{
			NewLocation: func(t *testing.T) string { return t.TempDir() },
			OpenAt: func(ctx context.Context, loc string) (store.Store, error) {
				return Open(ctx, loc, opts)
			},
			Check: func(t *testing.T, loc string, s store.Store) { checkFiles(t, s.(*Store)) },
		},
	}
}

func TestConformance(t *testing.T) {
	storetest.RunBackend(t, backend(Options{}))
}

// TestConformanceFiles runs the suite with every body in a file.
// The default suite already puts bodies over 64 KiB in files; this variant
// is skipped in -short and -race runs to keep CI time down.
func TestConformanceFiles(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("short or race mode")
	}
	storetest.RunBackend(t, backend(Options{InlineMaxBytes: -1}))
}

// checkFiles verifies that the body files on disk are exactly those the
// database references: no orphan, none missing, nothing left in tmp/.
func checkFiles(t *testing.T, s *Store) {
	t.Helper()
	refs := map[string]bool{}
	rows, err := s.rdb.Query(`SELECT file FROM blobs WHERE file IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var f string
		rows.Scan(&f)
		refs[f] = true
	}
	rows.Close()
	tmp, _ := os.ReadDir(filepath.Join(s.dir, tmpDir))
	for _, e := range tmp {
		t.Errorf("left in tmp/: %s (referenced: %v)", e.Name(), refs[e.Name()])
	}
	files, _ := filepath.Glob(filepath.Join(s.dir, blobDir, "*", "*"))
	onDisk := map[string]bool{}
	for _, f := range files {
		onDisk[filepath.Base(f)] = true
		if !refs[filepath.Base(f)] {
			t.Errorf("orphan body file %s", f)
		}
	}
	for f := range refs {
		if !onDisk[f] {
			t.Errorf("referenced body file %s missing", f)
		}
	}
	t.Logf("%d body files, all referenced", len(onDisk))
}
