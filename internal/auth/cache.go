package auth

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// Defaults of the verified-credentials cache (config keys auth.cache_ttl
// and auth.cache_size; docs/security.md weighs the trade-off).
const (
	DefaultCacheTTL  = time.Hour
	DefaultCacheSize = 10_000
)

// credCache remembers, per account, that a password was verified with
// argon2id, so that the same account logging in again with the same
// password costs an HMAC instead of an argon2id check.
//
// Invariants:
//   - It never holds a password, only digest = HMAC-SHA-256(key, account
//     id, address, stored PHC hash, password), with a random key drawn
//     once per process and never written anywhere.
//   - An entry is only ever added after a successful argon2id check of
//     exactly that password against exactly that stored hash.
//   - A hit needs the account as the store returns it now: same address,
//     id and stored hash (a changed password or a deleted account misses),
//     and a digest equal in constant time. Any miss falls back to
//     argon2id; a wrong password never removes an entry.
//   - Entries sit in a list in the order they were verified. With one TTL
//     for all, that is also the order in which they expire, so expired
//     entries are dropped from the front, and when the cache is full the
//     entry closest to expiry goes first. An entry does not outlive its
//     TTL by more than the sweep timer's slack.
//   - Concurrent checks of the same account with the same password share
//     one argon2id run (flights), but only a success is shared: a wrong
//     password always pays its own full argon2id check.
type credCache struct {
	key [32]byte
	ttl time.Duration
	max int
	now func() time.Time
	mu  sync.Mutex
	// byAddr indexes fifo by canonical address (as the store returns it).
	byAddr map[string]*list.Element // of *cacheEntry
	fifo   list.List                // front: verified longest ago
	// flights are argon2id checks in progress, by account and digest.
	flights map[flightKey]*flight
	timer   *time.Timer // sweeps expired entries on a quiet server
}

type cacheEntry struct {
	addr    string
	id      store.AccountID
	hash    string // the stored PHC hash the password was verified against
	digest  [sha256.Size]byte
	expires time.Time
}

type flightKey struct {
	id     store.AccountID
	digest [sha256.Size]byte
}

// flight is one argon2id check others may wait for. ok is set before
// done is closed.
type flight struct {
	done chan struct{}
	ok   bool
}

func newCredCache(ttl time.Duration, size int, now func() time.Time) *credCache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	c := &credCache{
		ttl:     ttl,
		max:     size,
		now:     now,
		byAddr:  make(map[string]*list.Element),
		flights: make(map[flightKey]*flight),
	}
	// crypto/rand.Read does not fail (it crashes the program if the
	// system's generator is unusable).
	rand.Read(c.key[:])
	return c
}

// digest binds the password to the account and to the hash it is checked
// against, so the same password of two accounts gives unrelated digests
// and a new hash never matches an old digest.
func (c *credCache) digest(acct store.Account, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key[:])
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], uint64(acct.ID))
	m.Write(id[:])
	// Length prefixes keep the fields apart whatever they contain; the
	// password comes last.
	var n [4]byte
	for _, s := range []string{acct.Address, acct.PasswordHash} {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	m.Write([]byte(password))
	var d [sha256.Size]byte
	m.Sum(d[:0])
	return d
}

// lookup reports whether acct (as just read from the store) was verified
// with the password whose digest is d, within the TTL. On a miss it
// returns the flight for (acct, d): lead is true if the caller must run
// the check and call land; otherwise it may wait on f.done. Both happen
// under one lock, so a check that lands between them cannot be missed.
func (c *credCache) lookup(acct store.Account, d [sha256.Size]byte) (hit bool, f *flight, lead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweepLocked(now)
	if el := c.byAddr[acct.Address]; el != nil {
		e := el.Value.(*cacheEntry)
		if e.id != acct.ID || e.hash != acct.PasswordHash || !now.Before(e.expires) {
			// The password was changed or the account replaced: the
			// entry can never match again.
			c.removeLocked(el)
		} else if hmac.Equal(e.digest[:], d[:]) {
			return true, nil, false
		}
	}
	k := flightKey{acct.ID, d}
	if f := c.flights[k]; f != nil {
		return false, f, false
	}
	f = &flight{done: make(chan struct{})}
	c.flights[k] = f
	return false, f, true
}

// forget drops what the cache holds for a canonical address (e.g. the
// store no longer knows it).
func (c *credCache) forget(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.byAddr[addr]; el != nil {
		c.removeLocked(el)
	}
}

// land ends a flight the caller leads with the result of its check and,
// on success, remembers the verified password.
func (c *credCache) land(f *flight, acct store.Account, d [sha256.Size]byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.flights, flightKey{acct.ID, d})
	f.ok = ok
	close(f.done)
	if ok {
		c.putLocked(acct, d)
	}
}

func (c *credCache) putLocked(acct store.Account, d [sha256.Size]byte) {
	now := c.now()
	c.sweepLocked(now)
	if el := c.byAddr[acct.Address]; el != nil {
		c.removeLocked(el)
	}
	for c.fifo.Len() >= c.max {
		c.removeLocked(c.fifo.Front())
	}
	e := &cacheEntry{addr: acct.Address, id: acct.ID, hash: acct.PasswordHash, digest: d, expires: now.Add(c.ttl)}
	c.byAddr[acct.Address] = c.fifo.PushBack(e)
	if c.timer == nil {
		c.timer = time.AfterFunc(c.ttl, c.sweep)
	}
}

// sweep runs from the timer: drop expired entries, then sleep until the
// next one expires (or until something is added).
func (c *credCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweepLocked(now)
	c.timer = nil
	if front := c.fifo.Front(); front != nil {
		wait := max(front.Value.(*cacheEntry).expires.Sub(now), time.Second)
		c.timer = time.AfterFunc(wait, c.sweep)
	}
}

func (c *credCache) sweepLocked(now time.Time) {
	for el := c.fifo.Front(); el != nil; el = c.fifo.Front() {
		if now.Before(el.Value.(*cacheEntry).expires) {
			return
		}
		c.removeLocked(el)
	}
}

// removeLocked drops an entry and wipes its digest (the garbage collector
// does not clear freed memory).
func (c *credCache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.fifo.Remove(el)
	delete(c.byAddr, e.addr)
	clear(e.digest[:])
}

// len returns the number of entries (for tests).
func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fifo.Len()
}
