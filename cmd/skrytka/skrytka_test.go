package main

// Black-box tests: build the real binary once, run it as a subprocess with
// temporary configs on free loopback ports, and talk to it over sockets.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/testharness"
)

var binary string

func TestMain(m *testing.M) {
	os.Exit(testharness.MainWithBinary(m, &binary))
}

// ports are the listener addresses of a test config.
type ports struct{ imap, imaps, pop3, pop3s, smtp, lmtp, sub, subs string }

// writeConfig writes a config with free ports into dir. dataDir "" leaves
// data_dir at its default (./skrytka-data, relative to the working
// directory). extra is appended verbatim.
func writeConfig(t *testing.T, dir, dataDir, extra string) (string, ports) {
	t.Helper()
	a := testharness.FreeAddrs(t, 9)
	p := ports{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]}
	var b strings.Builder
	if dataDir != "" {
		fmt.Fprintf(&b, "data_dir = %q\n", dataDir)
	}
	fmt.Fprintf(&b, "[imap]\nlisten = %q\ntls_listen = %q\n", p.imap, p.imaps)
	fmt.Fprintf(&b, "[pop3]\nlisten = %q\ntls_listen = %q\n", p.pop3, p.pop3s)
	fmt.Fprintf(&b, "[smtp]\nlisten = %q\n[lmtp]\nlisten = %q\n", p.smtp, p.lmtp)
	fmt.Fprintf(&b, "[submission]\nlisten = %q\ntls_listen = %q\n", p.sub, p.subs)
	// Outbound mail goes to a loopback port where nobody listens: tests
	// never reach the network, and deliveries stay queued.
	fmt.Fprintf(&b, "[queue]\nsmarthost = %q\n", a[8])
	b.WriteString(extra)
	path := filepath.Join(dir, "skrytka.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, p
}

// proc is a running skrytka.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *testharness.SyncBuffer
	done           chan struct{}
	err            error
}

func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), stdout: &testharness.SyncBuffer{}, stderr: &testharness.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	})
	return p
}

