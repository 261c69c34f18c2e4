package imapd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skrytka/skrytka/bench/corpus"
	"github.com/skrytka/skrytka/internal/store"
)

// TestBigMailboxTimings fills a mailbox with IMAPD_BIG_MESSAGES messages
// (default: skipped) and reports how long SELECT, UID FETCH 1:* (FLAGS),
// FETCH 1:* (ENVELOPE), SEARCH FROM and SEARCH BODY take over a socket.
// It asserts only that the answers are complete.
func TestBigMailboxTimings(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("IMAPD_BIG_MESSAGES"))
	if n == 0 {
		t.Skip("set IMAPD_BIG_MESSAGES=100000 to run")
	}
	ts := newTestServer(t)
	ctx := context.Background()
	inbox, err := ts.st.Mailbox(ctx, ts.acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const batch = 1000
	for i := 0; i < n; i += batch {
		var msgs []store.AppendMessage
		for j := i; j < i+batch && j < n; j++ {
			body := fmt.Sprintf("From: User %d <user%d@example.org>\r\nTo: demo@localhost\r\nSubject: message %d\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMessage-ID: <%d@example.org>\r\n\r\nHello, this is message number %d.\r\nword%d\r\n", j%100, j%100, j, j, j, j)
			staged, err := ts.st.Stage(ctx, strings.NewReader(body), 0)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, store.AppendMessage{Body: staged})
		}
		if _, err := ts.st.Append(ctx, ts.acct.ID, inbox.ID, msgs); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("filled %d messages in %v", n, time.Since(start))
	rc := ts.login(t)
	timed := func(name, cmd string, check func([]string)) {
		start, cpu0 := time.Now(), cpuTime()
		u := rc.fastCmd(cmd)
		t.Logf("%-28s %8.1f ms wall %8.1f ms CPU (server+client)", name, float64(time.Since(start).Microseconds())/1000, float64((cpuTime()-cpu0).Microseconds())/1000)
		check(u)
	}
	count := func(want int) func([]string) {
		return func(u []string) {
			if len(u) < want {
				t.Errorf("got %d lines, want %d", len(u), want)
			}
		}
	}
	timed("SELECT", "a SELECT INBOX", count(5))
	timed("SELECT again", "a2 SELECT INBOX", count(5))
	timed("UID FETCH 1:* (FLAGS)", "b UID FETCH 1:* (FLAGS)", count(n))
	timed("UID FETCH 1:* (FLAGS) again", "b2 UID FETCH 1:* (FLAGS)", count(n))
	timed("UID FETCH 1:* (FLAGS) again", "b3 UID FETCH 1:* (FLAGS)", count(n))
	timed("FETCH 1:* (ENVELOPE)", "c FETCH 1:* (ENVELOPE)", count(n))
	timed("SEARCH FROM user7", "d SEARCH FROM user7@", count(1))
	timed("SEARCH BODY rare", fmt.Sprintf("e SEARCH BODY word%d", n/2), func(u []string) {
		if len(u) != 1 || u[0] != fmt.Sprintf("* SEARCH %d", n/2+1) {
			t.Errorf("%q", u)
		}
	})
	timed("SEARCH BODY common", "f SEARCH BODY hello", count(1))
	timed("UID SEARCH common (ESEARCH)", "g UID SEARCH RETURN (COUNT) BODY message", count(1))
}

