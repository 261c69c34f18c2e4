// Package auth checks passwords for every protocol front end: argon2id
// hashing in PHC string format, constant-time verification, the shared
// throttling of failed logins (per remote address and per account), and an
// in-memory cache of recently verified passwords (keyed digests, never the
// passwords) so that clients logging in again and again do not pay
// argon2id each time (cache.go).
//
// Invariant: every attempt passes the throttle before its password is
// looked at, whether the cache or argon2id answers it, and a wrong
// password always costs a full argon2id check.
//
// It depends on package store for account lookup only; it knows no wire
// protocol. Front ends turn ErrFailed into their own reply.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/skrytka/skrytka/internal/store"
)

// ErrFailed is returned for a wrong address or password. It never says
// which of the two was wrong.
var ErrFailed = errors.New("auth: authentication failed")

// Argon2id parameters (RFC 9106 §4, second recommended option: 64 MiB is
// too much for a server facing many logins, so memory is 19 MiB with t=2,
// the OWASP minimum configuration for argon2id).
const (
	argonTime    = 2
	argonMemKiB  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// HashPassword returns a PHC-format argon2id hash of password.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches a hash made by
// HashPassword (with whatever parameters the hash records).
func VerifyPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var mem, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil || t == 0 || p == 0 || mem > 1<<21 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, mem, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// ErrThrottled is returned, without checking the password, when too many
// failed attempts for the account or from the address are pending (see
// Throttle). It matches ErrFailed under errors.Is, so front ends that only
// know ErrFailed treat it as a failed login.
var ErrThrottled = fmt.Errorf("%w: too many failed attempts, try later", ErrFailed)

// Authenticator checks credentials against the store and throttles failed
// attempts. Set the fields before first use and don't change them later;
// the zero value of every field but Store is usable. An Authenticator must
// not be copied after first use.
type Authenticator struct {
	Store store.Store
	// Throttle sets the delays after failures (zero: defaults).
	Throttle Throttle
	// Trusted networks are exempt from per-address throttling (not from
	// per-account throttling). nil means DefaultTrusted (loopback); an
	// empty non-nil slice trusts nobody.
	Trusted []netip.Prefix
	// Logger gets one line per authentication result (remote, user,
	// result, never the password). nil: no log lines.
	Logger *slog.Logger
	// MaxConcurrent bounds password checks running at once (each argon2id
	// check uses 19 MiB). 0 means 4 per CPU.
	MaxConcurrent int
	// CacheTTL is how long a password verified with argon2id is
	// remembered, as a keyed digest, so that the same account logging in
	// again with the same password skips argon2id (see cache.go and
	// docs/security.md). 0 turns the cache off. Throttling is the same
	// with or without it.
	CacheTTL time.Duration
	// CacheSize bounds the accounts remembered; when full, the entry
	// closest to expiry is dropped. 0 means DefaultCacheSize.
	CacheSize int
	// Now and Sleep replace the clock and the wait in tests. nil: the real
	// ones. Sleep must return ctx.Err() if ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	mu        sync.Mutex
	buckets   map[string]*bucket
	waiters   map[*waiter]struct{} // attempts waiting in the throttle queue
	semOnce   sync.Once
	sem       chan struct{}
	cacheOnce sync.Once
	cache     *credCache   // nil when CacheTTL is 0
	verified  atomic.Int64 // argon2id checks run (for tests)
}

// Authenticate checks address and password and returns the account.
// remote is the client's IP address, with or without a port (for
// throttling and logs). Failures return ErrFailed (or ErrThrottled, which
// wraps it) and never say whether the address exists; other errors are
// the store's (e.g. store.ErrUnavailable) or ctx's.
func (a *Authenticator) Authenticate(ctx context.Context, remote, address, password string) (store.Account, error) {
	keys := a.keys(remote, address)
	// Admission happens while holding a check slot, so it sees the
	// outcome of every attempt that was checked before it.
	if err := a.acquire(ctx); err != nil {
		return store.Account{}, err
	}
	wait, ok := a.admit(keys, a.now())
	if !ok {
		a.release()
		a.log(ctx, remote, address, "throttled", wait)
		return store.Account{}, ErrThrottled
	}
	var acct store.Account
	var err error
	if wait > 0 {
		// Don't hold a slot while waiting.
		a.release()
		if err = a.wait(ctx, keys, wait); err == nil {
			err = a.acquire(ctx)
		}
		if err != nil {
			a.done(keys, a.now(), neutral)
			return store.Account{}, err
		}
	}
	acct, err = a.check(ctx, address, password)
	a.release()
	switch {
	case err == nil:
		a.done(keys, a.now(), succeeded)
		a.log(ctx, remote, acct.Address, "ok", wait)
		return acct, nil
	case errors.Is(err, ErrFailed):
		a.done(keys, a.now(), failed)
		a.log(ctx, remote, address, "fail", wait)
		return store.Account{}, err
	default:
		// Not the client's fault: not counted as a failure.
		a.done(keys, a.now(), neutral)
		return store.Account{}, err
	}
}

// acquire takes one of the MaxConcurrent password-check slots.
func (a *Authenticator) acquire(ctx context.Context) error {
	a.semOnce.Do(func() {
		n := a.MaxConcurrent
		if n <= 0 {
			n = 4 * runtime.GOMAXPROCS(0)
		}
		a.sem = make(chan struct{}, n)
	})
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Authenticator) release() { <-a.sem }

// check verifies the password; the caller holds a slot, and the attempt
// has been admitted by the throttle (a cache hit is only a faster check,
// never a way around the throttle).
func (a *Authenticator) check(ctx context.Context, address, password string) (store.Account, error) {
	acct, err := a.Store.Account(ctx, address)
	c := a.credCache()
	if errors.Is(err, store.ErrNotFound) {
		if c != nil {
			c.forget(strings.ToLower(strings.TrimSpace(address)))
		}
		// Spend the same time as a real check so that timing does not
		// reveal which addresses exist.
		a.verify(dummyHash, password)
		return store.Account{}, ErrFailed
	}
	if err != nil {
		return store.Account{}, err
	}
	if c == nil {
		if !a.verify(acct.PasswordHash, password) {
			return store.Account{}, ErrFailed
		}
		return acct, nil
	}
	d := c.digest(acct, password)
	hit, f, lead := c.lookup(acct, d)
	if hit {
		return acct, nil
	}
	if !lead {
		// The same password for the same stored hash is being checked
		// right now: share its success. A failure is not shared, so a
		// wrong password still costs its own full check below.
		select {
		case <-f.done:
		case <-ctx.Done():
			return store.Account{}, ctx.Err()
		}
		if f.ok {
			return acct, nil
		}
		if !a.verify(acct.PasswordHash, password) {
			return store.Account{}, ErrFailed
		}
		return acct, nil
	}
	ok := false
	defer func() { c.land(f, acct, d, ok) }()
	ok = a.verify(acct.PasswordHash, password)
	if !ok {
		return store.Account{}, ErrFailed
	}
	return acct, nil
}

// verify runs argon2id and counts it.
func (a *Authenticator) verify(hash, password string) bool {
	a.verified.Add(1)
	return VerifyPassword(hash, password)
}

// credCache returns the verified-credentials cache, or nil if it is off.
func (a *Authenticator) credCache() *credCache {
	a.cacheOnce.Do(func() {
		if a.CacheTTL > 0 {
			a.cache = newCredCache(a.CacheTTL, a.CacheSize, a.now)
		}
	})
	return a.cache
}

func (a *Authenticator) log(ctx context.Context, remote, user, result string, wait time.Duration) {
	if a.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if result != "ok" {
		level = slog.LevelWarn
	}
	a.Logger.Log(ctx, level, "auth", "remote", remote, "user", user, "result", result, "wait", wait)
}

// dummyHash is checked for unknown accounts so that they cost as much as
// known ones. Only its parameters matter (no password matches it), so it is
// a constant with our parameters rather than a hash made at start-up, which
// would run argon2id in every process start and CLI command.
var dummyHash = fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemKiB, argonTime, argonThreads,
	"c2tyeXRrYS1kdW1teS1zYWx0", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
