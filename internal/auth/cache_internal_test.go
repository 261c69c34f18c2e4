package auth

import (
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// TestCacheSweepTimer: on a server where nobody logs in any more, expired
// entries still leave memory (and their digests are wiped).
func TestCacheSweepTimer(t *testing.T) {
	c := newCredCache(500*time.Millisecond, 10, time.Now)
	acct := store.Account{ID: 7, Address: "alice@example.org", PasswordHash: "$argon2id$x"}
	d := c.digest(acct, "pw")
	_, f, lead := c.lookup(acct, d)
	if !lead {
		t.Fatal("first lookup does not lead")
	}
	c.land(f, acct, d, true)
	c.mu.Lock()
	e := c.byAddr[acct.Address].Value.(*cacheEntry)
	c.mu.Unlock()
	if hit, _, _ := c.lookup(acct, d); !hit {
		t.Fatal("no hit right after land")
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.len() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("expired entry never swept")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.digest != ([32]byte{}) {
		t.Error("swept entry's digest not wiped")
	}
	if c.timer != nil {
		t.Error("timer still armed with an empty cache")
	}
}
