package realclients

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/testharness"
)

// binary is the skrytka built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testharness.MainWithBinary(m, &binary))
}

// clientTimeout bounds every run of a client binary.
const clientTimeout = 60 * time.Second

// password is every test account's password.
const password = "real-clients-password"

// needClient returns the path of a client binary, or skips the test when
// it is not installed (fails with SKRYTKA_REQUIRE_CLIENTS=1). pkg is the
// Debian package that provides it.
func needClient(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SKRYTKA_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("%s not installed (Debian package %s) and SKRYTKA_REQUIRE_CLIENTS=1", name, pkg)
		}
		t.Skipf("%s not installed (Debian package %s)", name, pkg)
	}
	return path
}

// server is a running `skrytka serve` with its own ports and data_dir.
type server struct {
	dir, dataDir, config string
	// Listener addresses ("127.0.0.1:port").
	imap, imaps, pop3, pop3s, lmtp, sub, subs string
	port                                      map[string]string // address → port only
	stderr                                    *testharness.SyncBuffer
}

// serverConfig holds extra config lines, each put under its table.
type serverConfig struct {
	POP3 string // under [pop3], e.g. `after_download = "trash"`
}

// startServer starts skrytka on free loopback ports. The server is stopped
// (SIGTERM) when the test ends, and its log is printed if the test failed.
// A port taken by another process between the pick and the bind (other
// test packages pick from the same range) makes it try again with new
// ports.
func startServer(t *testing.T, extra serverConfig) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, err := tryStartServer(t, extra)
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("start-up attempt %d: %v", attempt, err)
	}
}

func tryStartServer(t *testing.T, extra serverConfig) (*server, error) {
	t.Helper()
	dir := t.TempDir()
	a := testharness.FreeAddrs(t, 9)
	s := &server{
		dir: dir, dataDir: filepath.Join(dir, "data"), config: filepath.Join(dir, "skrytka.toml"),
		imap: a[0], imaps: a[1], pop3: a[2], pop3s: a[3], lmtp: a[5], sub: a[6], subs: a[7],
		stderr: &testharness.SyncBuffer{},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\nhostname = \"localhost\"\ndomains = [\"localhost\"]\n", s.dataDir)
	fmt.Fprintf(&b, "[imap]\nlisten = %q\ntls_listen = %q\n", s.imap, s.imaps)
	fmt.Fprintf(&b, "[pop3]\nlisten = %q\ntls_listen = %q\n%s\n", s.pop3, s.pop3s, extra.POP3)
	// The MX never gets mail here; auth_checks off all the same, so that
	// nothing could ever ask the machine's (non-loopback) resolver.
	fmt.Fprintf(&b, "[smtp]\nlisten = %q\nauth_checks = false\n", a[4])
	fmt.Fprintf(&b, "[lmtp]\nlisten = %q\n", s.lmtp)
	fmt.Fprintf(&b, "[submission]\nlisten = %q\ntls_listen = %q\n", s.sub, s.subs)
	// Mail for other domains would go to a loopback port nobody listens
	// on, and stay queued.
	fmt.Fprintf(&b, "[queue]\nsmarthost = %q\n", a[8])
	fmt.Fprintf(&b, "[log]\nlevel = \"debug\"\n")
	if err := os.WriteFile(s.config, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(binary, "serve", "-config", s.config)
	cmd.Dir = dir
	cmd.Stderr = s.stderr
	cmd.Stdout = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	started := false
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if started && t.Failed() {
			t.Logf("skrytka log:\n%s", tail(s.stderr.String(), 200))
		}
	})
	deadline := time.After(60 * time.Second)
	for !strings.Contains(s.stderr.String(), "skrytka started") {
		select {
		case <-done:
			return nil, fmt.Errorf("skrytka exited during start-up:\n%s", s.stderr)
		case <-deadline:
			return nil, fmt.Errorf("skrytka did not start:\n%s", s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	started = true
	return s, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// portOf returns the port part of a "host:port" address.
func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	return p
}

// addUser creates an account through the running server's admin socket.
func (s *server) addUser(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "user", "add", addr, "-password-stdin", "-config", s.config)
	cmd.Dir = s.dir
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skrytka user add %s: %v\n%s", addr, err, out)
	}
}

