package pop3d

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
)

// benchClients is how many POP3 clients retrieve at once (issue 4 asks
// for 20).
const benchClients = 20

// benchMessages is how many messages each client's maildrop holds (fewer
// for large sizes, to keep the setup's disk use near 200 MB).
func benchMessages(size int) int { return max(1, min(50, (10<<20)/size)) }

// BenchmarkRETR measures RETR over real loopback sockets with 20
// concurrent clients, each logged in to its own account, against the
// embedded store. It reports messages/s and MB/s (of message octets).
func BenchmarkRETR(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10, 1 << 20} {
		st := openStore(b)
		srv := New(Options{
			Store:  st,
			Auth:   &auth.Authenticator{Store: st},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })

		body := bigBody(size)
		conns := make([]*benchConn, benchClients)
		for i := range conns {
			acct, inbox := createAccount(b, st, fmt.Sprintf("bench%d@example.org", i))
			msgs := make([]store.AppendMessage, benchMessages(size))
			for j := range msgs {
				staged, err := st.Stage(context.Background(), bytes.NewReader(body), 0)
				if err != nil {
					b.Fatal(err)
				}
				msgs[j] = store.AppendMessage{Body: staged}
			}
			if _, err := st.Append(context.Background(), acct.ID, inbox.ID, msgs); err != nil {
				b.Fatal(err)
			}
			conns[i] = benchLogin(b, ln.Addr().String(), acct.Address)
		}

		b.Run(fmt.Sprintf("size=%dKiB_clients=%d", size>>10, benchClients), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, benchClients)
			b.ResetTimer()
			start := time.Now()
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; ; k++ {
						if next.Add(1) > int64(b.N) {
							return
						}
						if err := c.retr(k%benchMessages(size)+1, len(body)); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

type benchConn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func benchLogin(b *testing.B, addr, user string) *benchConn {
	b.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	c := &benchConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriter(nc)}
	if l, _ := c.br.ReadString('\n'); !strings.HasPrefix(l, "+OK") {
		b.Fatalf("greeting %q", l)
	}
	fmt.Fprintf(c.bw, "AUTH PLAIN %s\r\n", b64("\x00"+user+"\x00"+testPassword))
	c.bw.Flush()
	if l, _ := c.br.ReadString('\n'); !strings.HasPrefix(l, "+OK") {
		b.Fatalf("login: %q", l)
	}
	return c
}

// retr retrieves message n and checks the unstuffed size.
func (c *benchConn) retr(n, size int) error {
	fmt.Fprintf(c.bw, "RETR %d\r\n", n)
	if err := c.bw.Flush(); err != nil {
		return err
	}
	l, err := c.br.ReadSlice('\n')
	if err != nil || !bytes.HasPrefix(l, []byte("+OK")) {
		return fmt.Errorf("RETR %d: %q %v", n, l, err)
	}
	got := 0
	for {
		l, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(l) == 3 && l[0] == '.' {
			break
		}
		got += len(l)
		if l[0] == '.' {
			got--
		}
	}
	if got != size {
		return fmt.Errorf("RETR %d: %d octets, want %d", n, got, size)
	}
	return nil
}
