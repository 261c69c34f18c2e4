package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skrytka/skrytka/bench/corpus"
)

// pop3Client is a minimal RFC 1939 client: enough to log in, list and
// retrieve. There is no maintained POP3 client library for Go.
type pop3Client struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

const pop3Timeout = 2 * time.Minute

func (t *Target) pop3Login(user string) (*pop3Client, error) {
	conn, err := t.dial(t.POP3)
	if err != nil {
		return nil, err
	}
	c := &pop3Client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriter(conn)}
	if _, err := c.status(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("POP3 greeting: %w", err)
	}
	if _, err := c.cmd("USER " + user); err != nil {
		conn.Close()
		return nil, fmt.Errorf("POP3 USER: %w", err)
	}
	if _, err := c.cmd("PASS " + t.Password); err != nil {
		conn.Close()
		return nil, fmt.Errorf("POP3 PASS for %s: %w", user, err)
	}
	return c, nil
}

func (c *pop3Client) line() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(pop3Timeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(l, "\r\n") {
		return "", errors.New("POP3: line without CRLF")
	}
	return l[:len(l)-2], nil
}

func (c *pop3Client) status() (string, error) {
	l, err := c.line()
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(l, "+OK") {
		return strings.TrimSpace(l[3:]), nil
	}
	return "", fmt.Errorf("POP3 server said %q", l)
}

func (c *pop3Client) cmd(s string) (string, error) {
	c.conn.SetWriteDeadline(time.Now().Add(pop3Timeout))
	if _, err := c.w.WriteString(s + "\r\n"); err != nil {
		return "", err
	}
	if err := c.w.Flush(); err != nil {
		return "", err
	}
	return c.status()
}

// multi reads a dot-terminated multi-line body, undoing dot-stuffing
// (RFC 1939 §3), and returns it with CRLF line endings.
func (c *pop3Client) multi(buf *bytes.Buffer) error {
	for {
		c.conn.SetReadDeadline(time.Now().Add(pop3Timeout))
		l, err := c.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			buf.Write(l)
			for err == bufio.ErrBufferFull {
				l, err = c.r.ReadSlice('\n')
				buf.Write(l)
			}
			if err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if len(l) >= 1 && l[0] == '.' {
			if string(l) == ".\r\n" {
				return nil
			}
			l = l[1:]
		}
		buf.Write(l)
	}
}

func (c *pop3Client) quit() {
	c.cmd("QUIT")
	c.conn.Close()
}

// POP3Params configure workload 4.
type POP3Params struct {
	Clients   int // 20; client k reads user k's maildrop
	Preloaded int // messages in each maildrop
}

// POP3 runs workload 4: Clients clients log in at once and each retrieves
// its whole maildrop (STAT, LIST, RETR of every message, QUIT without
// DELE, so the next round finds the same). It checks that STAT's count is
// Preloaded, that each RETR has exactly LIST's octet count and that every
// message's body matches its corpus hash.
func POP3(ctx context.Context, t *Target, p POP3Params) (*Result, error) {
	res := &Result{Workload: "4-pop3", Server: t.Name,
		Params: fmt.Sprintf("%d clients, whole maildrop of %d msgs each", p.Clients, p.Preloaded)}
	var msgs, bytesRead, checked atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, p.Clients)
	start := time.Now()
	for k := 1; k <= p.Clients; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			user := t.User(k)
			c, err := t.pop3Login(user)
			if err != nil {
				errc <- err
				return
			}
			defer c.quit()
			st, err := c.cmd("STAT")
			if err != nil {
				errc <- fmt.Errorf("STAT: %w", err)
				return
			}
			var n, size int
			if _, err := fmt.Sscanf(st, "%d %d", &n, &size); err != nil || n != p.Preloaded {
				errc <- checkf("%s: STAT %q, want %d messages", user, st, p.Preloaded)
				return
			}
			if _, err := c.cmd("LIST"); err != nil {
				errc <- fmt.Errorf("LIST: %w", err)
				return
			}
			var lb bytes.Buffer
			if err := c.multi(&lb); err != nil {
				errc <- err
				return
			}
			sizes := map[int]int{}
			total := 0
			for _, l := range strings.Split(strings.TrimSpace(lb.String()), "\r\n") {
				f := strings.Fields(l)
				if len(f) != 2 {
					errc <- checkf("%s: LIST line %q", user, l)
					return
				}
				num, _ := strconv.Atoi(f[0])
				sz, _ := strconv.Atoi(f[1])
				sizes[num] = sz
				total += sz
			}
			if len(sizes) != n || total != size {
				errc <- checkf("%s: LIST has %d entries totalling %d, STAT said %d and %d", user, len(sizes), total, n, size)
				return
			}
			var buf bytes.Buffer
			for i := 1; i <= n && ctx.Err() == nil; i++ {
				if _, err := c.cmd("RETR " + strconv.Itoa(i)); err != nil {
					errc <- fmt.Errorf("RETR %d: %w", i, err)
					return
				}
				buf.Reset()
				if err := c.multi(&buf); err != nil {
					errc <- fmt.Errorf("RETR %d body: %w", i, err)
					return
				}
				if buf.Len() != sizes[i] {
					errc <- checkf("%s: RETR %d sent %d octets, LIST said %d", user, i, buf.Len(), sizes[i])
					return
				}
				if _, err := corpus.Verify(buf.Bytes()); err != nil {
					errc <- checkf("%s: RETR %d: %v", user, i, err)
					return
				}
				msgs.Add(1)
				bytesRead.Add(int64(buf.Len()))
				checked.Add(1)
			}
		}(k)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	for err := range errc {
		return nil, err
	}
	res.add("msgs/s", float64(msgs.Load())/elapsed.Seconds(), true)
	res.add("MB/s", float64(bytesRead.Load())/1e6/elapsed.Seconds(), true)
	res.Checked = int(checked.Load())
	return res, nil
}
