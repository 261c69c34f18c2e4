package imapd

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

const (
	testUser = "demo@localhost"
	testPass = "secret pass"
)

var (
	hashOnce sync.Once
	testHash string
)

func passwordHash(t testing.TB) string {
	hashOnce.Do(func() {
		h, err := auth.HashPassword(testPass)
		if err != nil {
			t.Fatal(err)
		}
		testHash = h
	})
	return testHash
}

type testServer struct {
	srv   *Server
	st    store.Store
	addr  string
	acct  store.Account
	ln    net.Listener
	opts  Options
	tlsCf *tls.Config
}

// newTestServer starts a server over a fresh embedded store on loopback.
func newTestServer(t testing.TB, mod ...func(*Options)) *testServer {
	t.Helper()
	ctx := context.Background()
	st, err := embedded.Open(ctx, t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.CreateAccount(ctx, testUser, passwordHash(t))
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("IMAPD_DEBUG") != "" {
		level = slog.LevelDebug
	}
	opts := Options{
		Store:      st,
		Auth:       &auth.Authenticator{Store: st},
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		LoginDelay: -1,
		Plaintext:  auth.PlaintextLoopback,
	}
	for _, f := range mod {
		f(&opts)
	}
	srv := New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	ts := &testServer{srv: srv, st: st, addr: ln.Addr().String(), acct: acct, ln: ln, opts: opts}
	t.Cleanup(func() {
		srv.Close()
		<-done
		srv.connWG.Wait()
		st.Close()
		if n := srv.panics.Load(); n != 0 {
			t.Errorf("%d panics recovered in connections", n)
		}
	})
	return ts
}

// appendMsg puts a message into a mailbox through the store.
func (ts *testServer) appendMsg(t testing.TB, mailbox, body string, flags store.Flags) store.UID {
	t.Helper()
	ctx := context.Background()
	mb, err := ts.st.Mailbox(ctx, ts.acct.ID, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	staged, err := ts.st.Stage(ctx, strings.NewReader(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ts.st.Append(ctx, ts.acct.ID, mb.ID, []store.AppendMessage{{Body: staged, Flags: flags}})
	if err != nil {
		t.Fatal(err)
	}
	return res.UIDs[0]
}

// rawClient speaks raw IMAP lines for exact-byte tests.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func (ts *testServer) dial(t testing.TB) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
	return rc
}

// dialGreet connects and reads the greeting.
func (ts *testServer) dialGreet(t testing.TB) *rawClient {
	rc := ts.dial(t)
	g := rc.line()
	if !strings.HasPrefix(g, "* OK [CAPABILITY ") {
		t.Fatalf("greeting %q", g)
	}
	return rc
}

// login dials, reads the greeting and logs in.
func (ts *testServer) login(t testing.TB) *rawClient {
	rc := ts.dialGreet(t)
	rc.ok("L1 LOGIN " + testUser + ` "` + testPass + `"`)
	return rc
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	rc.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(rc.nc, s); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// line reads one line without CRLF; literals are returned inline (the
// "{n}" line followed by the octets and the rest of the line).
func (rc *rawClient) line() string {
	rc.t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sb strings.Builder
	for {
		l, err := rc.br.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("read: %v (have %q)", err, sb.String()+l)
		}
		sb.WriteString(l)
		s := strings.TrimSuffix(l, "\r\n")
		if n, ok := literalSuffix(s); ok {
			buf := make([]byte, n)
			if _, err := io.ReadFull(rc.br, buf); err != nil {
				rc.t.Fatalf("read literal: %v", err)
			}
			sb.Write(buf)
			continue
		}
		return strings.TrimSuffix(sb.String(), "\r\n")
	}
}

func literalSuffix(s string) (int, bool) {
	if !strings.HasSuffix(s, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(s, '{')
	if i < 0 {
		return 0, false
	}
	n := 0
	for _, c := range s[i+1 : len(s)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// cmd sends "tag rest" and returns the untagged lines and the tagged one.
func (rc *rawClient) cmd(line string) (untagged []string, tagged string) {
	rc.t.Helper()
	tag := strings.SplitN(line, " ", 2)[0]
	rc.send(line + "\r\n")
	return rc.until(tag)
}

// until reads lines until the tagged reply for tag.
func (rc *rawClient) until(tag string) (untagged []string, tagged string) {
	rc.t.Helper()
	for {
		l := rc.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, l
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command and fails unless it ends in OK.
func (rc *rawClient) ok(line string) []string {
	rc.t.Helper()
	u, tagged := rc.cmd(line)
	tag := strings.SplitN(line, " ", 2)[0]
	if !strings.HasPrefix(tagged, tag+" OK") {
		rc.t.Fatalf("%q: got %q (untagged %q)", line, tagged, u)
	}
	return u
}

// expectEOF checks that the server closed the connection.
func (rc *rawClient) expectEOF() {
	rc.t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, err := rc.br.ReadString('\n')
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				rc.t.Fatal("connection still open")
			}
			return
		}
	}
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func hasPrefix(lines []string, p string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

func storeFlags(sys ...store.SysFlags) store.Flags {
	var f store.Flags
	for _, s := range sys {
		f.Sys |= s
	}
	return f
}
