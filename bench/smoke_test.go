// Package bench_test is the CI smoke run of the benchmark tools: it builds
// skrytka, starts it on free loopback ports with a throwaway config and
// runs every workload for a second or two with tiny sizes, asserting only
// that what the workloads read is correct (never a speed).
package bench_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skrytka/skrytka/bench/bulk"
	"github.com/skrytka/skrytka/bench/corpus"
	"github.com/skrytka/skrytka/bench/load"
	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store/embedded"
	"github.com/skrytka/skrytka/internal/testharness"
)

const (
	smokePassword = "smoke-password-1"
	smokeDomain   = "bench.test"
	smokeUsers    = 4
	smokePerUser  = 6
	smokeBig      = 60
	smokeSinks    = 3
)

type server struct {
	bin, config, dir string
	ports            map[string]int
	cmd              *exec.Cmd
	log              *testharness.SyncBuffer
}

// started reports whether the server's log says it has started.
func started(log *testharness.SyncBuffer) bool {
	return strings.Contains(log.String(), "skrytka started")
}

func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke run builds and starts skrytka; skipped with -short")
	}
	s := newServer(t)
	var users []string
	for k := 1; k <= smokeUsers; k++ {
		users = append(users, fmt.Sprintf("u%d@%s", k, smokeDomain))
	}
	special := []string{"big@" + smokeDomain, "idle@" + smokeDomain}
	for k := 1; k <= smokeSinks; k++ {
		special = append(special, fmt.Sprintf("sink%d@%s", k, smokeDomain))
	}
	for _, u := range append(append([]string{}, users...), special...) {
		s.run(t, "user", "add", u, "-password-stdin", "-config", s.config)
	}
	t0 := time.Now()
	s.start(t)
	tg := s.target(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	need := func(t *testing.T, protos ...string) {
		t.Helper()
		for _, p := range protos {
			if s.open(p) == 0 {
				t.Skipf("skrytka serve opens no %s listener yet (its server is not wired into the binary)", strings.ToUpper(p))
			}
		}
	}
	userGen := &corpus.Generator{Seed: 3, Profile: corpus.Realistic, MaxBytes: 300 << 10}
	bigGen := &corpus.Generator{Seed: 4, Profile: corpus.Compact}
	loaded := t.Run("load", func(t *testing.T) {
		if tg.LMTP == 0 && tg.SMTP == 0 {
			t.Skip("skrytka serve opens neither an LMTP nor an SMTP listener yet")
		}
		if err := load.Load(ctx, tg, userGen, users, 0, smokePerUser, 3, nil); err != nil {
			t.Fatal(err)
		}
		if err := load.Load(ctx, tg, bigGen, []string{"big@" + smokeDomain}, 0, smokeBig, 4, nil); err != nil {
			t.Fatal(err)
		}
		if err := load.Load(ctx, tg, userGen, []string{"idle@" + smokeDomain}, 0, 1, 1, nil); err != nil {
			t.Fatal(err)
		}
	})
	needLoaded := func(t *testing.T) {
		t.Helper()
		if !loaded {
			t.Skip("corpus not loaded")
		}
	}
	dp := load.DeliveryParams{Sessions: smokeSinks, Duration: time.Second, Seed: 5}
	t.Run("1-lmtp", func(t *testing.T) {
		need(t, "lmtp", "imap")
		check(t)(load.Deliver(ctx, tg, true, dp))
	})
	t.Run("2-smtp", func(t *testing.T) {
		need(t, "smtp", "imap")
		check(t)(load.Deliver(ctx, tg, false, dp))
	})
	t.Run("3-imap-mix", func(t *testing.T) {
		need(t, "imap")
		needLoaded(t)
		check(t)(load.IMAPMix(ctx, tg, load.MixParams{Clients: smokeUsers, Duration: 2 * time.Second, Preloaded: smokePerUser, IdleFor: 50 * time.Millisecond}))
	})
	t.Run("4-pop3", func(t *testing.T) {
		need(t, "pop3")
		needLoaded(t)
		check(t)(load.POP3(ctx, tg, load.POP3Params{Clients: smokeUsers, Preloaded: smokePerUser}))
	})
	t.Run("5-big-mailbox", func(t *testing.T) {
		need(t, "imap")
		needLoaded(t)
		check(t)(load.BigMailbox(ctx, tg, load.BigParams{User: "big@" + smokeDomain, Count: smokeBig, Gen: bigGen}, load.Expect(bigGen, smokeBig)))
	})
	t.Run("6-idle", func(t *testing.T) {
		need(t, "imap")
		needLoaded(t)
		if tg.LMTP == 0 && tg.SMTP == 0 {
			t.Skip("no delivery listener")
		}
		rs, err := load.Idle(ctx, tg, load.IdleParams{Steps: []int{10, 24}, Parallel: 8, User: "idle@" + smokeDomain, Settle: 200 * time.Millisecond, Seed: 6})
		if err == nil && len(rs) != 2 {
			t.Fatalf("idle: %d results for 2 steps", len(rs))
		}
		for _, r := range rs {
			check(t)(r, err)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("8-append", func(t *testing.T) {
		need(t, "imap")
		check(t)(load.Append(ctx, tg, load.AppendParams{Clients: 3, Duration: time.Second, Seed: 7}))
	})
	t.Run("7-startup", func(t *testing.T) {
		need(t, "imap")
		needLoaded(t)
		s.stop(t)
		t0 = time.Now()
		s.start(t)
		tg.PIDs = []int{s.cmd.Process.Pid}
		check(t)(load.Startup(ctx, tg, load.StartupParams{T0: t0, User: "big@" + smokeDomain, Want: smokeBig}))
	})
	// Workload 7 at the size of issue 8 runs on a store filled by the
	// bulk loader (bench/bulk), not over LMTP: here a tiny one.
	t.Run("7-startup-bulk", func(t *testing.T) {
		need(t, "imap")
		s.stop(t)
		dir := filepath.Join(s.dir, "bulk-data")
		plan := &bulk.Plan{Accounts: 3, PerAccount: 40, Prefix: "bulk", Domain: smokeDomain, Unread: 5,
			Gen: &corpus.Generator{Seed: 8, Profile: corpus.Compact, MaxBytes: 4096}}
		st, err := embedded.Open(ctx, dir, embedded.Options{})
		if err != nil {
			t.Fatal(err)
		}
		hash, err := auth.HashPassword(smokePassword)
		if err == nil {
			err = bulk.Skrytka(ctx, st, plan, hash)
		}
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		s.run(t, "migrate", "-config", s.writeConfig(t, dir))
		t0 = time.Now()
		s.start(t)
		tg.PIDs = []int{s.cmd.Process.Pid}
		if _, err := load.Warm(ctx, tg, []string{plan.Address(0), plan.Address(2)}, plan.PerAccount); err != nil {
			t.Fatal(err)
		}
		res, err := load.Startup(ctx, tg, load.StartupParams{T0: t0, User: plan.Address(1), Want: plan.PerAccount, Workload: "7-startup-bulk"})
		check(t)(res, err)
		// The newest message of an INBOX reads back as generated.
		raw, err := tg.FetchLast(plan.Address(2))
		if err != nil {
			t.Fatal(err)
		}
		if err := plan.Gen.VerifyExact(raw, plan.Index(2, plan.PerAccount-1)); err != nil {
			t.Fatal(err)
		}
	})
}

// check returns a function that fails t unless a workload succeeded and
// checked something: check(t)(load.POP3(...)).
func check(t *testing.T) func(*load.Result, error) {
	return func(res *load.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if res.Checked == 0 {
			t.Fatalf("%s checked nothing", res.Workload)
		}
		t.Logf("%s: %+v (checked %d)", res.Workload, res.Metrics, res.Checked)
	}
}

func newServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "skrytka")
	build := exec.Command("go", "build", "-o", bin, "github.com/skrytka/skrytka/cmd/skrytka")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/skrytka: %v\n%s", err, out)
	}
	s := &server{bin: bin, dir: dir, config: filepath.Join(dir, "skrytka.toml"), ports: map[string]int{}}
	for _, p := range []string{"imap", "pop3", "smtp", "lmtp"} {
		s.ports[p] = freePort(t)
	}
	s.writeConfig(t, filepath.Join(dir, "data"))
	t.Cleanup(func() { s.stop(t) })
	return s
}

