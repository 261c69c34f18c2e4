package pop3d

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
)

// realisticSizes returns n message sizes drawn like issue 8's realistic
// corpus: mostly small text messages, some multipart ones, a tenth with an
// attachment; a long tail up to 4 MiB, mean near 65 KB.
func realisticSizes(n int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, 1))
	logNormal := func(median, sigma float64, lo int) int {
		v := int(median * math.Exp(sigma*r.NormFloat64()))
		return min(max(v, lo), 4<<20)
	}
	sizes := make([]int, n)
	for i := range sizes {
		switch p := r.Float64(); {
		case p < 0.7:
			sizes[i] = logNormal(4500, 0.8, 1024)
		case p < 0.9:
			sizes[i] = logNormal(14000, 0.8, 2048)
		default:
			sizes[i] = logNormal(250000, 1.4, 8192)
		}
	}
	return sizes
}

// benchMessage is a message of about size octets with CRLF lines of
// varying length, some of which start with a dot (so RETR must stuff).
func benchMessage(i, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 200)
	fmt.Fprintf(&b, "From: sender%d@example.org\r\nTo: user@example.org\r\nSubject: message %d\r\nMessage-ID: <%d@example.org>\r\n\r\n", i, i, i)
	r := rand.New(rand.NewPCG(uint64(i), 2))
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789+/ "
	for b.Len() < size {
		n := 1 + r.IntN(76)
		if r.IntN(40) == 0 {
			b.WriteByte('.')
		}
		for range n {
			b.WriteByte(letters[r.IntN(len(letters))])
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// BenchmarkMaildrop is issue 8's workload 4 against the real server over
// loopback sockets: benchClients clients at once, each logging in with
// USER/PASS, STAT, LIST, RETR of each of its 100 realistic messages, QUIT.
// One iteration is one such round. The accounts use a cheap password hash
// (testHash), so the argon2id cost of a real login is not part of it.
func BenchmarkMaildrop(b *testing.B) {
	const perUser = 100
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

	ctx := context.Background()
	sizes := realisticSizes(perUser, 1)
	staged := make([]store.Staged, perUser)
	var total int64
	for i, n := range sizes {
		body := benchMessage(i, n)
		total += int64(len(body))
		if staged[i], err = st.Stage(ctx, bytes.NewReader(body), 0); err != nil {
			b.Fatal(err)
		}
	}
	users := make([]string, benchClients)
	for k := range users {
		acct, inbox := createAccount(b, st, fmt.Sprintf("drop%d@example.org", k))
		users[k] = acct.Address
		// Every account holds the same bodies (stored once, as a
		// multi-recipient delivery would).
		msgs := make([]store.AppendMessage, perUser)
		for i := range msgs {
			msgs[i] = store.AppendMessage{Body: staged[i]}
		}
		if _, err := st.Append(ctx, acct.ID, inbox.ID, msgs); err != nil {
			b.Fatal(err)
		}
	}

	addr := ln.Addr().String()
	b.SetBytes(total * benchClients)
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	for range b.N {
		var wg sync.WaitGroup
		errs := make(chan error, benchClients)
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := downloadMaildrop(addr, u, perUser); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchClients*perUser)/elapsed.Seconds(), "msgs/s")
	// CPU time of the process (server and clients) per round: steadier
	// than msgs/s on a machine shared with other work.
	b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
}

// downloadMaildrop is one workload-4 client: it logs in, checks STAT and
// LIST, retrieves every message checking its unstuffed size against LIST,
// and quits without DELE.
func downloadMaildrop(addr, user string, want int) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReaderSize(nc, 64<<10)
	bw := bufio.NewWriter(nc)
	cmd := func(line string) (string, error) {
		if line != "" {
			bw.WriteString(line)
			bw.WriteString("\r\n")
			if err := bw.Flush(); err != nil {
				return "", err
			}
		}
		l, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(l, "+OK") {
			return "", fmt.Errorf("%s: %q", line, l)
		}
		return strings.TrimSpace(l[3:]), nil
	}
	if _, err := cmd(""); err != nil {
		return err
	}
	if _, err := cmd("USER " + user); err != nil {
		return err
	}
	if _, err := cmd("PASS " + testPassword); err != nil {
		return err
	}
	stat, err := cmd("STAT")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(stat, strconv.Itoa(want)+" ") {
		return fmt.Errorf("STAT %q, want %d messages", stat, want)
	}
	if _, err := cmd("LIST"); err != nil {
		return err
	}
	var sizes []int
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if l == ".\r\n" {
			break
		}
		f := strings.Fields(l)
		n, _ := strconv.Atoi(f[1])
		sizes = append(sizes, n)
	}
	if len(sizes) != want {
		return fmt.Errorf("LIST: %d messages, want %d", len(sizes), want)
	}
	for i, size := range sizes {
		if _, err := cmd("RETR " + strconv.Itoa(i+1)); err != nil {
			return err
		}
		n, err := readMultiline(br)
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("RETR %d: %d octets, LIST said %d", i+1, n, size)
		}
	}
	_, err = cmd("QUIT")
	return err
}

// readMultiline consumes a dot-stuffed multi-line response up to and
// including its ".\r\n" and returns the octets it stood for. It works on
// the reader's buffer, so the client costs little next to the server.
func readMultiline(br *bufio.Reader) (int, error) {
	n := 0
	bol := true
	for {
		if bol {
			p, err := br.Peek(1)
			if err != nil {
				return n, err
			}
			if p[0] == '.' {
				if p, _ := br.Peek(3); string(p) == ".\r\n" {
					br.Discard(3)
					return n, nil
				}
				br.Discard(1) // a stuffed dot
			}
		}
		p, err := br.Peek(max(1, br.Buffered()))
		if err != nil {
			return n, err
		}
		if i := bytes.Index(p, lfDot); i >= 0 {
			// Only up to the line that starts with a dot: it may be
			// stuffed or the terminator.
			n += i + 1
			br.Discard(i + 1)
			bol = true
			continue
		}
		n += len(p)
		br.Discard(len(p))
		bol = p[len(p)-1] == '\n'
	}
}

var lfDot = []byte("\n.")

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
