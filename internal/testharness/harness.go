package testharness

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

// EmbeddedStore opens the real embedded store in a fresh temporary
// directory, closed when the test ends.
func EmbeddedStore(t testing.TB) store.Store {
	t.Helper()
	st, err := embedded.Open(context.Background(), t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TLSConfigs returns a server configuration with a fresh self-signed
// certificate for localhost and 127.0.0.1 (TLS 1.2 minimum, as in
// production) and a client configuration that trusts exactly it.
func TLSConfigs(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	certPEM, keyPEM, err := listen.GenerateSelfSigned("localhost", time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("bad test certificate")
	}
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	client = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	return server, client
}

// FreeAddrs returns n distinct loopback addresses ("127.0.0.1:port") that
// were free a moment ago. Another process may take one before it is used;
// tests that start a subprocess on them accept that small race.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, 0, n)
	for i := 0; i < n; i++ {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return addrs
}

// WaitListening waits until addr accepts a TCP connection or the timeout
// passes.
func WaitListening(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening after %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LineConn is a line-oriented client for raw protocol tests: it sends
// exact bytes and reads CRLF-terminated lines, each read bounded by a
// deadline so a silent server fails the test instead of hanging it.
type LineConn struct {
	t       testing.TB
	conn    net.Conn
	r       *bufio.Reader
	Timeout time.Duration // per read; default 10 s
}

// Dial connects to addr (plain TCP).
func Dial(t testing.TB, addr string) *LineConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	lc := &LineConn{t: t, conn: c, r: bufio.NewReader(c), Timeout: 10 * time.Second}
	t.Cleanup(func() { c.Close() })
	return lc
}

// DialTLS connects to addr with implicit TLS.
func DialTLS(t testing.TB, addr string, cfg *tls.Config) *LineConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial tls %s: %v", addr, err)
	}
	lc := &LineConn{t: t, conn: c, r: bufio.NewReader(c), Timeout: 10 * time.Second}
	t.Cleanup(func() { c.Close() })
	return lc
}

// Conn returns the underlying connection.
func (l *LineConn) Conn() net.Conn { return l.conn }

// StartTLS upgrades the connection after the protocol's STARTTLS/STLS
// exchange. Bytes the server sent before the handshake and the client did
// not read are a test failure (they would be plaintext injection).
func (l *LineConn) StartTLS(cfg *tls.Config) {
	l.t.Helper()
	if n := l.r.Buffered(); n > 0 {
		l.t.Fatalf("%d unread plaintext bytes before TLS", n)
	}
	tc := tls.Client(l.conn, cfg)
	tc.SetDeadline(time.Now().Add(l.Timeout))
	if err := tc.Handshake(); err != nil {
		l.t.Fatalf("tls handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	l.conn, l.r = tc, bufio.NewReader(tc)
}

// Send writes one line; CRLF is appended.
func (l *LineConn) Send(format string, args ...any) {
	l.t.Helper()
	l.Write(fmt.Sprintf(format, args...) + "\r\n")
}

// Write writes raw bytes.
func (l *LineConn) Write(s string) {
	l.t.Helper()
	l.conn.SetWriteDeadline(time.Now().Add(l.Timeout))
	if _, err := l.conn.Write([]byte(s)); err != nil {
		l.t.Fatalf("write: %v", err)
	}
}

// ReadLine reads one line without its CRLF; a line without CRLF is a
// failure.
func (l *LineConn) ReadLine() string {
	l.t.Helper()
	l.conn.SetReadDeadline(time.Now().Add(l.Timeout))
	s, err := l.r.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read line: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		l.t.Fatalf("line without CRLF: %q", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// Expect reads one line and fails unless it starts with prefix.
func (l *LineConn) Expect(prefix string) string {
	l.t.Helper()
	s := l.ReadLine()
	if !strings.HasPrefix(s, prefix) {
		l.t.Fatalf("got %q, want a line starting with %q", s, prefix)
	}
	return s
}

// ExpectUntil reads lines until one starts with prefix and returns all
// lines read, the last one included.
func (l *LineConn) ExpectUntil(prefix string) []string {
	l.t.Helper()
	var lines []string
	for {
		s := l.ReadLine()
		lines = append(lines, s)
		if strings.HasPrefix(s, prefix) {
			return lines
		}
	}
}

// ExpectClosed fails unless the server closes the connection (after any
// lines it still sends) within the read timeout.
func (l *LineConn) ExpectClosed() {
	l.t.Helper()
	l.conn.SetReadDeadline(time.Now().Add(l.Timeout))
	for {
		if _, err := l.r.ReadString('\n'); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				l.t.Fatal("connection still open")
			}
			return
		}
	}
}

// Close closes the connection.
func (l *LineConn) Close() error { return l.conn.Close() }

// BuildBinary builds cmd/skrytka into dir and returns the binary's path.
// Black-box tests call it once (e.g. in TestMain) and run the binary as a
// subprocess.
func BuildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "skrytka")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/skrytka/skrytka/cmd/skrytka")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build cmd/skrytka: %w", err)
	}
	return bin, nil
}