// writeConfig (re)writes the server's config with the given data_dir and
// returns its path.
func (s *server) writeConfig(t *testing.T, dataDir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir = %q
hostname = "bench.localhost"
domains = [%q]

[imap]
listen = "127.0.0.1:%d"
tls_listen = ""

[pop3]
listen = "127.0.0.1:%d"
tls_listen = ""

[smtp]
listen = "127.0.0.1:%d"
# No SPF/DKIM/DMARC checks: they query DNS, and tests stay on loopback.
auth_checks = false

[lmtp]
listen = "127.0.0.1:%d"

[submission]
listen = ""
tls_listen = ""

[limits]
max_connections = 500
`, dataDir, smokeDomain, s.ports["imap"], s.ports["pop3"], s.ports["smtp"], s.ports["lmtp"])
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s.config
}

// run runs a skrytka subcommand with the password on stdin.
func (s *server) run(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Stdin = strings.NewReader(smokePassword + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skrytka %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *server) start(t *testing.T) {
	t.Helper()
	s.log = new(testharness.SyncBuffer)
	s.cmd = exec.Command(s.bin, "serve", "-config", s.config)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Ready when a listener accepts, or when serve has logged that it
	// started (a build whose protocol servers are not wired in yet opens
	// none; each subtest then skips).
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range []string{"imap", "lmtp", "smtp", "pop3"} {
			if s.open(p) != 0 {
				time.Sleep(300 * time.Millisecond) // let the other listeners come up
				return
			}
		}
		if started(s.log) {
			time.Sleep(300 * time.Millisecond)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("skrytka serve neither listened nor logged its start within 30 s; its log:\n%s", s.log)
}

func (s *server) stop(t *testing.T) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-done
		t.Errorf("skrytka serve did not stop within 20 s of SIGTERM")
	}
	s.cmd = nil
}

// open returns the port of proto if something listens there, else 0.
func (s *server) open(proto string) int {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.ports[proto]), time.Second)
	if err != nil {
		return 0
	}
	c.Close()
	return s.ports[proto]
}

func (s *server) target(t *testing.T) *load.Target {
	tg := &load.Target{Name: "skrytka", Domain: smokeDomain, Password: smokePassword, UserPrefix: "u",
		IMAP: s.open("imap"), POP3: s.open("pop3"), SMTP: s.open("smtp"), LMTP: s.open("lmtp"),
		PIDs: []int{s.cmd.Process.Pid}}
	for p, port := range map[string]int{"IMAP": tg.IMAP, "POP3": tg.POP3, "SMTP": tg.SMTP, "LMTP": tg.LMTP} {
		if port == 0 {
			t.Logf("skrytka serve has no %s listener in this build", p)
		}
	}
	return tg
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := testharness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
