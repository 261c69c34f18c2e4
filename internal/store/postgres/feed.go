package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skrytka/skrytka/internal/store"
)

// notifyChannel is the LISTEN/NOTIFY channel every node uses.
const notifyChannel = "skrytka_changes"

// maxPayload keeps NOTIFY payloads under PostgreSQL's 8000-byte limit;
// a change whose UID list does not fit is sent without UIDs (a Change is
// a hint: the session re-reads with Changes).
const maxPayload = 7000

// Listener timings.
const (
	listenPing       = 30 * time.Second // idle time before a liveness ping
	barrierWait      = 3 * time.Second  // Subscribe waits this long for its barrier
	reconnectBackoff = 5 * time.Second  // longest pause between reconnects
)

// encodeChange renders c as "c KIND ACCT MBOX MODSEQ UIDS" (UIDS as
// "1:3,7", possibly empty).
func encodeChange(c store.Change) string {
	p := fmt.Sprintf("c %d %d %d %d ", c.Kind, c.Account, c.Mailbox, c.ModSeq)
	var b strings.Builder
	b.WriteString(p)
	set := store.UIDSetOf(c.UIDs...)
	for i, r := range set {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(r.Start), 10))
		if r.Stop != r.Start {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(r.Stop), 10))
		}
		if b.Len() > maxPayload {
			return p
		}
	}
	return b.String()
}

func decodeChange(s string) (store.Change, error) {
	f := strings.SplitN(s, " ", 6)
	if len(f) != 6 || f[0] != "c" {
		return store.Change{}, fmt.Errorf("bad change payload %q", s)
	}
	var n [4]uint64
	for i := range n {
		v, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return store.Change{}, fmt.Errorf("bad change payload %q", s)
		}
		n[i] = v
	}
	c := store.Change{Kind: store.ChangeKind(n[0]), Account: store.AccountID(n[1]), Mailbox: store.MailboxID(n[2]), ModSeq: store.ModSeq(n[3])}
	if f[5] != "" {
		for _, r := range strings.Split(f[5], ",") {
			lo, hi, _ := strings.Cut(r, ":")
			a, err := strconv.ParseUint(lo, 10, 32)
			if err != nil {
				return store.Change{}, fmt.Errorf("bad change payload %q", s)
			}
			b := a
			if hi != "" {
				if b, err = strconv.ParseUint(hi, 10, 32); err != nil || b < a {
					return store.Change{}, fmt.Errorf("bad change payload %q", s)
				}
			}
			for u := a; u <= b; u++ {
				c.UIDs = append(c.UIDs, store.UID(u))
			}
		}
	}
	return c, nil
}

// listener owns the LISTEN connection and publishes what it hears into
// the store's Hub, in the order PostgreSQL delivers it (commit order).
//
// When the connection drops it reconnects with backoff and then sends a
// ChangeOverflow to every account with local subscribers: notifications
// sent while it was away are lost, and the overflow makes each session
// resync from the store by ModSeq, so no change goes unseen.
//
// Subscribe uses a barrier: it NOTIFYs a token and the subscription is
// registered by the listener when the token comes back, so a new
// subscriber sees exactly the changes committed after its barrier, and
// none from before.
type listener struct {
	s    *Store
	cfg  *pgx.ConnConfig
	node string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	seq     uint64
	waiters map[uint64]*barrier
	accts   map[store.AccountID]int // live local subscriptions per account
	conn    *pgx.Conn               // for tests: the current LISTEN connection
}

type barrier struct {
	acct store.AccountID
	sub  store.Subscription // set by the listener
	err  error
	done chan struct{}
	gone bool // Subscribe gave up waiting
}