// fastCmd runs a command and collects the reply lines with little client
// overhead (one deadline, no literal handling), for timings.
func (rc *rawClient) fastCmd(line string) []string {
	rc.t.Helper()
	tag := strings.SplitN(line, " ", 2)[0]
	rc.send(line + "\r\n")
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
	var u []string
	for {
		l, err := rc.br.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("read: %v", err)
		}
		l = strings.TrimSuffix(l, "\r\n")
		if len(l) > len(tag) && string(l[:len(tag)+1]) == tag+" " {
			if !strings.HasPrefix(string(l), tag+" OK") {
				rc.t.Fatalf("%q", l)
			}
			return u
		}
		u = append(u, l)
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBigMailbox measures, over a socket to an in-process server on
// the real embedded store, the three big-mailbox queries of the benchmark
// issue on a mailbox of IMAPD_BENCH_MESSAGES corpus messages (compact
// profile; default 10,000): a warm SELECT, UID FETCH 1:* (FLAGS) and
// FETCH 1:* (ENVELOPE), and SORT by subject and by arrival. The client reads with little overhead (no
// per-line allocation) and checks the reply counts.
func BenchmarkBigMailbox(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("IMAPD_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	ts := newTestServer(b)
	fillCorpus(b, ts, n)
	settle(b)
	rc := ts.login(b)
	rc.drain("s0 SELECT INBOX")
	run := func(name, cmd string, want int) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if got := rc.drain(cmd); got < want {
					b.Fatalf("%s: %d untagged lines, want %d", cmd, got, want)
				}
			}
		})
	}
	run("SELECT", "s SELECT INBOX", 5)
	run("UIDFetchFlags", "f UID FETCH 1:* (FLAGS)", n)
	run("FetchEnvelope", "e FETCH 1:* (ENVELOPE)", n)
	run("SortSubject", "o SORT (SUBJECT) UTF-8 ALL", 1)
	run("SortArrival", "o SORT (REVERSE ARRIVAL) UTF-8 ALL", 1)
}

// fillCorpus appends n messages of the bench corpus (compact profile) to
// the INBOX through the store.
func fillCorpus(b testing.TB, ts *testServer, n int) {
	b.Helper()
	ctx := context.Background()
	inbox, err := ts.st.Mailbox(ctx, ts.acct.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	gen := &corpus.Generator{Seed: 1, Profile: corpus.Compact}
	var msgs []store.AppendMessage
	for i := 0; i < n; i++ {
		staged, err := ts.st.Stage(ctx, bytes.NewReader(gen.Message(i)), 0)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, store.AppendMessage{Body: staged})
		if len(msgs) == 1000 || i == n-1 {
			if _, err := ts.st.Append(ctx, ts.acct.ID, inbox.ID, msgs); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
}

// settle waits (at most 5 minutes) until the process has been almost idle
// for a second, so that background work after loading (the store's text
// indexing) does not run during the measurement.
// IMAPD_BENCH_SETTLE=0 skips the wait.
func settle(t testing.TB) {
	t.Helper()
	if os.Getenv("IMAPD_BENCH_SETTLE") == "0" {
		return
	}
	deadline := time.Now().Add(5 * time.Minute)
	quiet := 0
	for quiet < 4 && time.Now().Before(deadline) {
		c0 := cpuTime()
		time.Sleep(250 * time.Millisecond)
		if cpuTime()-c0 < 25*time.Millisecond {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// drain runs a command, reads its reply without keeping it, and returns
// the number of untagged lines (a line with a literal counts once).
func (rc *rawClient) drain(line string) int {
	rc.t.Helper()
	tag, _, _ := strings.Cut(line, " ")
	rc.send(line + "\r\n")
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
	n := 0
	cont := false // the line continues a response after a literal
	for {
		l, err := rc.br.ReadSlice('\n')
		// A line longer than the buffer (a SORT or SEARCH result) is
		// counted by its first byte, and its end checked for a literal.
		star := len(l) > 0 && l[0] == '*'
		long := err == bufio.ErrBufferFull
		for err == bufio.ErrBufferFull {
			l, err = rc.br.ReadSlice('\n')
		}
		if err != nil {
			rc.t.Fatalf("read: %v", err)
		}
		if !cont {
			if !long && len(l) > len(tag) && string(l[:len(tag)]) == tag && l[len(tag)] == ' ' {
				if !bytes.HasPrefix(l[len(tag)+1:], []byte("OK")) {
					rc.t.Fatalf("%s: %q", line, l)
				}
				return n
			}
			if star {
				n++
			}
		}
		k, ok := literalSuffix(strings.TrimRight(string(l[max(0, len(l)-24):]), "\r\n"))
		cont = ok
		if ok {
			if _, err := rc.br.Discard(k); err != nil {
				rc.t.Fatalf("read literal: %v", err)
			}
		}
	}
}
