package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skrytka/skrytka/internal/store"
)

// The maildrop lock across nodes is a lease row in maildrop_leases: it
// names a random token and an expiry computed by the database's clock (so
// node clocks do not matter). Taking it succeeds when there is no row or
// the row has expired. The holding node refreshes it every LeaseTTL/3
// while the lease is held; Release deletes it. When a node dies its
// refreshes stop and the lease expires within LeaseTTL; when only the
// database connection of a node is lost, the lease may expire while the
// session still runs, and Refresh then reports ErrLocked so the front end
// can end the session (RFC 1939 §8 exclusivity is never silently broken
// by two live holders: the second can only take an expired lease).

type lease struct {
	s     *Store
	acct  store.AccountID
	token string

	mu       sync.Mutex
	released bool
	stop     chan struct{}
	done     chan struct{}
}

// LockMaildrop implements store.Store.
func (s *Store) LockMaildrop(ctx context.Context, acct store.AccountID, holder string) (store.Lease, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	if !storable(holder) {
		holder = strings.ToValidUTF8(strings.ReplaceAll(holder, "\x00", ""), "?")
	}
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	var got string
	err := s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO maildrop_leases (account_id, token, holder, expires_at)
			VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
			ON CONFLICT (account_id) DO UPDATE SET token = excluded.token, holder = excluded.holder, expires_at = excluded.expires_at
			WHERE maildrop_leases.expires_at < now()
			RETURNING token`, acct, token, holder, s.opts.LeaseTTL.Milliseconds()).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrLocked // a live lease exists
		}
		return err // an unknown account is a foreign key violation: ErrNotFound
	})
	if err != nil {
		return nil, err
	}
	l := &lease{s: s, acct: acct, token: token, stop: make(chan struct{}), done: make(chan struct{})}
	go l.keepAlive()
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.leases[l] = struct{}{}
	}
	s.mu.Unlock()
	if closed {
		l.release(context.Background())
		return nil, store.ErrClosed
	}
	return l, nil
}

// keepAlive refreshes the lease every LeaseTTL/3 until released.
func (l *lease) keepAlive() {
	defer close(l.done)
	every := l.s.opts.LeaseTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			err := l.Refresh(ctx)
			cancel()
			if errors.Is(err, store.ErrLocked) {
				l.s.log.Warn("postgres: maildrop lease lost", "account", int64(l.acct))
				return
			}
			if err != nil {
				l.s.log.Warn("postgres: maildrop lease refresh failed", "account", int64(l.acct), "err", err)
			}
		}
	}
}

// Refresh implements store.Lease: it extends the lease by LeaseTTL, or
// returns ErrLocked when the lease expired and was taken over, or released.
func (l *lease) Refresh(ctx context.Context) error {
	l.mu.Lock()
	released := l.released
	l.mu.Unlock()
	if released {
		return store.ErrLocked
	}
	tag, err := l.s.pool.Exec(ctx, `UPDATE maildrop_leases SET expires_at = now() + $3 * interval '1 millisecond'
		WHERE account_id = $1 AND token = $2`, l.acct, l.token, l.s.opts.LeaseTTL.Milliseconds())
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrLocked
	}
	return nil
}

// Release implements store.Lease. It is safe to call more than once.
func (l *lease) Release() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.s.opts.ConnectTimeout+l.s.opts.StatementTimeout)
	defer cancel()
	return l.release(ctx)
}

func (l *lease) release(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.mu.Unlock()
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	l.s.mu.Lock()
	delete(l.s.leases, l)
	l.s.mu.Unlock()
	_, err := l.s.pool.Exec(ctx, `DELETE FROM maildrop_leases WHERE account_id = $1 AND token = $2`, l.acct, l.token)
	// If the database is unreachable the lease expires on its own.
	return translate(err)
}