func newListener(s *Store, cfg *pgx.ConnConfig) *listener {
	var b [8]byte
	rand.Read(b[:])
	return &listener{
		s:       s,
		cfg:     cfg,
		node:    hex.EncodeToString(b[:]),
		waiters: map[uint64]*barrier{},
		accts:   map[store.AccountID]int{},
		done:    make(chan struct{}),
	}
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

// start connects (the database must be up at Open) and runs the loop.
func (l *listener) start(ctx context.Context) error {
	c, err := l.connect(ctx)
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", translate(err))
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.mu.Lock()
	l.conn = c
	l.mu.Unlock()
	go l.run(c)
	return nil
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}

func (l *listener) run(c *pgx.Conn) {
	defer close(l.done)
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	backoff := 100 * time.Millisecond
	for {
		if c == nil {
			var err error
			cctx, cancel := context.WithTimeout(l.ctx, l.s.opts.ConnectTimeout)
			c, err = l.connect(cctx)
			cancel()
			if err != nil {
				c = nil
				if l.ctx.Err() != nil {
					return
				}
				l.s.log.Warn("postgres: change listener reconnect failed", "err", err)
				select {
				case <-l.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, reconnectBackoff)
				continue
			}
			backoff = 100 * time.Millisecond
			l.mu.Lock()
			l.conn = c
			l.mu.Unlock()
			l.s.log.Info("postgres: change listener reconnected")
			l.resync()
		}
		wctx, cancel := context.WithTimeout(l.ctx, listenPing)
		n, err := c.WaitForNotification(wctx)
		cancel()
		if err == nil {
			l.handle(n.Payload)
			continue
		}
		if l.ctx.Err() != nil {
			return
		}
		if errors.Is(err, context.DeadlineExceeded) && !c.IsClosed() {
			pctx, cancel := context.WithTimeout(l.ctx, l.s.opts.ConnectTimeout)
			err = c.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		l.s.log.Warn("postgres: change listener lost its connection", "err", err)
		c.Close(context.Background())
		c = nil
	}
}

// resync tells every local subscriber to resync (its notifications may
// have been lost while the connection was down) and releases pending
// barriers.
func (l *listener) resync() {
	l.mu.Lock()
	accts := make([]store.AccountID, 0, len(l.accts))
	for a := range l.accts {
		accts = append(accts, a)
	}
	waiting := l.waiters
	l.waiters = map[uint64]*barrier{}
	for _, b := range waiting {
		l.complete(b)
	}
	l.mu.Unlock()
	for _, a := range accts {
		l.s.hub.Publish(store.Change{Kind: store.ChangeOverflow, Account: a})
	}
}

// complete registers b's subscription now; called with l.mu held.
func (l *listener) complete(b *barrier) {
	if b.gone {
		return
	}
	b.sub, b.err = l.subscribe(b.acct)
	close(b.done)
}

func (l *listener) handle(payload string) {
	if strings.HasPrefix(payload, "b ") {
		f := strings.Fields(payload)
		if len(f) != 3 || f[1] != l.node {
			return
		}
		seq, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return
		}
		l.mu.Lock()
		if b, ok := l.waiters[seq]; ok {
			delete(l.waiters, seq)
			l.complete(b)
		}
		l.mu.Unlock()
		return
	}
	c, err := decodeChange(payload)
	if err != nil {
		l.s.log.Warn("postgres: ignoring change notification", "err", err)
		return
	}
	l.s.hub.Publish(c)
}

// subscribe registers a hub subscription and counts it; called with l.mu
// held.
func (l *listener) subscribe(acct store.AccountID) (store.Subscription, error) {
	sub, err := l.s.hub.Subscribe(acct)
	if err != nil {
		return nil, err
	}
	l.accts[acct]++
	return &countedSub{Subscription: sub, l: l, acct: acct}, nil
}

type countedSub struct {
	store.Subscription
	l    *listener
	acct store.AccountID
	once sync.Once
}

func (c *countedSub) Close() {
	c.once.Do(func() {
		c.Subscription.Close()
		c.l.mu.Lock()
		if c.l.accts[c.acct]--; c.l.accts[c.acct] <= 0 {
			delete(c.l.accts, c.acct)
		}
		c.l.mu.Unlock()
	})
}

// Subscribe implements store.Store. The subscription starts at a barrier
// (see listener): changes committed before Subscribe are not delivered,
// changes committed after it are. If the barrier does not come back in
// time (the database is unreachable), the subscription starts at once;
// the reconnecting listener then sends it a ChangeOverflow.
func (s *Store) Subscribe(ctx context.Context, acct store.AccountID) (store.Subscription, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	l := s.feed
	b := &barrier{acct: acct, done: make(chan struct{})}
	l.mu.Lock()
	l.seq++
	seq := l.seq
	l.waiters[seq] = b
	l.mu.Unlock()
	err := s.lazyCommit(ctx, func(b *pgx.Batch) func(pgx.BatchResults) error {
		b.Queue(`SELECT pg_notify('`+notifyChannel+`', $1)`, fmt.Sprintf("b %s %d", l.node, seq))
		return func(br pgx.BatchResults) error { _, err := br.Exec(); return err }
	})
	if err == nil {
		t := time.NewTimer(barrierWait)
		defer t.Stop()
		select {
		case <-b.done:
			return b.sub, b.err
		case <-t.C:
		case <-ctx.Done():
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-b.done:
		return b.sub, b.err
	default:
	}
	b.gone = true
	delete(l.waiters, seq)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return l.subscribe(acct)
}
