package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

// newCachedAuth is newAuth with the credentials cache on (1h, 100
// entries) and the Store exposed.
func newCachedAuth(t *testing.T, clk *fakeClock) (*auth.Authenticator, store.Store) {
	t.Helper()
	st := newStore(t)
	return &auth.Authenticator{
		Store:     st,
		Throttle:  auth.Throttle{Delay: time.Second, MaxDelay: time.Minute, Window: 15 * time.Minute},
		CacheTTL:  time.Hour,
		CacheSize: 100,
		Now:       clk.Now,
		Sleep:     clk.Sleep,
	}, st
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// login authenticates and fails the test on error.
func login(t *testing.T, a *auth.Authenticator, remote, address, pw string) {
	t.Helper()
	if _, err := a.Authenticate(context.Background(), remote, address, pw); err != nil {
		t.Fatalf("login %s from %s: %v", address, remote, err)
	}
}

// checksDuring returns how many argon2id checks f caused.
func checksDuring(a *auth.Authenticator, f func()) int64 {
	before := auth.Argon2Checks(a)
	f()
	return auth.Argon2Checks(a) - before
}

// TestCacheSkipsArgon2: with a real production hash, the second login
// with the same password runs no argon2id; a wrong password always does,
// is counted by the throttle and does not evict the entry.
func TestCacheSkipsArgon2(t *testing.T) {
	clk := newClock()
	a, st := newCachedAuth(t, clk)
	ctx := context.Background()
	acct, _ := st.Account(ctx, user)
	real, err := auth.HashPassword(password) // m=19 MiB, t=2, p=1
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPasswordHash(ctx, acct.ID, real); err != nil {
		t.Fatal(err)
	}
	if n := checksDuring(a, func() { login(t, a, "192.0.2.1", user, password) }); n != 1 {
		t.Fatalf("first login ran %d argon2id checks, want 1", n)
	}
	for _, addr := range []string{user, "Alice@Example.ORG", " alice@example.org"} {
		if n := checksDuring(a, func() { login(t, a, "192.0.2.2", addr, password) }); n != 0 {
			t.Fatalf("cached login as %q ran %d argon2id checks, want 0", addr, n)
		}
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("successful logins waited %v", w)
	}

	// Wrong passwords: each pays a full check and a throttle failure.
	for i, pw := range []string{"wrong", password + " ", password[:len(password)-1], ""} {
		n := checksDuring(a, func() {
			if _, err := a.Authenticate(ctx, "192.0.2.3", user, pw); !errors.Is(err, auth.ErrFailed) {
				t.Fatalf("wrong password %q: %v", pw, err)
			}
		})
		if n != 1 {
			t.Fatalf("wrong password %q ran %d argon2id checks, want 1", pw, n)
		}
		if ws := clk.takeWaits(); i > 0 && sum(ws) == 0 {
			t.Fatalf("wrong password %d was not delayed by the earlier failures", i)
		}
	}
	// The right password is still cached (a guess cannot evict it), but
	// it waits like any attempt on an account with failures.
	if n := checksDuring(a, func() { login(t, a, "192.0.2.4", user, password) }); n != 0 {
		t.Fatalf("login after wrong guesses ran %d checks, want 0", n)
	}
	if w := sum(clk.takeWaits()); w == 0 {
		t.Fatal("a cache hit skipped the throttle of an account with failures")
	}
}

// TestCachePasswordChange: after SetPasswordHash the old password fails at
// once, with a full check, and the new one works.
func TestCachePasswordChange(t *testing.T) {
	a, st := newCachedAuth(t, newClock())
	ctx := context.Background()
	login(t, a, "192.0.2.1", user, password)
	login(t, a, "192.0.2.1", user, password)
	acct, _ := st.Account(ctx, user)
	if err := st.SetPasswordHash(ctx, acct.ID, cheapHash("a new password")); err != nil {
		t.Fatal(err)
	}
	n := checksDuring(a, func() {
		if _, err := a.Authenticate(ctx, "192.0.2.1", user, password); !errors.Is(err, auth.ErrFailed) {
			t.Fatalf("old password after change: %v, want ErrFailed", err)
		}
	})
	if n != 1 {
		t.Fatalf("old password after change ran %d checks, want 1", n)
	}
	if n := checksDuring(a, func() { login(t, a, "192.0.2.1", user, "a new password") }); n != 1 {
		t.Fatalf("new password ran %d checks, want 1", n)
	}
	if n := checksDuring(a, func() { login(t, a, "192.0.2.1", user, "a new password") }); n != 0 {
		t.Fatalf("new password again ran %d checks, want 0", n)
	}
	// Changing back to the very same hash string (an admin restoring it)
	// is the same password: it may hit again.
	if err := st.SetPasswordHash(ctx, acct.ID, cheapHash(password)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "192.0.2.1", user, "a new password"); !errors.Is(err, auth.ErrFailed) {
		t.Fatalf("replaced password: %v, want ErrFailed", err)
	}
}

// TestCacheAccountDeleted: a deleted account fails at once; re-created
// under the same address with the same hash, it is a new account and
// pays a full check.
func TestCacheAccountDeleted(t *testing.T) {
	a, st := newCachedAuth(t, newClock())
	ctx := context.Background()
	login(t, a, "192.0.2.1", user, password)
	if auth.CacheLen(a) != 1 {
		t.Fatalf("cache holds %d entries, want 1", auth.CacheLen(a))
	}
	acct, _ := st.Account(ctx, user)
	if err := st.DeleteAccount(ctx, acct.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "192.0.2.1", user, password); !errors.Is(err, auth.ErrFailed) {
		t.Fatalf("deleted account: %v, want ErrFailed", err)
	}
	if auth.CacheLen(a) != 0 {
		t.Fatalf("deleted account still cached (%d entries)", auth.CacheLen(a))
	}
	if _, err := st.CreateAccount(ctx, user, acct.PasswordHash); err != nil {
		t.Fatal(err)
	}
	if n := checksDuring(a, func() { login(t, a, "192.0.2.1", user, password) }); n != 1 {
		t.Fatalf("re-created account ran %d checks, want 1", n)
	}
}

// TestCacheTTLAndSize: entries expire after the TTL (the Authenticator's
// clock), the oldest goes first when the cache is full, and CacheTTL 0
// turns the cache off.
func TestCacheTTLAndSize(t *testing.T) {
	clk := newClock()
	a, st := newCachedAuth(t, clk)
	a.CacheSize = 2
	ctx := context.Background()
	for _, u := range []string{"bob@example.org", "carol@example.org"} {
		if _, err := st.CreateAccount(ctx, u, cheapHash(password)); err != nil {
			t.Fatal(err)
		}
	}
	login(t, a, "192.0.2.1", user, password)
	clk.Advance(59 * time.Minute)
	if n := checksDuring(a, func() { login(t, a, "192.0.2.1", user, password) }); n != 0 {
		t.Fatalf("login within the TTL ran %d checks", n)
	}
	clk.Advance(time.Minute)
	if n := checksDuring(a, func() { login(t, a, "192.0.2.1", user, password) }); n != 1 {
		t.Fatalf("login after the TTL ran %d checks, want 1", n)
	}
	// A hit does not extend the TTL: one full check per TTL.
	clk.Advance(30 * time.Minute)
	login(t, a, "192.0.2.1", user, password)
	clk.Advance(30 * time.Minute)
	if n := checksDuring(a, func() { login(t, a, "192.0.2.1", user, password) }); n != 1 {
		t.Fatalf("TTL extended by a hit: %d checks, want 1", n)
	}

	// Size 2: alice (oldest), bob, then carol pushes alice out.
	login(t, a, "192.0.2.1", "bob@example.org", password)
	login(t, a, "192.0.2.1", "carol@example.org", password)
	if auth.CacheLen(a) != 2 {
		t.Fatalf("cache holds %d entries, want 2", auth.CacheLen(a))
	}
	if n := checksDuring(a, func() { login(t, a, "192.0.2.1", "bob@example.org", password) }); n != 0 {
		t.Fatalf("bob ran %d checks, want 0", n)
	}
	if n := checksDuring(a, func() { login(t, a, "192.0.2.1", user, password) }); n != 1 {
		t.Fatalf("evicted alice ran %d checks, want 1", n)
	}

	off := &auth.Authenticator{Store: st, Now: clk.Now, Sleep: clk.Sleep}
	for range 3 {
		if n := checksDuring(off, func() { login(t, off, "192.0.2.1", user, password) }); n != 1 {
			t.Fatalf("cache off: login ran %d checks, want 1", n)
		}
	}
}

// TestCacheParallelSameAccount: a client opening 32 connections at once
// with the right password is not delayed, and the 32 logins cost one
// argon2id check together (the others share its success or hit the
// cache). The same wrong password in parallel is not shared: every
// attempt the throttle lets through pays its own check and fails.
func TestCacheParallelSameAccount(t *testing.T) {
	clk := newClock()
	a, _ := newCachedAuth(t, clk)
	a.MaxConcurrent = 4
	const n = 32
	run := func(pw string) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = a.Authenticate(context.Background(), "192.0.2.10", user, pw)
			})
		}
		wg.Wait()
		return errs
	}
	checks := checksDuring(a, func() {
		for i, err := range run(password) {
			if err != nil {
				t.Fatalf("login %d: %v", i, err)
			}
		}
	})
	if checks != 1 {
		t.Fatalf("%d parallel logins ran %d argon2id checks, want 1", n, checks)
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("parallel correct logins waited %v in total", w)
	}

	var errs []error
	checks = checksDuring(a, func() { errs = run("the same wrong guess") })
	checked := 0
	for _, err := range errs {
		if !errors.Is(err, auth.ErrFailed) {
			t.Fatalf("wrong guess: %v", err)
		}
		if !errors.Is(err, auth.ErrThrottled) {
			checked++
		}
	}
	if checks != int64(checked) || checked == 0 {
		t.Fatalf("%d wrong guesses were checked but %d argon2id checks ran", checked, checks)
	}
	if w := sum(clk.takeWaits()); w == 0 {
		t.Fatal("parallel wrong guesses were not delayed by the throttle")
	}
}

