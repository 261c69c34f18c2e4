package imapd

import (
	"bytes"
	"context"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/bench/corpus"
	"github.com/skrytka/skrytka/bench/load"
	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
)

// TestSessionMix runs the benchmark's IMAP session mix (workload 3,
// bench/load/imapmix.go) against an in-process server on the real
// embedded store, for profiling with -cpuprofile/-memprofile: IMAPD_MIX=10s
// runs it for that long (default: skipped), IMAPD_MIX_CLIENTS clients
// (default 50), each user holding IMAPD_MIX_MESSAGES realistic corpus
// messages (default 100). It reports operations/s and asserts only what
// the workload itself checks. IMAPD_MIX_CPUPROFILE=file writes a CPU
// profile of the mix alone (client and server: they share the process).
func TestSessionMix(t *testing.T) {
	dur, _ := time.ParseDuration(os.Getenv("IMAPD_MIX"))
	if dur == 0 {
		t.Skip("set IMAPD_MIX=10s to run")
	}
	clients, per := 50, 100
	if v, err := strconv.Atoi(os.Getenv("IMAPD_MIX_CLIENTS")); err == nil && v > 0 {
		clients = v
	}
	if v, err := strconv.Atoi(os.Getenv("IMAPD_MIX_MESSAGES")); err == nil && v > 0 {
		per = v
	}
	// As the server runs by default (config auth.cache_ttl): a repeated
	// login skips argon2id.
	ts := newTestServer(t, func(o *Options) {
		o.Auth = &auth.Authenticator{Store: o.Store, CacheTTL: time.Hour}
	})
	ctx := context.Background()
	const domain = "bench.test"
	gen := &corpus.Generator{Seed: 1, MaxBytes: 256 << 10}
	for k := 1; k <= clients; k++ {
		acct, err := ts.st.CreateAccount(ctx, "u"+strconv.Itoa(k)+"@"+domain, passwordHash(t))
		if err != nil {
			t.Fatal(err)
		}
		inbox, err := ts.st.Mailbox(ctx, acct.ID, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		var msgs []store.AppendMessage
		for i := 0; i < per; i++ {
			staged, err := ts.st.Stage(ctx, bytes.NewReader(gen.Message(k*per+i)), 0)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, store.AppendMessage{Body: staged})
		}
		if _, err := ts.st.Append(ctx, acct.ID, inbox.ID, msgs); err != nil {
			t.Fatal(err)
		}
	}
	settle(t)
	host, port, _ := strings.Cut(ts.addr, ":")
	p, _ := strconv.Atoi(port)
	target := &load.Target{Name: "skrytka", Host: host, IMAP: p, Domain: domain, Password: testPass, UserPrefix: "u"}
	if path := os.Getenv("IMAPD_MIX_CPUPROFILE"); path != "" {
		// The profile covers the mix only, not the loading.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	res, err := load.IMAPMix(ctx, target, load.MixParams{Clients: clients, Duration: dur, Preloaded: per, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %+v (process CPU %v)", res.Params, res.Metrics, cpuTime()-cpu0)
}