// setPolicy sets an account's POP3 after-download policy with
// `skrytka user policy`, through the admin socket.
func (s *server) setPolicy(t *testing.T, addr, policy string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "user", "policy", addr, policy, "-config", s.config)
	cmd.Dir = s.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skrytka user policy %s %s: %v\n%s", addr, policy, err, out)
	}
}

// caFile is the path of the self-signed certificate the server generated,
// which clients are told to trust.
func (s *server) caFile() string {
	return filepath.Join(s.dataDir, "tls", listen.SelfSignedCert)
}

// tlsConfig trusts the server's generated certificate.
func (s *server) tlsConfig(t *testing.T) *tls.Config {
	t.Helper()
	pemBytes, err := os.ReadFile(s.caFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in " + s.caFile())
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// deliver sends msg to rcpt over LMTP and fails unless it was accepted.
func (s *server) deliver(t *testing.T, rcpt, msg string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.lmtp, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClientLMTP(nc)
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("sender@example.org", []string{rcpt}, strings.NewReader(msg)); err != nil {
		t.Fatalf("LMTP delivery to %s: %v", rcpt, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// imapLogin opens an IMAP session (plain TCP on loopback) for user.
func (s *server) imapLogin(t *testing.T, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.imap, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("IMAP login %s: %v", user, err)
	}
	return c
}

// rawIMAP opens an IMAP session for user with raw lines, for names that
// go-imap's client cannot send as they are (see runRaw).
func (s *server) rawIMAP(t *testing.T, user string) *testharness.LineConn {
	t.Helper()
	lc := testharness.Dial(t, s.imap)
	lc.Expect("* OK")
	runRaw(t, lc, fmt.Sprintf("LOGIN %q %q", user, password))
	return lc
}

// runRaw sends one command (a literal, if any, written inline with
// LITERAL+) and returns the untagged lines of its answer; anything but OK
// fails the test. go-imap's imapclient, talking to a server that
// advertises IMAP4rev2, sends mailbox names as raw UTF-8 with "&" escaped
// as "&-" without enabling UTF-8 first, so a name with "&" in it needs
// this path.
func runRaw(t *testing.T, lc *testharness.LineConn, cmd string) []string {
	t.Helper()
	lc.Write("r1 " + cmd + "\r\n")
	lines := lc.ExpectUntil("r1 ")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "r1 OK") {
		t.Fatalf("%s: %s", cmd, last)
	}
	return lines[:len(lines)-1]
}

// stored is one message as the server has it.
type stored struct {
	UID   imap.UID
	Flags []string  // sorted, without \Recent
	Raw   []byte    // BODY.PEEK[]
	Date  time.Time // INTERNALDATE
}

// Subject returns the message's Subject header (unfolded, undecoded).
func (m stored) Subject() string { return headerValue(m.Raw, "Subject") }

// hasFlag reports whether the message has flag f.
func (m stored) hasFlag(f imap.Flag) bool {
	for _, g := range m.Flags {
		if strings.EqualFold(g, string(f)) {
			return true
		}
	}
	return false
}

// mailbox returns the messages of a mailbox, keyed by Subject, read with
// a fresh IMAP session so that nothing is cached. It never sets \Seen.
func (s *server) mailbox(t *testing.T, user, name string) map[string]stored {
	t.Helper()
	c := s.imapLogin(t, user)
	defer c.Logout()
	sel, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("EXAMINE %q: %v", name, err)
	}
	out := map[string]stored{}
	if sel.NumMessages == 0 {
		return out
	}
	all := imap.SeqSet{}
	all.AddRange(1, 0) // 1:*
	msgs, err := c.Fetch(all, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH in %q: %v", name, err)
	}
	for _, m := range msgs {
		st := stored{UID: m.UID, Date: m.InternalDate}
		for _, f := range m.Flags {
			if strings.EqualFold(string(f), `\Recent`) {
				continue // depends on which session looked first
			}
			st.Flags = append(st.Flags, string(f))
		}
		sort.Strings(st.Flags)
		for _, b := range m.BodySection {
			st.Raw = b.Bytes
		}
		subj := st.Subject()
		if _, dup := out[subj]; dup {
			t.Fatalf("mailbox %q has two messages with subject %q", name, subj)
		}
		out[subj] = st
	}
	return out
}

// mailboxNames lists the account's mailboxes.
func (s *server) mailboxNames(t *testing.T, user string) []string {
	t.Helper()
	c := s.imapLogin(t, user)
	defer c.Logout()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range boxes {
		names = append(names, b.Mailbox)
	}
	sort.Strings(names)
	return names
}

// appendMsg appends msg to mailbox with flags.
func (s *server) appendMsg(t *testing.T, user, mailbox, msg string, flags ...imap.Flag) {
	t.Helper()
	s.appendAll(t, user, mailbox, []string{msg}, flags...)
}

// appendAll appends msgs to mailbox in one session, each with flags.
func (s *server) appendAll(t *testing.T, user, mailbox string, msgs []string, flags ...imap.Flag) {
	t.Helper()
	c := s.imapLogin(t, user)
	defer c.Logout()
	for _, msg := range msgs {
		cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags})
		if _, err := cmd.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("APPEND to %q: %v", mailbox, err)
		}
	}
}

