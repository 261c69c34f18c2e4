package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

const (
	user     = "alice@example.org"
	password = "correct horse battery"
)

func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := embedded.Open(context.Background(), t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateAccount(context.Background(), user, cheapHash(password)); err != nil {
		t.Fatal(err)
	}
	return st
}

// cheapHash is a valid argon2id PHC hash with tiny parameters, so that
// the many checks of these tests stay fast under -race. VerifyPassword
// honours the parameters a hash records; production hashes come from
// HashPassword (tested in TestHashPassword).
func cheapHash(pw string) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s", argon2.Version, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func TestHashPassword(t *testing.T) {
	h, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q lacks the expected parameters", h)
	}
	if !auth.VerifyPassword(h, password) || auth.VerifyPassword(h, password+"x") {
		t.Error("VerifyPassword disagrees with HashPassword")
	}
	h2, _ := auth.HashPassword(password)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2id$", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$a2V5"} {
		if auth.VerifyPassword(bad, password) {
			t.Errorf("VerifyPassword(%q) = true", bad)
		}
	}
}

// fakeClock is a clock that only moves when the Authenticator sleeps or
// the test says so. It records every wait.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// lastWait returns the wait of the latest attempt (0 if it did not sleep).
func (c *fakeClock) takeWaits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waits
	c.waits = nil
	return w
}

func newAuth(t *testing.T, clk *fakeClock) *auth.Authenticator {
	return &auth.Authenticator{
		Store:    newStore(t),
		Throttle: auth.Throttle{Delay: time.Second, MaxDelay: time.Minute, Window: 15 * time.Minute},
		Now:      clk.Now,
		Sleep:    clk.Sleep,
	}
}

func sum(ws []time.Duration) time.Duration {
	var s time.Duration
	for _, w := range ws {
		s += w
	}
	return s
}

func TestAuthenticate(t *testing.T) {
	a := &auth.Authenticator{Store: newStore(t)}
	ctx := context.Background()
	acct, err := a.Authenticate(ctx, "127.0.0.1", "Alice@Example.ORG", password)
	if err != nil || acct.Address != user {
		t.Fatalf("Authenticate = %+v, %v", acct, err)
	}
	for _, tc := range []struct{ user, pw string }{
		{user, "wrong password"}, {"nobody@example.org", password}, {user, ""}, {"", ""},
	} {
		if _, err := a.Authenticate(ctx, "127.0.0.1", tc.user, tc.pw); !errors.Is(err, auth.ErrFailed) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrFailed", tc.user, tc.pw, err)
		}
	}
}

