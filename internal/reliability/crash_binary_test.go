package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
	"github.com/skrytka/skrytka/internal/testharness"
)

// TestCrashBinary is TestCrashSIGKILL against the real `skrytka serve`
// (config file, start-up, admin socket, self-signed certificate, store
// lock) with LMTP, IMAP and POP3 clients. The MX is off: its SPF/DKIM/DMARC
// lookups would leave loopback. SKRYTKA_CRASH_BINARY_KILLS sets the number
// of kills (default 6).
func TestCrashBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test in -short mode")
	}
	kills := envInt("SKRYTKA_CRASH_BINARY_KILLS", 6)
	bin, err := testharness.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	st, err := embedded.Open(context.Background(), data, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	validity := map[string]uint32{}
	for _, u := range append(append([]string(nil), crashUsers...), popUser) {
		a, err := createUser(st, u)
		if err != nil {
			t.Fatal(err)
		}
		mb, _ := st.Mailbox(context.Background(), a.ID, store.InboxName)
		validity[u] = mb.UIDValidity
	}
	st.Close()
	delete(validity, popUser)

	a := testharness.FreeAddrs(t, 3) // imap, pop3, lmtp
	cfg := fmt.Sprintf(`data_dir = %q
[imap]
listen = %q
tls_listen = ""
[pop3]
listen = %q
tls_listen = ""
[smtp]
listen = ""
[lmtp]
listen = %q
[submission]
listen = ""
tls_listen = ""
`, data, a[0], a[1], a[2])
	cfgPath := filepath.Join(dir, "skrytka.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	led := newLedger()
	var pst popStats
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	run(func() { lmtpWorker(ctx, a[2], "blmtp0", led) })
	run(func() { lmtpWorker(ctx, a[2], "blmtp1", led) })
	for i, u := range crashUsers {
		run(func() { imapWorker(ctx, a[0], fmt.Sprintf("bimap%d", i), u, led) })
	}
	quit := make(chan struct{}, 1)
	run(func() { popWorker(ctx, a[1], led, &pst, quit) })

	startServe := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "serve", "-config", cfgPath)
		var errBuf strings.Builder
		cmd.Stderr = &errBuf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		deadline := time.Now().Add(60 * time.Second)
		for {
			c, err := dialWire(a[2], time.Second)
			if err == nil {
				c.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("skrytka serve did not start:\n%s", errBuf.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	kill := func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	start := time.Now()
	for k := 0; k < kills; k++ {
		cmd := startServe()
		time.Sleep(time.Duration(400+rand.IntN(1200)) * time.Millisecond)
		kill(cmd)
	}
	cmd := startServe()
	for checked := pst.checked.Load(); pst.checked.Load() == checked && time.Since(start) < 5*time.Minute; {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	kill(cmd)
	wg.Wait()

	led.mu.Lock()
	defer led.mu.Unlock()
	for _, e := range led.errs {
		t.Error(e)
	}
	acked := 0
	for _, rs := range led.acks {
		acked += len(rs)
	}
	t.Logf("skrytka serve: %d kills in %v; acknowledged %d deliveries (%v); POP3 %d sessions checked",
		kills, time.Since(start).Round(time.Millisecond), acked, led.perProto, pst.checked.Load())
	if acked < kills {
		t.Errorf("only %d deliveries acknowledged in %d runs", acked, kills)
	}
	verifyCrashStore(t, data, led, validity, false)
}
