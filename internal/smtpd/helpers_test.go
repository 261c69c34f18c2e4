package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/mailauth"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

const testHost = "mx.skrytka.test"

// testEnv is a server on 127.0.0.1:0 over a real embedded store in a
// temporary directory, with accounts alice, bob and carol @skrytka.test.
type testEnv struct {
	t     testing.TB
	st    store.Store
	raw   *embedded.Store
	srv   *Server
	addr  string
	accts map[string]store.Account
	tls   *tls.Config // server side
	roots *x509.CertPool
	cert  []byte // PEM of the server certificate
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() || os.Getenv("SMTPD_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openStore opens a real embedded store in t.TempDir().
func openStore(t testing.TB) *embedded.Store {
	t.Helper()
	return openStoreOpts(t, embedded.Options{})
}

func openStoreOpts(t testing.TB, opts embedded.Options) *embedded.Store {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := embedded.Open(context.Background(), t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testTLS(t testing.TB) (*tls.Config, *x509.CertPool, []byte) {
	t.Helper()
	certPEM, keyPEM, err := listen.GenerateSelfSigned(testHost, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, pool, certPEM
}

// newEnv starts a server. wrap, if not nil, may decorate the store given
// to the server (never replace it: tests run against the real store).
func newEnv(t testing.TB, mode Mode, configure func(*Options), wrap ...func(store.Store) store.Store) *testEnv {
	t.Helper()
	return newEnvStore(t, openStore(t), mode, configure, wrap...)
}

func newEnvStore(t testing.TB, raw *embedded.Store, mode Mode, configure func(*Options), wrap ...func(store.Store) store.Store) *testEnv {
	t.Helper()
	e := &testEnv{t: t, raw: raw, st: raw, accts: map[string]store.Account{}}
	ctx := context.Background()
	for _, name := range []string{"alice", "bob", "carol"} {
		a, err := raw.CreateAccount(ctx, name+"@skrytka.test", "x")
		if err != nil {
			t.Fatal(err)
		}
		e.accts[name] = a
	}
	e.tls, e.roots, e.cert = testTLS(t)
	var st store.Store = raw
	for _, w := range wrap {
		st = w(st)
	}
	opts := Options{
		Mode:      mode,
		Store:     st,
		TLSConfig: e.tls,
		Logger:    testLogger(t),
		Hostname:  testHost,
		Domains:   []string{"skrytka.test", "Other-Local.test"},
		Aliases: map[string][]string{
			"postmaster@skrytka.test": {"alice@skrytka.test"},
			"team@skrytka.test":       {"alice@skrytka.test", "bob@skrytka.test", "nobody@skrytka.test"},
			"@other-local.test":       {"carol@skrytka.test"},
			"loop1@skrytka.test":      {"loop2@skrytka.test"},
			"loop2@skrytka.test":      {"loop1@skrytka.test"},
			"away@skrytka.test":       {"someone@elsewhere.test"},
		},
		Resolver: &zoneResolver,
	}
	if configure != nil {
		configure(&opts)
	}
	e.srv = New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		e.srv.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if n := e.srv.Panics(); n != 0 {
			t.Errorf("%d panics recovered", n)
		}
	})
	return e
}

// inbox returns the messages in an account's mailbox, oldest first.
func (e *testEnv) mailbox(name, mbox string) []string {
	e.t.Helper()
	ctx := context.Background()
	a := e.accts[name]
	m, err := e.raw.Mailbox(ctx, a.ID, mbox)
	if err != nil {
		e.t.Fatal(err)
	}
	_, uids, err := e.raw.SelectState(ctx, a.ID, m.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, uid := range uids {
		r, err := e.raw.OpenMessage(ctx, a.ID, m.ID, uid)
		if err != nil {
			e.t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func (e *testEnv) inbox(name string) []string { e.t.Helper(); return e.mailbox(name, "INBOX") }

// lineConn is a raw client for exact bytes.
type lineConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func (e *testEnv) dial() *lineConn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	lc := &lineConn{t: e.t, c: c, br: bufio.NewReader(c)}
	lc.expect("220 ")
	return lc
}

func (l *lineConn) send(s string) {
	l.t.Helper()
	l.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(l.c, s); err != nil {
		l.t.Fatal(err)
	}
}

// reply reads one (possibly multi-line) reply and returns it joined by "\n".
func (l *lineConn) reply() string {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var lines []string
	for {
		line, err := l.br.ReadString('\n')
		if err != nil {
			if len(lines) == 0 && line == "" {
				return "EOF"
			}
			l.t.Fatalf("reading reply after %q: %v", lines, err)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (l *lineConn) expect(prefix string) string {
	l.t.Helper()
	r := l.reply()
	if !strings.HasPrefix(r, prefix) {
		l.t.Fatalf("reply %q, want prefix %q", r, prefix)
	}
	return r
}

// cmd sends one command line and checks the reply's prefix.
func (l *lineConn) cmd(line, prefix string) string {
	l.t.Helper()
	l.send(line + "\r\n")
	return l.expect(prefix)
}

// expectClosed checks that the server closes the connection.
func (l *lineConn) expectClosed() {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := l.br.ReadString('\n')
	if err == nil {
		l.t.Fatalf("connection still open, read %q", b)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		l.t.Fatalf("connection not closed (timeout)")
	}
}

// zoneResolver is an empty DNS zone: every name is NXDOMAIN, so SPF and
// DMARC say "none" and no test touches the network.
var zoneResolver mailauth.Zone

// header returns the value of the first header field name in msg, or "".
func header(msg, name string) string {
	hdr, _, _ := strings.Cut(msg, "\r\n\r\n")
	lines := strings.Split(hdr, "\r\n")
	for i, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(k, name) {
			continue
		}
		for _, c := range lines[i+1:] {
			if c == "" || (c[0] != ' ' && c[0] != '\t') {
				break
			}
			v += "\r\n" + c
		}
		return strings.TrimSpace(v)
	}
	return ""
}

// fieldNames lists the header field names of msg in order.
func fieldNames(msg string) []string {
	hdr, _, _ := strings.Cut(msg, "\r\n\r\n")
	var names []string
	for _, l := range strings.Split(hdr, "\r\n") {
		if l == "" || l[0] == ' ' || l[0] == '\t' {
			continue
		}
		k, _, _ := strings.Cut(l, ":")
		names = append(names, k)
	}
	return names
}

func pemOf(e *testEnv) []byte { return e.cert }