// TestFailuresSlowNextAttempt: N failures from one address make the next
// attempt wait Delay·2^(N-1); the real user, from elsewhere, still gets
// in; after the window the attacker's address is back to no delay.
func TestFailuresSlowNextAttempt(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAuth(t, clk)
	ctx := context.Background()
	attacker := "192.0.2.66:40000"
	const n = 5
	for i := 0; i < n; i++ {
		if _, err := a.Authenticate(ctx, attacker, user, "guess"); !errors.Is(err, auth.ErrFailed) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	// Waits before guesses 1..5: 0, 1s, 2s, 4s, 8s.
	if got, want := sum(clk.takeWaits()), 15*time.Second; got != want {
		t.Fatalf("total wait of %d failures = %v, want %v", n, got, want)
	}
	// The next guess waits 16s.
	a.Authenticate(ctx, attacker, user, "guess")
	if w := sum(clk.takeWaits()); w != 16*time.Second {
		t.Fatalf("wait after %d failures = %v, want 16s", n, w)
	}
	// Failures keep doubling up to the cap and no further.
	for i := 0; i < 4; i++ {
		a.Authenticate(ctx, attacker, user, "guess")
	}
	ws := clk.takeWaits()
	if ws[len(ws)-1] != time.Minute {
		t.Fatalf("waits %v do not reach the 1m cap", ws)
	}

	// The real user, from another address, is slowed by the account's
	// bucket but gets in (never locked out), and that clears the account.
	acct, err := a.Authenticate(ctx, "198.51.100.7", user, password)
	if err != nil || acct.Address != user {
		t.Fatalf("real user: %v", err)
	}
	if w := sum(clk.takeWaits()); w > time.Minute {
		t.Fatalf("real user waited %v, more than the cap", w)
	}
	if _, err := a.Authenticate(ctx, "198.51.100.7", user, password); err != nil {
		t.Fatal(err)
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("after a success the account still waits %v", w)
	}

	// The attacker's address is still slowed, also for other accounts:
	// after one more failure it owes the cap again, although bob's own
	// bucket holds a single failure (1s).
	a.Authenticate(ctx, attacker, "bob@example.org", "guess")
	clk.takeWaits()
	a.Authenticate(ctx, attacker, "bob@example.org", "guess")
	if w := sum(clk.takeWaits()); w < 30*time.Second {
		t.Fatalf("attacker address waited only %v", w)
	}

	// After the window without failures, everything is forgotten.
	clk.Advance(16 * time.Minute)
	if _, err := a.Authenticate(ctx, attacker, user, password); err != nil {
		t.Fatal(err)
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("after the window the address still waits %v", w)
	}
}

// TestRealUserAfterWindow: an account hammered from many addresses makes
// the real user wait at most the cap, and after the window not at all.
func TestRealUserAfterWindow(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAuth(t, clk)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}).String()
		a.Authenticate(ctx, ip, user, "guess")
	}
	clk.takeWaits()
	clk.Advance(15*time.Minute + time.Second)
	if _, err := a.Authenticate(ctx, "198.51.100.7", user, password); err != nil {
		t.Fatalf("real user after the window: %v", err)
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("real user waited %v after the window", w)
	}
}

// TestParallelGuessesQueue: concurrent guesses do not escape the delay:
// they queue with growing waits and those beyond the cap are refused
// without a password check.
func TestParallelGuessesQueue(t *testing.T) {
	a := &auth.Authenticator{
		Store:         newStore(t),
		Throttle:      auth.Throttle{Delay: 20 * time.Millisecond, MaxDelay: 300 * time.Millisecond, Window: time.Minute},
		Trusted:       []netip.Prefix{},
		MaxConcurrent: 2,
	}
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.Authenticate(ctx, "127.0.0.1", user, "guess")
		}()
	}
	wg.Wait()
	throttled := 0
	for _, err := range errs {
		if !errors.Is(err, auth.ErrFailed) {
			t.Fatalf("err = %v", err)
		}
		if errors.Is(err, auth.ErrThrottled) {
			throttled++
		}
	}
	if throttled < n/2 {
		t.Errorf("only %d of %d parallel guesses were refused", throttled, n)
	}
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("parallel guesses took only %v: not queued", el)
	}
}

// TestTrustedAddressNotThrottledPerIP: failures from a trusted network do
// not slow that address for other accounts (a local proxy serves many
// users), but the account's own bucket still applies.
func TestTrustedAddressNotThrottledPerIP(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAuth(t, clk) // Trusted nil: loopback
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		a.Authenticate(ctx, "127.0.0.1", "mallory@example.org", "guess")
	}
	clk.takeWaits()
	if _, err := a.Authenticate(ctx, "127.0.0.1", user, password); err != nil {
		t.Fatal(err)
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("trusted address slowed another account by %v", w)
	}
	a.Authenticate(ctx, "127.0.0.1", "mallory@example.org", "guess")
	if w := sum(clk.takeWaits()); w == 0 {
		t.Fatal("account bucket not applied on a trusted address")
	}
}