// waitStarted waits for the start-up log line.
func (p *proc) waitStarted(t *testing.T) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(p.stderr.String(), "skrytka started") {
		select {
		case <-p.done:
			t.Fatalf("skrytka exited during start-up: %v\n%s", p.err, p.stderr)
		case <-deadline:
			t.Fatalf("skrytka did not start:\n%s", p.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code (-1 when
// killed by a signal).
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("skrytka did not exit within %v", timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// runOnce runs skrytka to completion with stdin and returns its exit code
// and output.
func runOnce(t *testing.T, dir, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

// selfSignedClient trusts the certificate skrytka generated in dataDir.
func selfSignedClient(t *testing.T, dataDir string) *tls.Config {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(dataDir, "tls", listen.SelfSignedCert))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("bad certificate file")
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func TestServeStartAcceptStop(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfg, p := writeConfig(t, dir, dataDir, "[log]\nformat = \"json\"\n")
	srv := start(t, dir, "serve", "-config", cfg)
	srv.waitStarted(t)

	testharness.Dial(t, p.imap).Expect("* OK")
	testharness.Dial(t, p.pop3).Expect("+OK")
	testharness.Dial(t, p.smtp).Expect("220 ")
	testharness.Dial(t, p.lmtp).Expect("220 ")
	tlsCfg := selfSignedClient(t, dataDir)
	testharness.DialTLS(t, p.imaps, tlsCfg).Expect("* OK")
	testharness.DialTLS(t, p.pop3s, tlsCfg).Expect("+OK")
	testharness.Dial(t, p.sub).Expect("220 ")
	testharness.DialTLS(t, p.subs, tlsCfg).Expect("220 ")
	for _, want := range []string{p.imap, p.imaps, p.pop3, p.pop3s, p.smtp, p.lmtp, p.sub, p.subs} {
		if !strings.Contains(srv.stdout.String(), want) {
			t.Errorf("start-up output does not list %s:\n%s", want, srv.stdout)
		}
	}

	// SIGHUP reloads the certificate and keeps serving.
	srv.signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.stderr.String(), "tls certificate reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("no reload logged after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	testharness.Dial(t, p.imap).Expect("* OK")

	// A second server on the same data directory stops at start-up.
	cfg2 := filepath.Join(dir, "second.toml")
	os.WriteFile(cfg2, []byte(quietConfig(dataDir, nil, "")), 0o644)
	if code, _, errOut := runOnce(t, dir, "", "serve", "-config", cfg2); code != 2 || !strings.Contains(errOut, "in use") {
		t.Errorf("second server on the same data_dir: exit %d, %q", code, errOut)
	}

	srv.signal(t, syscall.SIGTERM)
	if code := srv.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d", code)
	}
	logs := srv.stderr.String()
	for _, want := range []string{`"msg":"conn open"`, `"msg":"conn close"`, `"msg":"shutting down`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(logs, "goroutine ") || strings.Contains(logs, "panic") {
		t.Errorf("panic in log:\n%s", logs)
	}
}

// TestShutdownFinishesInFlight: after SIGTERM a message in the middle of
// DATA may still be completed (and acknowledged); then the process exits.
func TestShutdownFinishesInFlight(t *testing.T) {
	dir := t.TempDir()
	cfg, p := writeConfig(t, dir, filepath.Join(dir, "data"), "")
	if code, _, e := runOnce(t, dir, "longpassword\n", "user", "add", "rcpt@localhost", "-password-stdin", "-config", cfg); code != 0 {
		t.Fatalf("user add: %d %s", code, e)
	}
	srv := start(t, dir, "serve", "-config", cfg)
	srv.waitStarted(t)
	c := testharness.Dial(t, p.lmtp)
	c.Expect("220 ")
	c.Send("LHLO test")
	c.ExpectUntil("250 ")
	c.Send("MAIL FROM:<a@example.org>")
	c.Expect("250 ")
	c.Send("RCPT TO:<rcpt@localhost>")
	c.Expect("250 ")
	c.Send("DATA")
	c.Expect("354 ")
	c.Write("Subject: in flight\r\n\r\nfirst half\r\n")

	srv.signal(t, syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	select {
	case <-srv.done:
		t.Fatal("exited while a message was in flight")
	default:
	}
	c.Write("second half\r\n.\r\n")
	c.Expect("250 ")
	if code := srv.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
}

// TestSecondSignalExitsAtOnce: a second SIGTERM does not wait for the
// grace period that a message in flight would otherwise get.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	dir := t.TempDir()
	cfg, p := writeConfig(t, dir, filepath.Join(dir, "data"), "")
	if code, _, e := runOnce(t, dir, "longpassword\n", "user", "add", "rcpt@localhost", "-password-stdin", "-config", cfg); code != 0 {
		t.Fatalf("user add: %d %s", code, e)
	}
	srv := start(t, dir, "serve", "-config", cfg)
	srv.waitStarted(t)
	c := testharness.Dial(t, p.lmtp)
	c.Expect("220 ")
	c.Send("LHLO test")
	c.ExpectUntil("250 ")
	c.Send("MAIL FROM:<a@example.org>")
	c.Expect("250 ")
	c.Send("RCPT TO:<rcpt@localhost>")
	c.Expect("250 ")
	c.Send("DATA")
	c.Expect("354 ")
	c.Write("Subject: never finished\r\n\r\n")

	srv.signal(t, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.stderr.String(), "shutting down") {
		if time.Now().After(deadline) {
			t.Fatal("no shutdown logged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case <-srv.done:
		t.Fatal("exited before the grace period although a message was in flight")
	default:
	}
	t0 := time.Now()
	srv.signal(t, syscall.SIGTERM)
	srv.wait(t, 5*time.Second)
	if el := time.Since(t0); el > 3*time.Second {
		t.Fatalf("second signal took %v", el)
	}
}

// quietConfig builds a config in which every listener is off except what
// the overrides set. Each override is "section.key = value" (section ""
// for the top level) and replaces the key's line; raw is appended as is.
func quietConfig(dataDir string, overrides []string, raw string) string {
	order := []string{"", "imap", "pop3", "smtp", "lmtp", "submission", "tls"}
	lines := map[string][]string{
		"":           {fmt.Sprintf("data_dir = %q", dataDir)},
		"imap":       {`listen = ""`, `tls_listen = ""`},
		"pop3":       {`listen = ""`, `tls_listen = ""`},
		"smtp":       {`listen = ""`},
		"lmtp":       {`listen = ""`},
		"submission": {`listen = ""`, `tls_listen = ""`},
	}
	for _, o := range overrides {
		key, val, _ := strings.Cut(o, " = ")
		sec, k := "", key
		if i := strings.IndexByte(key, '.'); i >= 0 {
			sec, k = key[:i], key[i+1:]
		}
		replaced := false
		for i, l := range lines[sec] {
			if strings.HasPrefix(l, k+" = ") {
				lines[sec][i], replaced = k+" = "+val, true
			}
		}
		if !replaced {
			lines[sec] = append(lines[sec], k+" = "+val)
		}
	}
	var b strings.Builder
	for _, sec := range order {
		if sec != "" {
			if len(lines[sec]) == 0 {
				continue
			}
			b.WriteString("[" + sec + "]\n")
		}
		for _, l := range lines[sec] {
			b.WriteString(l + "\n")
		}
	}
	return b.String() + raw
}

func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	busy := testharness.FreeAddrs(t, 1)[0]
	holder, err := net.Listen("tcp", busy)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	for _, tc := range []struct {
		name      string
		overrides []string // config lines (see quietConfig); nil and raw "": no config
		raw       string
		args      []string // after "serve" (the config path is added when there is one)
		want      []string // substrings of the one error line
	}{
		{"unknown key", []string{`imap.lisen = "127.0.0.1:1"`}, "", nil, []string{"imap.lisen", "unknown key", "bad.toml:5"}},
		{"bad value", []string{`smtp.max_message_size = "lots"`}, "", nil, []string{"smtp.max_message_size", "bad.toml"}},
		{"bad address", []string{`pop3.listen = "localhost"`}, "", nil, []string{"pop3.listen", "bad address"}},
		{"syntax", nil, "[imap\n", nil, []string{"bad.toml"}},
		{"missing file", nil, "", []string{"-config", "nope.toml"}, []string{"nope.toml", "no such file"}},
		{"bad flag", nil, "", []string{"-verbose"}, []string{"-verbose"}},
		{"extra argument", nil, "", []string{"now"}, []string{"now"}},
		{"port in use", []string{`imap.listen = "` + busy + `"`}, "", nil, []string{"imap listener", busy, "address already in use"}},
		{"unreadable cert", []string{`tls.cert_file = "missing-cert.pem"`, `tls.key_file = "missing-key.pem"`}, "", nil, []string{"missing-cert.pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve"}, tc.args...)
			if tc.overrides != nil || tc.raw != "" {
				sub := t.TempDir()
				cfg := filepath.Join(sub, "bad.toml")
				text := quietConfig(filepath.Join(sub, "data"), tc.overrides, tc.raw)
				if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-config", cfg)
			}
			code, _, stderr := runOnce(t, dir, "", args...)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			line := strings.TrimSpace(stderr)
			if strings.Count(line, "\n") != 0 || !strings.HasPrefix(line, "skrytka: ") {
				t.Fatalf("want one line starting with \"skrytka: \", got:\n%s", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("error line %q lacks %q", line, w)
				}
			}
		})
	}
}

var passwordLine = regexp.MustCompile(`password: (\S+)`)

// TestDemoTwice runs `serve -demo` twice in the same directory: the second
// run reuses the account, its password and its mail.
func TestDemoTwice(t *testing.T) {
	dir := t.TempDir()
	cfg, p := writeConfig(t, dir, "", "")
	var passwords []string
	for run := 0; run < 2; run++ {
		srv := start(t, dir, "serve", "-demo", "-config", cfg)
		srv.waitStarted(t)
		m := passwordLine.FindStringSubmatch(srv.stdout.String())
		if m == nil {
			t.Fatalf("run %d printed no password:\n%s", run, srv.stdout)
		}
		passwords = append(passwords, m[1])
		out := srv.stdout.String()
		if !strings.Contains(out, "demo@localhost") || !strings.Contains(out, p.imap) {
			t.Errorf("run %d banner lacks the account or the IMAP port:\n%s", run, out)
		}

		c := testharness.Dial(t, p.imap)
		c.Expect("* OK")
		c.Send("a LOGIN demo@localhost %s", m[1])
		c.ExpectUntil("a OK")
		c.Send("b SELECT INBOX")
		lines := c.ExpectUntil("b ")
		if !strings.HasPrefix(lines[len(lines)-1], "b OK") || !contains(lines, "* 1 EXISTS") {
			t.Fatalf("run %d: SELECT INBOX: %q", run, lines)
		}
		c.Send("c LOGOUT")
		c.ExpectUntil("c OK")

		srv.signal(t, syscall.SIGINT)
		if code := srv.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("run %d exit code %d", run, code)
		}
	}
	if passwords[0] != passwords[1] {
		t.Errorf("second run printed another password: %q vs %q", passwords[0], passwords[1])
	}
	fi, err := os.Stat(filepath.Join(dir, "skrytka-data", "demo-password"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("demo password file: %v, %v", fi, err)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	cfg, p := writeConfig(t, dir, filepath.Join(dir, "data"), "domains = [\"example.org\"]\n")
	// domains must be at the top level: move it before the first table.
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte("domains = [\"example.org\"]\n"+strings.Replace(string(text), "domains = [\"example.org\"]\n", "", 1)), 0o644)

	run := func(stdin string, wantCode int, args ...string) string {
		t.Helper()
		code, out, errOut := runOnce(t, dir, stdin, append(args, "-config", cfg)...)
		if code != wantCode {
			t.Fatalf("skrytka %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out, errOut)
		}
		if wantCode == 2 && strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("skrytka %q: more than one error line:\n%s", args, errOut)
		}
		return out + errOut
	}
	run("first-password\n", 0, "user", "add", "Bob@Example.org", "-password-stdin")
	if out := run("first-password\n", 2, "user", "add", "bob@example.org", "-password-stdin"); !strings.Contains(out, "already exists") {
		t.Errorf("duplicate add: %s", out)
	}
	if out := run("first-password\n", 2, "user", "add", "carol@elsewhere.net", "-password-stdin"); !strings.Contains(out, "not in the config's domains") {
		t.Errorf("foreign domain: %s", out)
	}
	run("short\n", 2, "user", "add", "dave@example.org", "-password-stdin")
	run("", 2, "user", "add", "dave@example.org") // no terminal, no -password-stdin
	run("", 2, "user", "add", "not-an-address", "-password-stdin")
	if out := run("", 0, "user", "list"); !strings.Contains(out, "bob@example.org") {
		t.Fatalf("list: %s", out)
	}
	run("second-password\n", 0, "user", "passwd", "bob@example.org", "-password-stdin")
	run("second-password\n", 2, "user", "passwd", "nobody@example.org", "-password-stdin")

	// The new password works over IMAP, the old one does not.
	srv := start(t, dir, "serve", "-config", cfg)
	srv.waitStarted(t)
	c := testharness.Dial(t, p.imap)
	c.Expect("* OK")
	c.Send("a LOGIN bob@example.org first-password")
	if l := c.ExpectUntil("a "); !strings.HasPrefix(l[len(l)-1], "a NO") {
		t.Fatalf("old password: %q", l)
	}
	c.Send("b LOGIN bob@example.org second-password")
	if l := c.ExpectUntil("b "); !strings.HasPrefix(l[len(l)-1], "b OK") {
		t.Fatalf("new password: %q", l)
	}

	// While the server holds the embedded store, the user commands go
	// through its admin socket.
	run("carol-password\n", 0, "user", "add", "carol@example.org", "-password-stdin")
	if out := run("carol-password\n", 2, "user", "add", "carol@example.org", "-password-stdin"); !strings.Contains(out, "already exists") {
		t.Errorf("duplicate add via socket: %s", out)
	}
	run("short\n", 2, "user", "passwd", "carol@example.org", "-password-stdin")
	if out := run("", 0, "user", "list"); !strings.Contains(out, "bob@example.org") || !strings.Contains(out, "carol@example.org") {
		t.Fatalf("list via socket: %s", out)
	}
	c2 := testharness.Dial(t, p.imap)
	c2.Expect("* OK")
	c2.Send("a LOGIN carol@example.org carol-password")
	if l := c2.ExpectUntil("a "); !strings.HasPrefix(l[len(l)-1], "a OK") {
		t.Fatalf("user added via socket cannot log in: %q", l)
	}
	run("", 0, "user", "policy", "carol@example.org", "trash")
	run("", 2, "user", "policy", "carol@example.org", "shred")
	if out := run("", 0, "user", "list"); !strings.Contains(out, "carol@example.org\t") || !strings.Contains(out, "\ttrash") {
		t.Fatalf("list after policy: %s", out)
	}
	// A storage limit set through the socket is what IMAP QUOTA shows.
	run("", 0, "user", "quota", "carol@example.org", "2M")
	run("", 2, "user", "quota", "carol@example.org", "12X")
	run("", 2, "user", "quota", "nobody@example.org", "1M")
	if out := run("", 0, "user", "list"); !strings.Contains(out, "carol@example.org\t0\t2097152\ttrash") {
		t.Fatalf("list after quota: %s", out)
	}
	c2.Send("b GETQUOTAROOT INBOX")
	if l := c2.ExpectUntil("b "); len(l) != 3 || l[1] != `* QUOTA "" (STORAGE 0 2048)` {
		t.Fatalf("GETQUOTAROOT after user quota: %q", l)
	}
	run("", 0, "user", "quota", "carol@example.org", "none")
	if out := run("", 0, "user", "list"); !strings.Contains(out, "carol@example.org\t0\tnone\ttrash") {
		t.Fatalf("list after quota none: %s", out)
	}
	run("", 0, "user", "del", "carol@example.org")
	run("", 2, "user", "del", "carol@example.org")
	srv.signal(t, syscall.SIGTERM)
	srv.wait(t, 20*time.Second)

	// Without a server, on the store directly.
	run("", 0, "user", "quota", "bob@example.org", "1g")
	if out := run("", 0, "user", "list"); !strings.Contains(out, "bob@example.org\t") || !strings.Contains(out, "\t1073741824\t") {
		t.Fatalf("list after a direct quota: %s", out)
	}

	run("", 0, "user", "del", "bob@example.org")
	run("", 2, "user", "del", "bob@example.org")
	if out := run("", 0, "user", "list"); strings.Contains(out, "bob@") {
		t.Fatalf("list after del: %s", out)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runOnce(t, t.TempDir(), "", "version"); code != 0 || !strings.HasPrefix(out, "skrytka ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := runOnce(t, t.TempDir(), "", "help"); code != 0 || !strings.Contains(out, "serve -demo") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, _, errOut := runOnce(t, t.TempDir(), ""); code != 2 || !strings.Contains(errOut, "no command") {
		t.Errorf("no command: %d %q", code, errOut)
	}
	if code, _, errOut := runOnce(t, t.TempDir(), "", "frobnicate"); code != 2 || !strings.Contains(errOut, "frobnicate") {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
}

// TestSubmissionQueue: a message submitted for another domain is queued
// (the smarthost is unreachable), shows in `skrytka queue list` while the
// server runs, and `queue drop` removes it. A DKIM key made with `dkim
// generate` is loaded at start.
func TestSubmissionQueue(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfg, p := writeConfig(t, dir, dataDir, "")
	if code, _, e := runOnce(t, dir, "sender-password\n", "user", "add", "sender@localhost", "-password-stdin", "-config", cfg); code != 0 {
		t.Fatalf("user add: %d %s", code, e)
	}
	code, out, errOut := runOnce(t, dir, "", "dkim", "generate", "localhost", "-config", cfg)
	if code != 0 || !strings.Contains(out, "skrytka._domainkey.localhost. IN TXT \"v=DKIM1; k=rsa; p=") {
		t.Fatalf("dkim generate: %d %s %s", code, out, errOut)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "dkim", "localhost", "skrytka.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dkim key file: %v %v", fi, err)
	}
	if code, _, _ := runOnce(t, dir, "", "dkim", "generate", "localhost", "-config", cfg); code != 2 {
		t.Fatalf("second dkim generate: exit %d, want 2 (key exists)", code)
	}
	if code, _, _ := runOnce(t, dir, "", "dkim", "generate", "example.com", "-config", cfg); code != 2 {
		t.Fatalf("dkim generate for a foreign domain: exit %d, want 2", code)
	}

	srv := start(t, dir, "serve", "-config", cfg)
	srv.waitStarted(t)
	c := testharness.Dial(t, p.sub)
	c.Expect("220 ")
	c.Send("EHLO client.test")
	c.ExpectUntil("250 ")
	c.Send("AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00sender@localhost\x00sender-password")))
	c.Expect("235 ")
	c.Send("MAIL FROM:<sender@localhost>")
	c.Expect("250 ")
	c.Send("RCPT TO:<someone@remote.test>")
	c.Expect("250 ")
	c.Send("DATA")
	c.Expect("354 ")
	c.Write("From: sender@localhost\r\nTo: someone@remote.test\r\nSubject: out\r\n\r\nhello\r\n.\r\n")
	c.Expect("250 ")
	c.Send("QUIT")

	code, out, errOut = runOnce(t, dir, "", "queue", "list", "-config", cfg)
	if code != 0 || !strings.Contains(out, "someone@remote.test") || !strings.Contains(out, "sender@localhost") {
		t.Fatalf("queue list: %d\n%s%s", code, out, errOut)
	}
	id := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1])[0]
	if code, _, e := runOnce(t, dir, "", "queue", "drop", "999999", "-config", cfg); code != 2 {
		t.Fatalf("drop of a missing entry: exit %d %s", code, e)
	}
	if code, _, e := runOnce(t, dir, "", "queue", "drop", id, "-config", cfg); code != 0 {
		t.Fatalf("queue drop %s: %d %s", id, code, e)
	}
	if _, out, _ := runOnce(t, dir, "", "queue", "list", "-config", cfg); strings.Contains(out, "remote.test") {
		t.Fatalf("entry still listed after drop:\n%s", out)
	}
	// The queue's system account is not a user.
	if _, out, _ := runOnce(t, dir, "", "user", "list", "-config", cfg); strings.Contains(out, "invalid") {
		t.Fatalf("user list shows a system account:\n%s", out)
	}
	srv.signal(t, syscall.SIGTERM)
	if code := srv.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// ptyScript runs argv[1] with argv[3:] on a pseudo-terminal, answers
// each prompt ending in "assword:" with the next line of argv[2] once echo
// is off (if echo never goes off, the answer is echoed and the test sees
// it), and prints everything the command wrote plus its exit status.
const ptyScript = `
import os, pty, sys, select, time, termios
answers = sys.argv[2].split("\n")
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:2] + sys.argv[3:])
out = b""
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 1)
    if not r:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if chunk.rstrip().endswith(b"assword:") and answers:
        # Type only once the program has turned echo off, as a person
        # would after seeing the prompt (the pty shares its termios).
        t0 = time.time()
        while termios.tcgetattr(fd)[3] & termios.ECHO and time.time() - t0 < 10:
            time.sleep(0.01)
        os.write(fd, (answers.pop(0) + "\n").encode())
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.stdout.write("\nEXIT=%d\n" % os.waitstatus_to_exitcode(status))
`

// TestPasswordPromptOnTerminal: without -password-stdin, user add asks
// twice on the terminal, without echoing what is typed.
func TestPasswordPromptOnTerminal(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	dir := t.TempDir()
	cfg, _ := writeConfig(t, dir, filepath.Join(dir, "data"), "")
	run := func(answers string, args ...string) string {
		t.Helper()
		cmd := exec.Command("python3", append([]string{"-c", ptyScript, binary, answers}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pty run: %v\n%s", err, out)
		}
		return string(out)
	}
	out := run("typed-secret-1\ntyped-secret-1", "user", "add", "tty@localhost", "-config", cfg)
	if !strings.Contains(out, "EXIT=0") || strings.Count(out, "assword:") != 2 || !strings.Contains(out, "added tty@localhost") {
		t.Fatalf("prompted add:\n%s", out)
	}
	if strings.Contains(out, "typed-secret-1") {
		t.Fatalf("password echoed:\n%s", out)
	}
	out = run("one-password\nanother-password", "user", "passwd", "tty@localhost", "-config", cfg)
	if !strings.Contains(out, "EXIT=2") || !strings.Contains(out, "differ") {
		t.Fatalf("mismatched passwords:\n%s", out)
	}
}

// TestMXDeliveryWithoutAuthChecks: mail to a local user through the MX
// port lands in the INBOX; with smtp.auth_checks = false no DNS lookup is
// made and no Authentication-Results header is added.
func TestMXDeliveryWithoutAuthChecks(t *testing.T) {
	dir := t.TempDir()
	cfg, p := writeConfig(t, dir, filepath.Join(dir, "data"), "")
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(text), "[smtp]\n", "[smtp]\nauth_checks = false\n", 1)), 0o644)
	if code, _, e := runOnce(t, dir, "rcpt-password\n", "user", "add", "rcpt@localhost", "-password-stdin", "-config", cfg); code != 0 {
		t.Fatalf("user add: %d %s", code, e)
	}
	srv := start(t, dir, "serve", "-config", cfg)
	srv.waitStarted(t)
	c := testharness.Dial(t, p.smtp)
	c.Expect("220 ")
	c.Send("EHLO sender.test")
	c.ExpectUntil("250 ")
	c.Send("MAIL FROM:<someone@sender.test>")
	c.Expect("250 ")
	c.Send("RCPT TO:<rcpt+tag@localhost>")
	c.Expect("250 ")
	c.Send("DATA")
	c.Expect("354 ")
	c.Write("From: someone@sender.test\r\nSubject: via mx\r\n\r\nbody line\r\n.\r\n")
	c.Expect("250 ")
	c.Send("QUIT")

	m := testharness.Dial(t, p.imap)
	m.Expect("* OK")
	m.Send("a LOGIN rcpt@localhost rcpt-password")
	m.ExpectUntil("a OK")
	m.Send("b SELECT INBOX")
	if l := m.ExpectUntil("b "); !contains(l, "* 1 EXISTS") {
		t.Fatalf("SELECT: %q", l)
	}
	m.Send("c FETCH 1 BODY.PEEK[HEADER]")
	hdr := strings.Join(m.ExpectUntil("c "), "\n")
	if !strings.Contains(hdr, "Subject: via mx") || !strings.Contains(hdr, "Received: ") {
		t.Fatalf("header:\n%s", hdr)
	}
	if strings.Contains(hdr, "Authentication-Results:") {
		t.Fatalf("Authentication-Results added although auth_checks = false:\n%s", hdr)
	}
	srv.signal(t, syscall.SIGTERM)
	srv.wait(t, 20*time.Second)
}

// TestMigrate: `skrytka migrate` on the embedded store creates and migrates
// it and exits 0; a stray argument is a usage error (exit 2); the store it
// made then serves.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg, p := writeConfig(t, dir, data, "")
	code, out, errOut := runOnce(t, dir, "", "migrate", "-config", cfg)
	if code != 0 || !strings.Contains(out, "is current") {
		t.Fatalf("migrate: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("migrate made no store: %v", err)
	}
	if code, _, errOut := runOnce(t, dir, "", "migrate", "extra", "-config", cfg); code != 2 || !strings.Contains(errOut, "takes no arguments") {
		t.Fatalf("migrate extra: exit %d, stderr %q", code, errOut)
	}
	srv := start(t, dir, "serve", "-config", cfg)
	srv.waitStarted(t)
	testharness.Dial(t, p.imap).Expect("* OK")
}
