package imapd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// cheapHash is a valid argon2id PHC hash with tiny parameters, so that a
// test can log in thousands of sessions quickly.
func cheapHash(t testing.TB, password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, 1, 8, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=8,t=1,p=1$%s$%s", argon2.Version, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// TestIdleConnectionMemory logs in IMAPD_IDLE_CONNS sessions (default:
// skipped), puts each in IDLE on INBOX, and reports the growth of heap and
// goroutine stacks per connection (server and test client together), then
// checks that a delivery reaches all of them.
func TestIdleConnectionMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("IMAPD_IDLE_CONNS"))
	if n == 0 {
		t.Skip("set IMAPD_IDLE_CONNS=2000 to run")
	}
	ts := newTestServer(t)
	if err := ts.st.SetPasswordHash(context.Background(), ts.acct.ID, cheapHash(t, testPass)); err != nil {
		t.Fatal(err)
	}
	measure := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse
	}
	rev2 := os.Getenv("IMAPD_IDLE_REV2") != ""
	before := measure()
	clients := make([]*rawClient, n)
	for i := range clients {
		rc := ts.login(t)
		if rev2 {
			rc.ok("e ENABLE IMAP4rev2")
		}
		rc.ok("s SELECT INBOX")
		rc.send("i IDLE\r\n")
		rc.line()
		clients[i] = rc
	}
	after := measure()
	t.Logf("%d idle sessions: %.1f KiB per connection (heap+stacks, server and client)", n, float64(after-before)/float64(n)/1024)
	start := time.Now()
	ts.appendMsg(t, "INBOX", "Subject: all\r\n\r\nhi\r\n", storeFlags())
	for _, rc := range clients {
		if l := rc.line(); l != "* 1 EXISTS" {
			t.Fatalf("%q", l)
		}
	}
	t.Logf("delivery reached all %d sessions in %v", n, time.Since(start))
}
