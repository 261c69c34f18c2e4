package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"
)

// Default throttling figures (config keys auth.failure_delay,
// auth.max_failure_delay and auth.failure_window; docs/security.md explains
// them).
const (
	DefaultFailureDelay    = time.Second
	DefaultMaxFailureDelay = time.Minute
	DefaultFailureWindow   = 15 * time.Minute
	// maxBuckets bounds the throttling state; beyond it, buckets whose
	// window has passed are swept.
	maxBuckets = 100_000
)

// Throttle sets how failed logins slow later attempts. Zero fields take
// the defaults above.
//
// Every attempt is counted in two buckets: the client's address (an IPv4
// address or an IPv6 /64; not for trusted networks) and the account
// address. After n failures in a bucket, the next attempt waits
// Delay·2^(n-1), at most MaxDelay, counted from the last failure. Once a
// bucket has failures, attempts that run at the same time queue behind
// each other with the same growing delays, so parallel guessing gains
// nothing; and since an attempt is admitted only when it holds one of the
// few password-check slots (Authenticator.MaxConcurrent), a burst of
// guesses at a clean account learns of the first failures after at most
// that many checks. An attempt that would have to
// wait more than MaxDelay is refused at once (ErrThrottled) without
// checking the password. A bucket is forgotten Window after its last
// failure, and a successful login clears its account's bucket, so the
// real user is never locked out for longer than that.
//
// A successful login also takes back, from its address's bucket, the
// failures that address had on the same account (a typo, then the right
// password), never those on other accounts: logging in to one's own
// account does not reset an address that guesses at others. Attempts
// still waiting in the queue then go ahead at once if none of their
// buckets holds a failure any more: after a typo, a client that opened
// several connections with the right password is not kept waiting
// behind the reservations of its own parallel logins. An attacker's
// queued guesses gain nothing from the real user's login elsewhere: the
// attacker's address still holds its failures.
type Throttle struct {
	Delay    time.Duration
	MaxDelay time.Duration
	Window   time.Duration
}

func (t Throttle) withDefaults() Throttle {
	if t.Delay <= 0 {
		t.Delay = DefaultFailureDelay
	}
	if t.MaxDelay <= 0 {
		t.MaxDelay = DefaultMaxFailureDelay
	}
	if t.MaxDelay < t.Delay {
		t.MaxDelay = t.Delay
	}
	if t.Window <= 0 {
		t.Window = DefaultFailureWindow
	}
	return t
}

// delay is the wait owed after n failures (n >= 0).
func (t Throttle) delay(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := t.Delay
	for i := 1; i < n && d < t.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.MaxDelay)
}

// bucket is the throttling state of one address or account.
type bucket struct {
	failures int       // failures since the bucket was last cleared
	lastFail time.Time // time of the latest failure
	next     time.Time // earliest start of the next attempt
	inflight int       // attempts admitted and not yet finished
	// byAcct counts an address bucket's failures per account key, so a
	// success can take back the ones on its own account. At most
	// maxFailAccts accounts are tracked; failures on more stay for good
	// (until the window ends).
	byAcct map[string]int
}

// maxFailAccts bounds bucket.byAcct.
const maxFailAccts = 16

// errReleased ends a queued attempt's wait early (see Throttle).
var errReleased = errors.New("auth: released from the throttle queue")

// waiter is an attempt waiting in the queue.
type waiter struct {
	keys    []string
	release context.CancelCauseFunc
}

// DefaultTrusted are the networks exempt from per-address throttling when
// Authenticator.Trusted is nil: loopback.
var DefaultTrusted = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// parseRemote accepts "ip", "ip:port" or "[ip]:port".
func parseRemote(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.Trim(remote, "[]")); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// keys returns the bucket keys of an attempt: the account and, unless
// trusted, the client's address (or its /64).
func (a *Authenticator) keys(remote, address string) []string {
	keys := []string{"acct:" + strings.ToLower(address)}
	ip := parseRemote(remote)
	if !ip.IsValid() {
		return keys
	}
	trusted := a.Trusted
	if trusted == nil {
		trusted = DefaultTrusted
	}
	for _, p := range trusted {
		if p.Contains(ip) {
			return keys
		}
	}
	if ip.Is4() {
		return append(keys, "ip:"+ip.String())
	}
	p, _ := ip.Prefix(64)
	return append(keys, "ip:"+p.String())
}

