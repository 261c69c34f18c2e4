package embedded

import (
	"context"

	"github.com/skrytka/skrytka/internal/store"
)

// The maildrop lock lives in memory: this backend serves one node, and the
// lock must die with the process (RFC 1939 §8).

type lease struct {
	s      *Store
	acct   store.AccountID
	holder string
}

// LockMaildrop implements store.Store.
func (s *Store) LockMaildrop(ctx context.Context, acct store.AccountID, holder string) (store.Lease, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	if _, err := s.AccountByID(ctx, acct); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, held := s.locks[acct]; held {
		return nil, store.ErrLocked
	}
	l := &lease{s: s, acct: acct, holder: holder}
	s.locks[acct] = l
	return l, nil
}

// Refresh implements store.Lease.
func (l *lease) Refresh(ctx context.Context) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.locks[l.acct] != l {
		return store.ErrLocked
	}
	return nil
}

// Release implements store.Lease. Releasing twice is harmless.
func (l *lease) Release() error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.locks[l.acct] == l {
		delete(l.s.locks, l.acct)
	}
	return nil
}
