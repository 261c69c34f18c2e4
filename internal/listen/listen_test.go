package listen

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// echoServer serves an echo on a Limiter listener and returns its address.
func echoServer(t *testing.T, lim *Limiter, reject RejectFunc) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := lim.Listener(raw, "echo", reject)
	t.Cleanup(func() { ln.Close() })
	go Serve(ln, func(c net.Conn) {
		defer c.Close()
		c.Write([]byte("hello\r\n"))
		io.Copy(c, c)
	})
	return raw.Addr().String()
}

func dialGreeting(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return c, "EOF"
	}
	return c, strings.TrimSpace(line)
}

func waitOpen(t *testing.T, lim *Limiter, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for lim.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("open connections = %d, want %d", lim.Open(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPerIPCap(t *testing.T) {
	lim := &Limiter{MaxPerIP: 3, MaxTotal: 100, Trusted: []netip.Prefix{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	addr := echoServer(t, lim, func(c net.Conn, why Reason) { c.Write([]byte("BUSY " + string(why) + "\r\n")) })
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		c, g := dialGreeting(t, addr)
		if g != "hello" {
			t.Fatalf("connection %d got %q", i, g)
		}
		conns = append(conns, c)
	}
	if _, g := dialGreeting(t, addr); g != "BUSY "+string(TooManyFromIP) {
		t.Fatalf("4th connection got %q, want refusal", g)
	}
	waitOpen(t, lim, 3)
	conns[0].Close()
	waitOpen(t, lim, 2)
	if _, g := dialGreeting(t, addr); g != "hello" {
		t.Fatalf("after a close got %q", g)
	}
}

func TestTrustedExemptButTotalCapped(t *testing.T) {
	lim := &Limiter{MaxPerIP: 1, MaxTotal: 3, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))} // loopback trusted by default
	addr := echoServer(t, lim, func(c net.Conn, why Reason) { c.Write([]byte("BUSY " + string(why) + "\r\n")) })
	for i := 0; i < 3; i++ {
		if _, g := dialGreeting(t, addr); g != "hello" {
			t.Fatalf("trusted connection %d got %q", i, g)
		}
	}
	if _, g := dialGreeting(t, addr); g != "BUSY "+string(TooManyTotal) {
		t.Fatalf("connection over total got %q", g)
	}
}

func TestIPv6Bucket(t *testing.T) {
	lim := &Limiter{MaxPerIP: 2, Trusted: []netip.Prefix{}}
	a := netip.MustParseAddr("2001:db8::1")
	b := netip.MustParseAddr("2001:db8::ffff:2")
	c := netip.MustParseAddr("2001:db8:0:1::1")
	if lim.acquire(a) != "" || lim.acquire(b) != "" {
		t.Fatal("first two refused")
	}
	if lim.acquire(a) != TooManyFromIP {
		t.Fatal("third address in the same /64 allowed")
	}
	if lim.acquire(c) != "" {
		t.Fatal("other /64 refused")
	}
	lim.release(a)
	if lim.acquire(b) != "" {
		t.Fatal("not released")
	}
}

func TestConnLogAndCounts(t *testing.T) {
	var logs syncBuffer
	lim := &Limiter{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := lim.Listener(raw, "test", nil)
	defer ln.Close()
	done := make(chan *Conn)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(done)
			return
		}
		lc := Unwrap(c)
		lc.SetReadTimeout(2 * time.Second)
		buf := make([]byte, 5)
		io.ReadFull(c, buf)
		c.Write([]byte("12345678"))
		SetUser(c, "alice@example.org")
		c.Close()
		c.Close() // second close: no second log line, no double release
		done <- lc
	}()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("abcde"))
	io.Copy(io.Discard, c)
	lc := <-done
	if lc == nil {
		t.Fatal("accept failed")
	}
	if lc.BytesIn() != 5 || lc.BytesOut() != 8 {
		t.Errorf("bytes in/out = %d/%d, want 5/8", lc.BytesIn(), lc.BytesOut())
	}
	if lim.Open() != 0 {
		t.Errorf("open = %d after close", lim.Open())
	}
	out := logs.String()
	if strings.Count(out, "conn open") != 1 || strings.Count(out, "conn close") != 1 {
		t.Fatalf("log:\n%s", out)
	}
	for _, want := range []string{"proto=test", "user=alice@example.org", "bytes_in=5", "bytes_out=8", "dur="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "abcde") {
		t.Errorf("log contains client data:\n%s", out)
	}
}

func TestReadTimeout(t *testing.T) {
	lim := &Limiter{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := lim.Listener(raw, "test", nil)
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		Unwrap(c).SetReadTimeout(100 * time.Millisecond)
		_, err = c.Read(make([]byte, 1))
		errc <- err
	}()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case err := <-errc:
		var ne net.Error
		if ne, _ = err.(net.Error); ne == nil || !ne.Timeout() {
			t.Fatalf("read error = %v, want timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read timeout did not fire")
	}
}

// tempErr is a temporary accept error such as EMFILE.
type tempErr struct{}

func (tempErr) Error() string   { return "too many open files" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

// flakyListener fails Accept with temporary errors n times, then reports
// itself closed.
type flakyListener struct {
	net.Listener
	n     int
	calls int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.calls++
	if f.calls <= f.n {
		return nil, tempErr{}
	}
	return nil, net.ErrClosed
}

func TestServeBacksOffOnTemporaryErrors(t *testing.T) {
	fl := &flakyListener{n: 4}
	start := time.Now()
	err := Serve(fl, func(net.Conn) { t.Error("handler called") })
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve = %v, want net.ErrClosed", err)
	}
	if fl.calls != 5 {
		t.Fatalf("Accept called %d times, want 5", fl.calls)
	}
	// 5 + 10 + 20 + 40 ms of backoff.
	if el := time.Since(start); el < 75*time.Millisecond {
		t.Fatalf("no backoff: %v", el)
	}
}