// admit reserves a slot for an attempt and returns how long it must wait
// first; ok is false when the wait would exceed MaxDelay.
func (a *Authenticator) admit(keys []string, now time.Time) (wait time.Duration, ok bool) {
	t := a.Throttle.withDefaults()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.buckets == nil {
		a.buckets = make(map[string]*bucket)
	}
	if len(a.buckets) > maxBuckets {
		a.sweep(now, t.Window)
	}
	for _, k := range keys {
		b := a.buckets[k]
		if b == nil {
			continue
		}
		if b.inflight == 0 && b.failures > 0 && now.Sub(b.lastFail) > t.Window {
			delete(a.buckets, k)
			continue
		}
		wait = max(wait, b.next.Sub(now))
	}
	if wait > t.MaxDelay {
		return wait, false
	}
	start := now.Add(wait)
	for _, k := range keys {
		b := a.buckets[k]
		if b == nil {
			b = &bucket{}
			a.buckets[k] = b
		}
		// Once a bucket has failures, attempts already in flight may all
		// fail too: the next one queues as if they had. A bucket without
		// failures adds no wait, so a user's many parallel logins (several
		// devices, a client opening several connections) are not slowed.
		if b.failures > 0 {
			b.next = maxTime(b.next, start.Add(t.delay(b.failures+b.inflight)))
		}
		b.inflight++
	}
	return wait, true
}

// outcome is how an admitted attempt ended.
type outcome int

const (
	succeeded outcome = iota
	failed
	neutral // not the client's doing (store down, context ended)
)

// done records the outcome of an admitted attempt. keys[0] is the account.
func (a *Authenticator) done(keys []string, now time.Time, o outcome) {
	t := a.Throttle.withDefaults()
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, k := range keys {
		b := a.buckets[k]
		if b == nil {
			continue
		}
		b.inflight--
		switch {
		case o == failed:
			b.failures++
			b.lastFail = now
			b.next = maxTime(b.next, now.Add(t.delay(b.failures)))
			if i > 0 && (b.byAcct[keys[0]] > 0 || len(b.byAcct) < maxFailAccts) {
				if b.byAcct == nil {
					b.byAcct = make(map[string]int)
				}
				b.byAcct[keys[0]]++
			}
		case o == succeeded && i == 0: // the account: the real user got in
			b.failures = 0
			b.next = time.Time{}
		case o == succeeded && b.byAcct[keys[0]] > 0: // the address: its failures on this account
			b.failures -= b.byAcct[keys[0]]
			delete(b.byAcct, keys[0])
			b.next = time.Time{}
			if b.failures > 0 {
				b.next = b.lastFail.Add(t.delay(b.failures))
			}
		default: // drop what this attempt reserved, keep what failures owe
			b.next = b.lastFail.Add(t.delay(b.failures))
		}
		if b.inflight == 0 && b.failures == 0 {
			delete(a.buckets, k)
		}
	}
	if o == succeeded {
		for w := range a.waiters {
			if a.unthrottled(w.keys) {
				w.release(errReleased)
				delete(a.waiters, w)
			}
		}
	}
}

// unthrottled reports whether no bucket of keys holds a failure.
// a.mu is held.
func (a *Authenticator) unthrottled(keys []string) bool {
	for _, k := range keys {
		if b := a.buckets[k]; b != nil && b.failures > 0 {
			return false
		}
	}
	return true
}

// wait sleeps for an admitted attempt's wait, or less if a success
// releases it (see Throttle).
func (a *Authenticator) wait(ctx context.Context, keys []string, d time.Duration) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &waiter{keys: keys, release: cancel}
	a.mu.Lock()
	if a.waiters == nil {
		a.waiters = make(map[*waiter]struct{})
	}
	a.waiters[w] = struct{}{}
	a.mu.Unlock()
	err := a.sleep(wctx, d)
	a.mu.Lock()
	delete(a.waiters, w)
	a.mu.Unlock()
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(wctx), errReleased) {
		return nil
	}
	return err
}

func (a *Authenticator) sweep(now time.Time, window time.Duration) {
	for k, b := range a.buckets {
		if b.inflight == 0 && now.Sub(b.lastFail) > window {
			delete(a.buckets, k)
		}
	}
}

func maxTime(x, y time.Time) time.Time {
	if x.After(y) {
		return x
	}
	return y
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Authenticator) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if a.Sleep != nil {
		return a.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
