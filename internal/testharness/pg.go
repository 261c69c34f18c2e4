// Package testharness starts the real things tests talk to: servers on
// loopback, a throwaway PostgreSQL (pg.go), test certificates, line clients.
// It is imported only by tests; production code never depends on it.
package testharness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvRequirePostgres, when "1", turns a missing PostgreSQL into a test
// failure instead of a skip (CI sets it).
const EnvRequirePostgres = "SKRYTKA_REQUIRE_POSTGRES"

// EnvPostgresBin names a directory holding initdb and postgres; it
// overrides the search under /usr/lib/postgresql/*/bin.
const EnvPostgresBin = "SKRYTKA_POSTGRES_BIN"

// PGServer is a throwaway PostgreSQL server: a fresh cluster in a temporary
// directory, listening on a random loopback port and a unix socket inside
// that directory. It runs with fsync off: it tests behaviour, not
// durability across power loss.
//
// When the test runs as root, initdb and postgres run as the "postgres"
// system user (PostgreSQL refuses to run as root) and the directory is
// owned by that user.
type PGServer struct {
	bin  string // directory with initdb and postgres
	dir  string // cluster data and socket directory
	port int
	cred *syscall.Credential // nil: run as ourselves

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
	dbN  int
	logF *os.File
}

var (
	pgOnce   sync.Once
	pgShared *PGServer
	pgErr    error
)

// PG returns the package's shared throwaway PostgreSQL server, starting it
// on first use. When the binaries are missing it skips the test, or fails
// it when SKRYTKA_REQUIRE_POSTGRES=1. Call StopPG from TestMain after
// m.Run (RunWithPG does both) so the server does not outlive the tests.
func PG(t testing.TB) *PGServer {
	t.Helper()
	pgOnce.Do(func() { pgShared, pgErr = StartPG() })
	if pgErr != nil {
		if errors.Is(pgErr, ErrNoPostgres) && os.Getenv(EnvRequirePostgres) != "1" {
			t.Skipf("skipping: %v (install Debian's postgresql package, or set %s=1 to make this a failure)", pgErr, EnvRequirePostgres)
		}
		t.Fatalf("throwaway PostgreSQL: %v", pgErr)
	}
	return pgShared
}

// StopPG stops the shared server if it was started.
func StopPG() {
	if pgShared != nil {
		pgShared.Stop()
		pgShared.Remove()
	}
}

// RunWithPG runs the tests and then stops the shared server; use it as
// `func TestMain(m *testing.M) { os.Exit(testharness.RunWithPG(m)) }`.
func RunWithPG(m *testing.M) int {
	code := m.Run()
	StopPG()
	return code
}

// ErrNoPostgres reports that no PostgreSQL server binaries were found.
var ErrNoPostgres = errors.New("PostgreSQL server binaries (initdb, postgres) not found")

// findPGBin returns the newest /usr/lib/postgresql/N/bin with initdb and
// postgres, or the directory named by SKRYTKA_POSTGRES_BIN.
func findPGBin() (string, error) {
	if d := os.Getenv(EnvPostgresBin); d != "" {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
		return "", fmt.Errorf("%w in %s=%s", ErrNoPostgres, EnvPostgresBin, d)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// StartPG creates a cluster in a new temporary directory and starts it. The
// caller must Stop and Remove it.
func StartPG() (*PGServer, error) {
	bin, err := findPGBin()
	if err != nil {
		return nil, err
	}
	removeStaleClusters()
	dir, err := os.MkdirTemp("", "skrytka-pg-")
	if err != nil {
		return nil, err
	}
	p := &PGServer{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	out, err := p.command(filepath.Join(bin, "initdb"), "-D", p.dataDir(), "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	// Pick a free port and start; retry if another process took it meanwhile.
	for attempt := 0; ; attempt++ {
		p.port, err = freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err = p.Start(); err == nil {
			return p, nil
		}
		if attempt == 4 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// removeStaleClusters deletes cluster directories left by test processes
// that were killed (their server died with them through Pdeathsig): older
// than ten minutes and without a live postmaster.
func removeStaleClusters() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "skrytka-pg-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < 10*time.Minute {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 0 {
				if syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM) {
					continue // still running
				}
			}
		}
		os.RemoveAll(d)
	}
}

func (p *PGServer) dataDir() string { return filepath.Join(p.dir, "data") }

func (p *PGServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = p.dir
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: p.cred,
		// The server dies with the test binary even if TestMain did not
		// stop it (e.g. the test timed out and panicked).
		Pdeathsig: syscall.SIGQUIT,
		Setpgid:   true,
	}
	return cmd
}

func freePort() (int, error) { return FreePort() }

// Port is the server's TCP port on 127.0.0.1.
func (p *PGServer) Port() int { return p.port }

// Start starts the server (again, after Stop) on the same port and data
// directory, and waits until it accepts connections.
func (p *PGServer) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("already running")
	}
	logPath := filepath.Join(p.dir, "server.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := p.command(filepath.Join(p.bin, "postgres"), "-D", p.dataDir(),
		"-p", strconv.Itoa(p.port),
		"-k", p.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning",
		"-c", "log_min_error_statement=panic",
	)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); lf.Close(); close(done) }()
	p.cmd, p.done, p.logF = cmd, done, lf
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, p.DSN("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			p.cmd = nil
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited at start: %s", tail(string(log), 2000))
		default:
		}
		if time.Now().After(deadline) {
			p.stopLocked()
			return fmt.Errorf("postgres not ready after 60s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Stop stops the server by its pid (fast shutdown: sessions are
// disconnected) and waits for it to exit. Stopping a stopped server does
// nothing.
func (p *PGServer) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *PGServer) stopLocked() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// Remove deletes the cluster directory. The server must be stopped.
func (p *PGServer) Remove() { os.RemoveAll(p.dir) }

// DSN returns a connection string for database db as the superuser.
func (p *PGServer) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// NewDatabase creates a fresh empty database for this test, dropped when
// the test ends, and returns its DSN.
func (p *PGServer) NewDatabase(t testing.TB) string {
	t.Helper()
	p.mu.Lock()
	p.dbN++
	name := fmt.Sprintf("t%d_%s", p.dbN, sanitize(t.Name()))
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect to throwaway PostgreSQL: %v", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, p.DSN("postgres"))
		if err != nil {
			return // the server is gone (or stopped by the test): nothing to drop
		}
		defer c.Close(context.Background())
		c.Exec(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
	})
	return p.DSN(name)
}

// sanitize makes a test name usable inside a database name (max 63 bytes).
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 50 {
		out = out[len(out)-50:]
	}
	return out
}
