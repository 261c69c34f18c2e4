package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/skrytka/skrytka/internal/store"

	// The SQLite driver; see the package comment for why this one.
	_ "modernc.org/sqlite"
)

// Defaults of Options fields.
const (
	// DefaultInlineMaxBytes: bodies up to this size live inside SQLite.
	DefaultInlineMaxBytes = 64 << 10
	// DefaultMaxTextBytes caps the decoded header and body text kept for
	// SearchText, each.
	DefaultMaxTextBytes = 2 << 20
	// DefaultMaxBatch caps how many write requests share one commit.
	DefaultMaxBatch = 256
	// DefaultReaders caps open read connections.
	DefaultReaders = 16
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger receives background errors (cleanup of deleted bodies).
	// nil: slog.Default().
	Logger *slog.Logger
	// InlineMaxBytes is the largest body stored inside the database; larger
	// ones go to files under dir/blobs. 0: DefaultInlineMaxBytes; negative:
	// every body in a file.
	InlineMaxBytes int64
	// MaxTextBytes caps the decoded text kept per message for SearchText
	// (header and body each). 0: DefaultMaxTextBytes.
	MaxTextBytes int
	// FeedQueue is the per-subscriber change queue length. 0:
	// store.DefaultFeedQueue.
	FeedQueue int
	// MaxBatch caps how many concurrent write requests share one
	// transaction and fsync (group commit). 0: DefaultMaxBatch; 1 turns group
	// commit off.
	MaxBatch int
	// Readers caps open read connections. 0: DefaultReaders.
	Readers int

	// driver is the database/sql driver name; "" is "sqlite" (modernc).
	// Tests set it to compare drivers.
	driver string
	// indexStartDelay replaces the pause before the text indexer starts
	// on its own after Open (tests; 0: indexStartDelay).
	indexStartDelay time.Duration
	// syncFile replaces (*os.File).Sync for staged bodies (fault
	// injection in tests).
	syncFile func(*os.File) error
}

// Store is the embedded backend. It implements store.Store.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	rdb  *sql.DB // readers (query_only)
	wdb  *sql.DB // the single writer connection
	hub  *store.Hub

	writes chan *writeOp
	quit   chan struct{}
	wdone  chan struct{}

	wmu      sync.RWMutex // guards closed; held shared while queueing a write
	closed   bool
	wstmts   map[string]*sql.Stmt // prepared on wdb; used by the writer only
	wpending map[string]struct{}  // queries to prepare after the batch
	rstmts   sync.Map             // query -> *sql.Stmt prepared on rdb
	txSlots  chan struct{}        // read transactions running (readTx)
	cache    msgCache             // per-mailbox message metadata (cache.go)

	lockf *os.File // flock on dir/lock, held while open

	nBatches, nOps atomic.Uint64 // WriteStats
	sweepQueued    atomic.Bool   // a dead-file sweep is queued

	mu    sync.Mutex // guards locks
	locks map[store.AccountID]*lease
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir, applies schema
// migrations, recovers from an earlier crash (bodies staged but not
// committed are removed; committed bodies are moved into place) and starts
// the writer.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.InlineMaxBytes == 0 {
		opts.InlineMaxBytes = DefaultInlineMaxBytes
	}
	if opts.MaxTextBytes == 0 {
		opts.MaxTextBytes = DefaultMaxTextBytes
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Readers <= 0 {
		opts.Readers = DefaultReaders
	}
	if opts.driver == "" {
		opts.driver = "sqlite"
	}
	for _, d := range []string{dir, filepath.Join(dir, tmpDir), filepath.Join(dir, blobDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
	}
	lockf, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	path := filepath.Join(dir, "skrytka.db")
	wdb, err := sql.Open(opts.driver, dsn(path, false))
	if err != nil {
		lockf.Close()
		return nil, fmt.Errorf("embedded: open database: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if err := migrate(ctx, wdb); err != nil {
		wdb.Close()
		lockf.Close()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	// The WAL is truncated to this size after a checkpoint (it would
	// otherwise keep its largest size forever).
	if _, err := wdb.ExecContext(ctx, `PRAGMA journal_size_limit = 67108864`); err != nil {
		wdb.Close()
		lockf.Close()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	rdb, err := sql.Open(opts.driver, dsn(path, true))
	if err != nil {
		wdb.Close()
		lockf.Close()
		return nil, fmt.Errorf("embedded: open database: %w", err)
	}
	// One connection more than transactions may hold (see readTx).
	rdb.SetMaxOpenConns(opts.Readers + 1)
	rdb.SetMaxIdleConns(opts.Readers + 1)
	s := &Store{
		dir:      dir,
		opts:     opts,
		log:      opts.Logger,
		rdb:      rdb,
		wdb:      wdb,
		hub:      store.NewHub(opts.FeedQueue),
		writes:   make(chan *writeOp, 1024),
		quit:     make(chan struct{}),
		wdone:    make(chan struct{}),
		locks:    make(map[store.AccountID]*lease),
		lockf:    lockf,
		wstmts:   make(map[string]*sql.Stmt),
		wpending: make(map[string]struct{}),
		txSlots:  make(chan struct{}, opts.Readers),
	}
	if err := s.recover(ctx); err != nil {
		rdb.Close()
		wdb.Close()
		lockf.Close()
		return nil, fmt.Errorf("embedded: recover: %w", err)
	}
	go s.writer()
	// Texts queued before this start (an earlier run stopped with a
	// backlog, or migration 4) are indexed in the background, after a
	// pause so that the burst of reconnecting clients at start-up does
	// not compete with it. A write or a search starts it sooner.
	delay := opts.indexStartDelay
	if delay == 0 {
		delay = indexStartDelay
	}
	time.AfterFunc(delay, func() {
		if !s.isClosed() {
			s.kickIndexer()
		}
	})
	return s, nil
}

// dsn builds the connection string. Both drivers understand these keys.
// synchronous=FULL makes every commit fsync the WAL: a commit that returned
// is durable.
func dsn(path string, reader bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	// 8 MiB page cache per connection (the default is 2 MiB): scans of
	// big mailboxes stay in memory.
	q.Add("_pragma", "cache_size(-8192)")
	if reader {
		q.Set("_query_only", "1")
	} else {
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "FULL")
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Close stops the writer (waiting for queued writes), closes every change
// subscription and the database. Staged bodies not yet consumed are removed
// at the next Open.
func (s *Store) Close() error {
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return nil
	}
	s.closed = true
	s.wmu.Unlock()
	close(s.quit)
	<-s.wdone
	s.hub.Close()
	s.rstmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	err1 := s.rdb.Close()
	err2 := s.wdb.Close()
	err3 := s.lockf.Close()
	return errors.Join(err1, err2, err3)
}

func (s *Store) isClosed() bool {
	s.wmu.RLock()
	defer s.wmu.RUnlock()
	return s.closed
}

// rstmt returns the read statement for q, prepared once.
func (s *Store) rstmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	if st, ok := s.rstmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.rdb.PrepareContext(ctx, q)
	if err != nil {
		return nil, translate(err)
	}
	if prev, loaded := s.rstmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// Subscribe implements store.Store.
func (s *Store) Subscribe(ctx context.Context, acct store.AccountID) (store.Subscription, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	return s.hub.Subscribe(acct)
}

// lockDir takes an exclusive flock on dir/lock so that two processes never
// open the same store. The kernel drops it when the process dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("store directory %s is in use by another process: %w", dir, err)
	}
	return f, nil
}
