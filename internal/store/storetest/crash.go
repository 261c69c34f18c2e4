package storetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// Crash configures the SIGKILL test: a child process (the test binary run
// again) appends in a loop and reports each acknowledged UID; the parent
// kills it with SIGKILL in the middle of appending, reopens the store and
// checks that every acknowledged message is there, byte for byte, and that
// nothing half-written is visible.
//
// The backend's test binary must call RunCrashChild from TestMain before
// m.Run.
type Crash struct {
	// NewLocation returns where a new, empty store lives (a directory, a
	// database name...). It must be usable from another process.
	NewLocation func(t *testing.T) string
	// OpenAt opens the store at loc; used in both processes.
	OpenAt func(ctx context.Context, loc string) (store.Store, error)
	// Check, if set, runs backend-specific checks after the reopen, such as
	// looking for orphan body files.
	Check func(t *testing.T, loc string, s store.Store)
}

const crashEnv = "SKRYTKA_STORETEST_CRASH_LOCATION"

// crashSeqEnv gives the child the first message number to use, so that
// the rounds' messages differ.
const crashSeqEnv = "SKRYTKA_STORETEST_CRASH_SEQ"

const crashAccount = "crash@example.org"

// RunCrashChild runs the appender when this process is the child of the
// crash test, and never returns then. Otherwise it returns at once.
func RunCrashChild(openAt func(ctx context.Context, loc string) (store.Store, error)) {
	loc := os.Getenv(crashEnv)
	if loc == "" {
		return
	}
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	s, err := openAt(ctx, loc)
	if err != nil {
		fail(err)
	}
	acct, err := s.Account(ctx, crashAccount)
	if err != nil {
		fail(err)
	}
	inbox, err := s.Mailbox(ctx, acct.ID, store.InboxName)
	if err != nil {
		fail(err)
	}
	var mu sync.Mutex
	seq, _ := strconv.Atoi(os.Getenv(crashSeqEnv))
	out := bufio.NewWriter(os.Stdout)
	for w := 0; w < 4; w++ {
		go func() {
			for {
				mu.Lock()
				n := seq
				seq++
				mu.Unlock()
				st, err := s.Stage(ctx, strings.NewReader(crashBody(n)), 0)
				if err != nil {
					fail(err)
				}
				res, err := s.Append(ctx, acct.ID, inbox.ID, []store.AppendMessage{{Body: st, Flags: store.Flags{Keywords: []string{"k" + strconv.Itoa(n%3)}}}})
				if err != nil {
					fail(err)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %d\n", res.UIDs[0], n)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// crashBody is message n of the crash test: sizes vary so that both small
// and large bodies are in flight.
func crashBody(n int) string {
	size := 500 + (n*7919)%3000
	if n%4 == 1 {
		size = 90<<10 + n%1000
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Subject: crash %d\r\nX-Seq: %d\r\n\r\n", n, n)
	line := fmt.Sprintf("%08d:%s\r\n", n, strings.Repeat("abcdefghij", 6))
	for sb.Len() < size {
		sb.WriteString(line)
	}
	return sb.String()
}

func crashSeq(body string) (int, bool) {
	i := strings.Index(body, "\r\nX-Seq: ")
	if i < 0 {
		return 0, false
	}
	rest := body[i+len("\r\nX-Seq: "):]
	j := strings.Index(rest, "\r\n")
	if j < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest[:j])
	return n, err == nil
}

func testCrash(t *testing.T, b Backend) {
	c := b.Crash
	if c == nil {
		t.Skip("backend has no crash hooks")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	ctx := context.Background()
	loc := c.NewLocation(t)
	s, err := c.OpenAt(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccount(ctx, crashAccount, "h"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	acked := map[store.UID]int{}
	for round := 0; round < 2; round++ {
		runCrashChild(t, loc, acked, 30+round*20, round*1000000)
	}

	s, err = c.OpenAt(ctx, loc)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	acct, err := s.Account(ctx, crashAccount)
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, acct.ID, store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	m, uids, err := s.SelectState(ctx, acct.ID, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	if int(m.Messages) != len(uids) {
		t.Errorf("Messages counter %d, %d UIDs", m.Messages, len(uids))
	}
	present := map[store.UID]bool{}
	seqs := map[int]store.UID{}
	var size int64
	var maxUID store.UID
	for i, u := range uids {
		if i > 0 && uids[i-1] >= u {
			t.Fatalf("UIDs not increasing: %d then %d", uids[i-1], u)
		}
		maxUID = u
		present[u] = true
		r, err := s.OpenMessage(ctx, acct.ID, inbox.ID, u)
		if err != nil {
			t.Fatalf("open UID %d: %v", u, err)
		}
		bb, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("read UID %d: %v", u, err)
		}
		body := string(bb)
		size += int64(len(body))
		n, ok := crashSeq(body)
		if !ok || body != crashBody(n) {
			t.Fatalf("UID %d holds a damaged message (%d bytes)", u, len(body))
		}
		if prev, dup := seqs[n]; dup {
			t.Errorf("message %d stored twice, as UID %d and %d", n, prev, u)
		}
		seqs[n] = u
	}
	if m.Size != size {
		t.Errorf("Size counter %d, bodies add up to %d", m.Size, size)
	}
	for u, n := range acked {
		if !present[u] {
			t.Errorf("acknowledged UID %d (message %d) lost", u, n)
		} else if seqs[n] != u {
			t.Errorf("acknowledged message %d is UID %d, stored as %d", n, u, seqs[n])
		}
	}
	if m.UIDNext <= maxUID {
		t.Errorf("UIDNext %d not above the highest UID %d", m.UIDNext, maxUID)
	}
	t.Logf("%d acknowledged, %d stored after two SIGKILLs", len(acked), len(uids))
	st, err := s.Stage(ctx, strings.NewReader(msg("after crash")), 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, acct.ID, inbox.ID, []store.AppendMessage{{Body: st}})
	if err != nil {
		t.Fatal(err)
	}
	if res.UIDs[0] < m.UIDNext || res.UIDs[0] <= maxUID {
		t.Errorf("UID after crash %d reuses (UIDNext %d, max %d)", res.UIDs[0], m.UIDNext, maxUID)
	}
	if c.Check != nil {
		c.Check(t, loc, s)
	}
}

// runCrashChild runs the child until it acknowledged at least minAcks
// appends, kills it with SIGKILL and records its acknowledgements.
func runCrashChild(t *testing.T, loc string, acked map[store.UID]int, minAcks, firstSeq int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+loc, crashSeqEnv+"="+strconv.Itoa(firstSeq))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	n := 0
	record := func(line string) {
		var u uint32
		var seq int
		if _, err := fmt.Sscanf(line, "ack %d %d", &u, &seq); err != nil {
			t.Errorf("child said %q", line)
			return
		}
		if prev, dup := acked[store.UID(u)]; dup {
			t.Errorf("UID %d acknowledged for message %d and %d", u, prev, seq)
		}
		acked[store.UID(u)] = seq
		n++
	}
	deadline := time.After(60 * time.Second)
wait:
	for n < minAcks {
		select {
		case line, ok := <-lines:
			if !ok {
				break wait
			}
			record(line)
		case <-deadline:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child acknowledged only %d appends in 60s; stderr: %s", n, stderr.String())
		}
	}
	if n < minAcks {
		cmd.Wait()
		t.Fatalf("child exited after %d acknowledgements; stderr: %s", n, stderr.String())
	}
	// Let appends be in flight, then kill without warning.
	time.Sleep(time.Duration(n%7) * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for line := range lines {
		record(line)
	}
	cmd.Wait()
	if strings.Contains(stderr.String(), "crash child:") {
		t.Fatalf("child failed: %s", stderr.String())
	}
}