// runClient runs a client binary under clientTimeout with env added to a
// minimal environment (HOME must be among it), in dir. It returns the
// combined output and logs it when the test fails; a non-zero exit fails
// the test unless okCodes lists it.
func runClient(t *testing.T, dir string, env []string, okCodes []int, name string, args ...string) string {
	t.Helper()
	return runClientInput(t, dir, env, "", okCodes, name, args...)
}

// runClientInput is runClient with stdin as the client's standard input.
func runClientInput(t *testing.T, dir string, env []string, stdin string, okCodes []int, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "TZ=UTC"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out testharness.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A client that leaves a child holding the output open must not
	// keep the test waiting past its timeout.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	label := filepath.Base(name) + " " + strings.Join(args, " ")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of %s (%v):\n%s", label, time.Since(start).Round(time.Millisecond), tail(out.String(), 300))
		}
	})
	if ctx.Err() != nil {
		t.Fatalf("%s: timed out after %v", label, clientTimeout)
	}
	if err != nil {
		code := -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
		ok := false
		for _, c := range okCodes {
			ok = ok || c == code
		}
		if !ok {
			t.Fatalf("%s: %v", label, err)
		}
	}
	return out.String()
}

// message builds a test message with a unique subject. The body has a
// line starting with a dot (dot-stuffing in POP3 and SMTP), a non-ASCII
// line in UTF-8 (8bit), and pad bytes of filler to reach a size.
func message(from, to, subject string, pad int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n", from, to, subject)
	fmt.Fprintf(&b, "Message-ID: <%s@realclients.test>\r\n", strings.ReplaceAll(subject, " ", "."))
	b.WriteString("Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	fmt.Fprintf(&b, "Body of %s.\r\n.a line that starts with a dot\r\nGrüße aus Köln\r\n", subject)
	for i := 0; b.Len() < pad; i++ {
		fmt.Fprintf(&b, "filler line %06d of %s ..............................\r\n", i, subject)
	}
	b.WriteString("-- \r\nend\r\n")
	return b.String()
}

// headerValue returns the first value of header name in raw (lines may end
// in CRLF or LF), or "".
func headerValue(raw []byte, name string) string {
	hdr, _ := splitMessage(raw)
	var val string
	found := false
	for _, line := range strings.Split(strings.ReplaceAll(string(hdr), "\r\n", "\n"), "\n") {
		if found {
			if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				val += " " + strings.TrimSpace(line)
				continue
			}
			return val
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			val, found = strings.TrimSpace(v), true
		}
	}
	return val
}

// splitMessage splits a message into its header and body at the first
// empty line (CRLF or LF).
func splitMessage(raw []byte) (header, body []byte) {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	j := bytes.Index(raw, []byte("\n\n"))
	switch {
	case i >= 0 && (j < 0 || i < j):
		return raw[:i+2], raw[i+4:]
	case j >= 0:
		return raw[:j+1], raw[j+2:]
	}
	return raw, nil
}

// lf turns CRLF line ends into LF (clients that write Maildir files or
// pipe into an MDA use the local convention).
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }
