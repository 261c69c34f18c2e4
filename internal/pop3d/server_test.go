package pop3d

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

const testPassword = "correct horse battery staple"

// env is one test's store, account and running server.
type env struct {
	t     testing.TB
	st    store.Store
	acct  store.Account
	inbox store.Mailbox
	srv   *Server
	addr  string
	tls   *tls.Config // client config trusting the test certificate
	// certPEM is the server's self-signed certificate.
	certPEM []byte
}

// testLogger logs to the test output when -v is given, so failures show
// the server's side.
func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openStore opens a real embedded store in a temporary directory.
func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := embedded.Open(context.Background(), t.TempDir(), embedded.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// testHash is an argon2id hash of testPassword with tiny parameters, so
// that the many logins of the tests and fuzzers cost little. The format is
// the one auth.HashPassword writes; auth.VerifyPassword reads the
// parameters from it.
var testHash = func() string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(testPassword), salt, 1, 64, 1, 32)
	b64 := base64.RawStdEncoding
	h := fmt.Sprintf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s", argon2.Version, b64.EncodeToString(salt), b64.EncodeToString(key))
	if !auth.VerifyPassword(h, testPassword) {
		panic("test hash does not verify")
	}
	return h
}()

func createAccount(t testing.TB, st store.Store, address string) (store.Account, store.Mailbox) {
	t.Helper()
	ctx := context.Background()
	acct, err := st.CreateAccount(ctx, address, testHash)
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	inbox, err := st.Mailbox(ctx, acct.ID, store.InboxName)
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	return acct, inbox
}

// deliver appends a message to the account's INBOX and returns its UID.
func deliver(t testing.TB, st store.Store, acct store.Account, mbox store.MailboxID, body string) store.UID {
	t.Helper()
	ctx := context.Background()
	staged, err := st.Stage(ctx, strings.NewReader(body), 0)
	if err != nil {
		t.Fatalf("stage: %v", err)
	}
	res, err := st.Append(ctx, acct.ID, mbox, []store.AppendMessage{{Body: staged}})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res.UIDs[0]
}

// newEnv starts a server over a fresh store with one account,
// "user@example.org". mod may change the options before the server starts.
func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	st := openStore(t)
	acct, inbox := createAccount(t, st, "user@example.org")
	e := &env{t: t, st: st, acct: acct, inbox: inbox}
	serverTLS, clientTLS, certPEM := testTLS(t)
	e.tls, e.certPEM = clientTLS, certPEM
	opts := Options{
		Store: st,
		Auth: &auth.Authenticator{
			Store: st,
			// No waiting after failures in tests that do not test throttling.
			Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		},
		TLSConfig: serverTLS,
		Logger:    testLogger(t),
		Hostname:  "pop.example.org",
	}
	if mod != nil {
		mod(&opts)
	}
	e.srv = New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.serve(ln)
	return e
}

// serve runs the server on ln until the test ends, then checks that no
// panic was recovered.
func (e *env) serve(ln net.Listener) {
	t := e.t
	t.Helper()
	srv := e.srv
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		if n := srv.panics.Load(); n != 0 {
			t.Errorf("%d panics recovered", n)
		}
	})
}

// testTLS makes a self-signed certificate for the server and a client
// config that trusts it.
func testTLS(t testing.TB) (server, client *tls.Config, certPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := listen.GenerateSelfSigned("pop.example.org", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := newCertPool(t, certPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, ServerName: "pop.example.org", MinVersion: tls.VersionTLS12}, certPEM
}

// client is a raw line client for exact bytes.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func (e *env) dial() *client {
	e.t.Helper()
	return dialAddr(e.t, e.addr)
}

func dialAddr(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, nc: nc, br: bufio.NewReader(nc)}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// dialGreeted dials and reads the greeting.
func (e *env) dialGreeted() *client {
	e.t.Helper()
	c := e.dial()
	c.expectPrefix("+OK ")
	return c
}

// login dials, reads the greeting and logs in with USER/PASS.
func (e *env) login() *client {
	e.t.Helper()
	c := e.dialGreeted()
	c.cmd("USER " + e.acct.Address).expectPrefix("+OK")
	c.cmd("PASS " + testPassword).expectPrefix("+OK maildrop locked")
	return c
}

// send writes raw bytes.
func (c *client) send(s string) *client {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return c
}

// cmd sends one command line.
func (c *client) cmd(line string) *client {
	c.t.Helper()
	return c.send(line + "\r\n")
}

// line reads one response line, which must end with CRLF, and returns it
// without CRLF.
func (c *client) line() string {
	c.t.Helper()
	s, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		c.t.Fatalf("line %q does not end with CRLF", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

func (c *client) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.line()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got %q, want prefix %q", got, prefix)
	}
	return got
}

// multiline reads a multi-line body up to the terminating "." and returns
// the raw bytes between (still dot-stuffed, with CRLF).
func (c *client) multiline() string {
	c.t.Helper()
	var b strings.Builder
	for {
		s, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if s == ".\r\n" {
			return b.String()
		}
		b.WriteString(s)
	}
}

// lines reads a multi-line body as lines without CRLF.
func (c *client) lines() []string {
	c.t.Helper()
	s := c.multiline()
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")
}

// unstuff undoes dot-stuffing (RFC 1939 §3).
func unstuff(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		b.WriteString(strings.TrimPrefix(l, "."))
	}
	return b.String()
}

// expectClosed checks that the server closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.br.ReadString('\n')
	if err == nil {
		c.t.Fatalf("connection still open, got %q", s)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection still open after 10 s")
	}
}

// inboxUIDs returns the UIDs in the account's INBOX now.
func (e *env) inboxUIDs() []store.UID {
	e.t.Helper()
	_, uids, err := e.st.SelectState(context.Background(), e.acct.ID, e.inbox.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return uids
}

// messageFlags returns the flags of one INBOX message.
func (e *env) messageFlags(mbox store.MailboxID, uid store.UID) store.SysFlags {
	e.t.Helper()
	var flags store.SysFlags
	found := false
	err := e.st.Messages(context.Background(), e.acct.ID, mbox, store.UIDSetOf(uid), store.FetchOptions{}, func(m *store.Message) error {
		flags, found = m.Flags.Sys, true
		return nil
	})
	if err != nil || !found {
		e.t.Fatalf("message %d: found %v, err %v", uid, found, err)
	}
	return flags
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dialRaw(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, 2*time.Second)
}

func itoa(n int) string { return strconv.Itoa(n) }