func TestContextCancelledDuringWait(t *testing.T) {
	a := &auth.Authenticator{Store: newStore(t), Throttle: auth.Throttle{Delay: time.Hour, MaxDelay: time.Hour, Window: 2 * time.Hour}}
	ctx := context.Background()
	a.Authenticate(ctx, "192.0.2.1", user, "guess")
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := a.Authenticate(cctx, "192.0.2.1", user, password)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

// TestParallelLoginsOfOneUserNotSlowed: many devices logging in to one
// account at once, all with the right password, are neither delayed nor
// refused.
func TestParallelLoginsOfOneUserNotSlowed(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAuth(t, clk)
	a.MaxConcurrent = 2
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.Authenticate(ctx, "192.0.2.10", user, password)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	if w := sum(clk.takeWaits()); w != 0 {
		t.Fatalf("parallel correct logins waited %v in total", w)
	}
}

// queueClock is a fake clock whose Sleep returns at once for a context
// marked fast and otherwise blocks until the context ends (a release or
// a cancel), announcing each blocked sleeper on entered.
type queueClock struct {
	fakeClock
	entered chan struct{}
}

type fastKey struct{}

func fast(ctx context.Context) context.Context { return context.WithValue(ctx, fastKey{}, true) }

func (c *queueClock) Sleep(ctx context.Context, d time.Duration) error {
	if ctx.Value(fastKey{}) != nil {
		return c.fakeClock.Sleep(ctx, d)
	}
	c.entered <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

func newQueueAuth(t *testing.T) (*auth.Authenticator, *queueClock) {
	clk := &queueClock{fakeClock: fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, entered: make(chan struct{}, 64)}
	a := newAuth(t, &clk.fakeClock)
	a.Sleep = clk.Sleep
	return a, clk
}

// TestTypoThenParallelLogins: after one wrong password, a client that
// opens several connections with the right one queues them behind each
// other; the first success releases the rest at once instead of leaving
// them to wait 2, 4, 8 ... seconds (or be refused).
func TestTypoThenParallelLogins(t *testing.T) {
	a, clk := newQueueAuth(t)
	ctx := context.Background()
	const ip = "192.0.2.10"
	if _, err := a.Authenticate(fast(ctx), ip, user, "typo"); !errors.Is(err, auth.ErrFailed) {
		t.Fatal(err)
	}
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := a.Authenticate(cctx, ip, user, password)
			errs <- err
		}()
	}
	for range n {
		<-clk.entered // all queued
	}
	if _, err := a.Authenticate(fast(ctx), ip, user, password); err != nil {
		t.Fatalf("the first right login: %v", err)
	}
	for i := range n {
		if err := <-errs; err != nil {
			t.Fatalf("queued login %d after the success: %v (not released)", i, err)
		}
	}
}

// TestAttackerNotReleasedByRealUser: the real user's login from another
// address does not release an attacker's queued guess, whose address
// still holds its failures.
func TestAttackerNotReleasedByRealUser(t *testing.T) {
	a, clk := newQueueAuth(t)
	ctx := context.Background()
	const attacker = "192.0.2.66"
	for range 2 {
		a.Authenticate(fast(ctx), attacker, user, "guess")
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(cctx, attacker, user, "guess")
		done <- err
	}()
	<-clk.entered
	if _, err := a.Authenticate(fast(ctx), "198.51.100.7", user, password); err != nil {
		t.Fatalf("real user: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the attacker's queued guess went ahead after the real user's login: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("attacker's guess: %v, want canceled", err)
	}
}

// TestSuccessTakesBackOwnFailuresOnly: a login takes back its address's
// failures on the same account (a typo) but not those on other accounts.
func TestSuccessTakesBackOwnFailuresOnly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		otherFail int
		wantWait  time.Duration // after one more failure: Delay·2^(n-1)
	}{{"typo only", 0, time.Second}, {"also guessed at bob", 2, 4 * time.Second}} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a := newAuth(t, clk)
			ctx := context.Background()
			const ip = "192.0.2.20"
			for range tc.otherFail {
				a.Authenticate(ctx, ip, "bob@example.org", "guess")
			}
			a.Authenticate(ctx, ip, user, "typo")
			if _, err := a.Authenticate(ctx, ip, user, password); err != nil {
				t.Fatal(err)
			}
			a.Authenticate(ctx, ip, "carol@example.org", "x")
			clk.takeWaits()
			a.Authenticate(ctx, ip, "dave@example.org", "x")
			if w := sum(clk.takeWaits()); w != tc.wantWait {
				t.Fatalf("next attempt from the address waited %v, want %v", w, tc.wantWait)
			}
		})
	}
}
