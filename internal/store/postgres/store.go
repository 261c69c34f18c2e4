// Package postgres is Skrytka's PostgreSQL store backend: many stateless
// Skrytka nodes serve the same accounts from one database. It implements
// store.Store with pgx/v5 and passes the same conformance suite
// (storetest) as the embedded backend.
//
// It depends on package store, mailparse and pgx only; nothing outside
// cmd/ and this package's tests imports it.
//
// Invariants:
//   - Every write is one transaction. UIDs and ModSeqs are allocated by
//     UPDATE mailboxes ... RETURNING, whose row lock serialises writers of
//     one mailbox across all nodes until commit; the counters (messages,
//     unseen, deleted, size, used_bytes) are adjusted in the same
//     transaction, never recomputed by scanning.
//   - Lock order, to avoid deadlocks: the account row first, then mailbox
//     rows, then body rows (in ascending id order). Every transaction that
//     locks more than one mailbox holds its account's row first, so
//     mailbox locks of one account never interleave; transactions that
//     lock several accounts (Deliver) take them in ascending id order.
//   - Expunged UIDs become tombstones carrying the expunge's ModSeq.
//   - A body is written once per Append/Deliver (one row in bodies, its
//     bytes in the BodyStore) and shared by every entry that refers to it;
//     bodies.refs counts those entries under the body row's lock, and the
//     body is deleted in the transaction that drops the last reference.
//   - Changes are sent with NOTIFY at the end of the writing transaction
//     (one pipelined batch with the COMMIT), so PostgreSQL delivers them
//     only after commit and in commit order; each node LISTENs on a
//     dedicated connection and fans them out through a store.Hub. A node
//     publishes its own changes the same way (there is no local shortcut),
//     so all subscribers see one order. After the LISTEN connection was
//     lost, every local subscriber gets a ChangeOverflow (feed.go).
//   - The POP3 maildrop lock is a lease row with an expiry on the
//     database clock, refreshed by the holding node (lease.go).
//   - SearchText answers from GIN trigram indexes (pg_trgm) on the folded
//     text of the bodies when the extension could be created, choosing
//     per search between them and reading the mailbox's messages
//     (search.go); without the extension it reads the messages, as
//     before (textindex.go). Both give the same answer.
//   - Durability: synchronous_commit is forced on for every session, so a
//     write returned nil only after PostgreSQL made its commit durable.
//   - Driver errors never leave the package: connection failures, timeouts
//     and server shutdowns become store.ErrUnavailable; unique violations
//     ErrExists.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skrytka/skrytka/internal/store"
)

// Defaults of Options fields.
const (
	DefaultMaxConns         = 20
	DefaultConnectTimeout   = 5 * time.Second
	DefaultStatementTimeout = 30 * time.Second
	DefaultLeaseTTL         = 60 * time.Second
	DefaultMaxTextBytes     = 2 << 20
	// DefaultChunkBytes is the size of one stored body chunk.
	DefaultChunkBytes = 256 << 10
	// maxTxAttempts bounds retries of a transaction that hit a deadlock or
	// serialization failure.
	maxTxAttempts = 5
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger receives background errors (listener reconnects, lease
	// refresh failures). nil: slog.Default().
	Logger *slog.Logger
	// MaxConns caps the connection pool. 0: DefaultMaxConns. The node's
	// LISTEN connection is one more; lease refreshes use the pool.
	MaxConns int32
	// ConnectTimeout bounds establishing a connection; while the database
	// is unreachable calls fail after it with store.ErrUnavailable.
	// 0: DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// StatementTimeout is PostgreSQL's statement_timeout for every
	// session. 0: DefaultStatementTimeout.
	StatementTimeout time.Duration
	// LeaseTTL is how long a maildrop lease lives without a refresh; the
	// holder's node refreshes it every LeaseTTL/3, so a dead node's lease
	// is free again within LeaseTTL. 0: DefaultLeaseTTL.
	LeaseTTL time.Duration
	// MaxTextBytes caps the decoded text kept per message for SearchText
	// (header and body each). 0: DefaultMaxTextBytes.
	MaxTextBytes int
	// FeedQueue is the per-subscriber change queue length.
	// 0: store.DefaultFeedQueue.
	FeedQueue int
	// TempDir holds staged bodies until they are appended; "" is
	// os.TempDir(). Files there are unlinked as soon as they are created,
	// so a crash leaves nothing behind.
	TempDir string
	// Bodies stores message bytes. nil: the built-in table store
	// (bytea chunks in body_chunks).
	Bodies BodyStore
	// ChunkBytes is the chunk size of the built-in body store.
	// 0: DefaultChunkBytes.
	ChunkBytes int
}

// Store is the PostgreSQL backend. It implements store.Store.
type Store struct {
	opts   Options
	log    *slog.Logger
	pool   *pgxpool.Pool
	bodies BodyStore
	hub    *store.Hub
	feed   *listener

	mu     sync.Mutex
	closed bool
	leases map[*lease]struct{}

	search searchPlanner // how SearchText runs (search.go)
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string), applies schema migrations and starts the change listener. The
// database must be reachable at Open; later outages are survived.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = DefaultStatementTimeout
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.MaxTextBytes <= 0 {
		opts.MaxTextBytes = DefaultMaxTextBytes
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = DefaultChunkBytes
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: bad dsn: %w", err)
	}
	configureConn(cfg.ConnConfig, opts)
	cfg.MaxConns = opts.MaxConns
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.MaxConnLifetime = time.Hour
	cfg.HealthCheckPeriod = 10 * time.Second

	mconn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", translate(err))
	}
	textIndex, err := migrate(ctx, mconn, opts.Logger)
	mconn.Close(context.Background())
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: pool: %w", err)
	}
	s := &Store{
		opts:   opts,
		log:    opts.Logger,
		pool:   pool,
		hub:    store.NewHub(opts.FeedQueue),
		leases: make(map[*lease]struct{}),
		search: searchPlanner{indexed: textIndex.on, wide: textIndex.wide, minIndexed: defaultMinIndexed},
	}
	s.bodies = opts.Bodies
	if s.bodies == nil {
		s.bodies = &tableBodies{pool: pool, chunk: opts.ChunkBytes}
	}
	s.feed = newListener(s, cfg.ConnConfig.Copy())
	if err := s.feed.start(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// configureConn sets the session parameters every connection needs.
func configureConn(cc *pgx.ConnConfig, opts Options) {
	cc.ConnectTimeout = opts.ConnectTimeout
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	cc.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint((2 * opts.StatementTimeout).Milliseconds())
	cc.RuntimeParams["lock_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	cc.RuntimeParams["synchronous_commit"] = "on"
	// JIT compilation pays off for long analytical queries; here it only
	// adds 0.1-0.3 s to a search scanning a large mailbox, whose cost is
	// in reading the text.
	cc.RuntimeParams["jit"] = "off"
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "skrytka"
	}
}

// Close stops the listener, releases the maildrop leases this node holds,
// closes every subscription and the pool.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	held := make([]*lease, 0, len(s.leases))
	for l := range s.leases {
		held = append(held, l)
	}
	s.mu.Unlock()
	// Release held leases together, bounded: if the database is gone they
	// expire on their own within LeaseTTL.
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnectTimeout)
	var wg sync.WaitGroup
	for _, l := range held {
		wg.Add(1)
		go func(l *lease) { defer wg.Done(); l.release(ctx) }(l)
	}
	wg.Wait()
	cancel()
	s.feed.stop()
	s.hub.Close()
	s.pool.Close()
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// tx runs fn in a READ COMMITTED transaction, retrying it on deadlock or
// serialization failure. fn must be safe to re-run.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	var err error
	for attempt := 0; attempt < maxTxAttempts; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if !retryable(err) {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return translate(err)
}