// TestCacheManyConnections: 5,000 connections (1,000 under -race) of 50
// accounts logging in 32 at a time, all with the right password: nothing waits, nothing
// fails, and each account costs one argon2id check.
func TestCacheManyConnections(t *testing.T) {
	clk := newClock()
	a, st := newCachedAuth(t, clk)
	ctx := context.Background()
	const accounts, batch = 50, 32
	conns := 5000
	if raceEnabled {
		conns = 1000
	}
	users := make([]string, accounts)
	for i := range users {
		users[i] = fmt.Sprintf("user%02d@example.org", i)
		if _, err := st.CreateAccount(ctx, users[i], cheapHash("pw-"+users[i])); err != nil {
			t.Fatal(err)
		}
	}
	next := make(chan int)
	go func() {
		for i := range conns {
			next <- i
		}
		close(next)
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	checks := checksDuring(a, func() {
		for range batch {
			wg.Go(func() {
				for i := range next {
					u := users[i%accounts]
					if _, err := a.Authenticate(ctx, "127.0.0.1", u, "pw-"+u); err != nil {
						mu.Lock()
						failures = append(failures, err)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
	})
	if len(failures) > 0 {
		t.Fatalf("%d of %d logins failed, first: %v", len(failures), conns, failures[0])
	}
	if checks != accounts {
		t.Fatalf("%d logins of %d accounts ran %d argon2id checks, want %d", conns, accounts, checks, accounts)
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("correct logins waited %v in total", w)
	}
}

// TestCacheAfterOneFailure: one failed login slows exactly what
// docs/security.md says (the next attempt for that account, and from that
// address, by failure_delay) and nothing else; the cache neither skips
// that delay nor makes the failure cheaper.
func TestCacheAfterOneFailure(t *testing.T) {
	clk := newClock()
	a, st := newCachedAuth(t, clk)
	ctx := context.Background()
	if _, err := st.CreateAccount(ctx, "bob@example.org", cheapHash("bob's password")); err != nil {
		t.Fatal(err)
	}
	login(t, a, "198.51.100.1", user, password)
	login(t, a, "198.51.100.2", "bob@example.org", "bob's password")

	attacker := "203.0.113.9"
	n := checksDuring(a, func() {
		if _, err := a.Authenticate(ctx, attacker, user, "guess"); !errors.Is(err, auth.ErrFailed) {
			t.Fatalf("guess: %v", err)
		}
	})
	if n != 1 {
		t.Fatalf("failed login ran %d checks, want 1", n)
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("first failure waited %v", w)
	}

	// Another account from another address: not slowed, still cached.
	if n := checksDuring(a, func() { login(t, a, "198.51.100.2", "bob@example.org", "bob's password") }); n != 0 {
		t.Fatalf("bob ran %d checks", n)
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("bob waited %v after alice's failure", w)
	}
	// The failing account, from the real user's address: waits the
	// failure_delay owed since the failure, is then served from the
	// cache, and the success clears the account.
	if n := checksDuring(a, func() { login(t, a, "198.51.100.1", user, password) }); n != 0 {
		t.Fatalf("alice ran %d checks", n)
	}
	if w := sum(clk.takeWaits()); w != time.Second {
		t.Fatalf("alice waited %v after one failure, want 1s", w)
	}
	login(t, a, "198.51.100.1", user, password)
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("alice still waits %v after a success", w)
	}

	// A second failure from the same address: that address now owes 2s,
	// also for another account; bob from elsewhere owes nothing.
	a.Authenticate(ctx, attacker, user, "guess 2")
	clk.takeWaits()
	login(t, a, "198.51.100.2", "bob@example.org", "bob's password")
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("bob waited %v after the attacker's second failure", w)
	}
	if n := checksDuring(a, func() { login(t, a, attacker, "bob@example.org", "bob's password") }); n != 0 {
		t.Fatalf("bob from the attacker's address ran %d checks", n)
	}
	if w := sum(clk.takeWaits()); w != 2*time.Second {
		t.Fatalf("the failing address waited %v, want 2s", w)
	}
}

// TestCacheTrustedAnyRemote: a cache hit needs nothing from the client but
// the password: the remote address plays no part in the digest.
func TestCacheTrustedAnyRemote(t *testing.T) {
	a, _ := newCachedAuth(t, newClock())
	a.Trusted = []netip.Prefix{}
	login(t, a, "127.0.0.1", user, password)
	if n := checksDuring(a, func() { login(t, a, "[2001:db8::1]:993", user, password) }); n != 0 {
		t.Fatalf("other remote ran %d checks", n)
	}
}

var benchSink store.Account

func benchAuth(b *testing.B, ttl time.Duration) *auth.Authenticator {
	b.Helper()
	st, err := embedded.Open(context.Background(), b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	h, err := auth.HashPassword(password) // production parameters
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateAccount(context.Background(), user, h); err != nil {
		b.Fatal(err)
	}
	return &auth.Authenticator{Store: st, CacheTTL: ttl}
}

func benchLogin(b *testing.B, a *auth.Authenticator) {
	acct, err := a.Authenticate(context.Background(), "127.0.0.1", user, password)
	if err != nil {
		b.Fatal(err)
	}
	benchSink = acct
}

// BenchmarkAuthenticate compares a login that runs argon2id (cache off)
// with one served from the cache, sequential and parallel.
func BenchmarkAuthenticate(b *testing.B) {
	b.Run("cold", func(b *testing.B) {
		a := benchAuth(b, 0)
		for b.Loop() {
			benchLogin(b, a)
		}
	})
	b.Run("cached", func(b *testing.B) {
		a := benchAuth(b, time.Hour)
		benchLogin(b, a)
		for b.Loop() {
			benchLogin(b, a)
		}
	})
	b.Run("cold-parallel", func(b *testing.B) {
		a := benchAuth(b, 0)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				benchLogin(b, a)
			}
		})
	})
	b.Run("cached-parallel", func(b *testing.B) {
		a := benchAuth(b, time.Hour)
		benchLogin(b, a)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				benchLogin(b, a)
			}
		})
	})
}