// snapshot runs the queries queued by queue in one REPEATABLE READ READ
// ONLY transaction sent as a single pipelined batch: one snapshot, one
// round trip. The returned function reads the queued queries' results.
func (s *Store) snapshot(ctx context.Context, queue func(b *pgx.Batch) func(pgx.BatchResults) error) error {
	return s.batchTx(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`, ``, queue)
}

// batchTx sends begin, the optional setup statement, the queued
// statements and COMMIT as one batch.
func (s *Store) batchTx(ctx context.Context, begin, setup string, queue func(b *pgx.Batch) func(pgx.BatchResults) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	b := &pgx.Batch{}
	b.Queue(begin)
	pre := 1
	if setup != "" {
		b.Queue(setup)
		pre++
	}
	read := queue(b)
	b.Queue(`COMMIT`)
	br := s.pool.SendBatch(ctx, b)
	err := func() error {
		for i := 0; i < pre; i++ {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if err := read(br); err != nil {
			return err
		}
		_, err := br.Exec()
		return err
	}()
	// A failed statement leaves the transaction open on the connection;
	// the pool discards connections not idle after use.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return translate(err)
}

// lazyCommit runs the statements queued by queue in one transaction sent
// as a single pipelined batch (one round trip), with synchronous_commit
// off: for state whose loss in a database crash is harmless (\Recent
// claims, feed barriers), never for mail. The returned function reads the
// results of the queued statements.
func (s *Store) lazyCommit(ctx context.Context, queue func(b *pgx.Batch) func(pgx.BatchResults) error) error {
	return s.batchTx(ctx, `BEGIN`, `SET LOCAL synchronous_commit TO off`, queue)
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// translate maps driver errors to store sentinels, keeping the detail for
// logs. Sentinels and context errors pass through.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if isSentinel(err) || errors.Is(err, errNothingDelivered) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return fmt.Errorf("%w: %v", store.ErrExists, err)
		case pe.Code == "23503": // foreign_key_violation: the account or mailbox vanished
			return fmt.Errorf("%w: %v", store.ErrNotFound, err)
		case pe.Code == "57014": // query_canceled (statement_timeout)
			return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
		}
		switch pe.Code[:2] {
		case "08", "53", "57", "58", "40", "55", "XX": // connection, resources, operator intervention, system, rollback, lock, internal
			return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
		}
		// Anything else is a bug on our side; still a temporary failure
		// for the client (SMTP senders must retry).
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// Both: the caller's deadline passed, and for the client this is
		// a temporary failure.
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	// Connection errors, closed pools, network failures.
	return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
}

var sentinels = []error{
	store.ErrNotFound, store.ErrExists, store.ErrInvalidName, store.ErrNoSelect,
	store.ErrHasChildren, store.ErrOverQuota, store.ErrTooLarge, store.ErrLocked,
	store.ErrSpecialUse, store.ErrUnavailable, store.ErrClosed, store.ErrBadFlag,
	store.ErrCannotRename, store.ErrInboxSpecial, store.ErrTooManyItems,
	store.ErrNotStagedHere,
}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
