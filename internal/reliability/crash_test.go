package reliability

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
	"github.com/skrytka/skrytka/internal/testharness"
)

// The crash test runs the servers in a child process (this test binary,
// run again with childEnv set) so that it can be killed with SIGKILL. The
// child is the same wiring as the in-process stack; running the skrytka
// binary instead would send the MX's SPF/DKIM/DMARC lookups to the
// system resolver, off loopback.
const (
	childEnv      = "SKRYTKA_RELIABILITY_CHILD" // data directory
	childAddrsEnv = "SKRYTKA_RELIABILITY_ADDRS" // imap,pop3,smtp,lmtp
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		runChild(dir, strings.Split(os.Getenv(childAddrsEnv), ","))
	}
	code := m.Run()
	testharness.StopPG()
	os.Exit(code)
}

// runChild serves until killed.
func runChild(dir string, addrs []string) {
	var o stackOpts
	copy(o.Addrs[:], addrs)
	s, err := buildStack(dir, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	_ = s
	fmt.Println("ready")
	select {}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// crashBody is the message with the given id and approximate size. It is
// CRLF throughout and no line starts with a dot, so what was sent is what
// the store must hold after the trace headers.
func crashBody(id string, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <%s@crash.test>\r\nX-Crash-ID: %s\r\nFrom: sender@example.org\r\nSubject: crash %s\r\n\r\n", id, id, id)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%s:%05d:abcdefghijklmnopqrstuvwxyz0123456789\r\n", id, i)
	}
	return b.String()
}

func crashID(body []byte) string {
	const key = "X-Crash-ID: "
	i := strings.Index(string(body), "\r\n"+key)
	if i < 0 {
		return ""
	}
	rest := string(body[i+2+len(key):])
	j := strings.Index(rest, "\r\n")
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// crashSize picks a message size: mostly small, every fifth message larger
// than the embedded store's inline limit so it goes to a body file.
func crashSize(n int) int {
	if n%5 == 0 {
		return 70<<10 + rand.IntN(40<<10)
	}
	return 300 + rand.IntN(6000)
}

// ledger is what the clients learned: every message they tried to send
// and every success reply they got.
type ledger struct {
	mu       sync.Mutex
	sizes    map[string]int         // id -> size argument of crashBody
	acks     map[string][]string    // id -> recipients acknowledged
	uids     map[string]imapAck     // id -> APPENDUID (IMAP)
	byClient map[string][]store.UID // IMAP client -> acknowledged UIDs in order
	perProto map[string]int
	errs     []string
}

type imapAck struct {
	acct        string
	uidValidity uint32
	uid         store.UID
}

func newLedger() *ledger {
	return &ledger{sizes: map[string]int{}, acks: map[string][]string{}, uids: map[string]imapAck{},
		byClient: map[string][]store.UID{}, perProto: map[string]int{}}
}

func (l *ledger) tried(id string, size int) {
	l.mu.Lock()
	l.sizes[id] = size
	l.mu.Unlock()
}

func (l *ledger) ack(proto, id, rcpt string) {
	l.mu.Lock()
	l.acks[id] = append(l.acks[id], rcpt)
	l.perProto[proto]++
	l.mu.Unlock()
}

func (l *ledger) fail(format string, args ...any) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

var crashUsers = []string{"crash0@localhost", "crash1@localhost", "crash2@localhost"}

const popUser = "pop@localhost"

// lmtpWorker delivers to crash0, crash1 and (every other message) the POP3
// account, and records each recipient's 250.
func lmtpWorker(ctx context.Context, addr, name string, l *ledger) {
	n := 0
	for ctx.Err() == nil {
		w, err := dialWire(addr, 10*time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		func() {
			defer w.Close()
			if code, _, err := w.reply(); err != nil || code != 220 {
				return
			}
			if code, _, err := w.smtpCmd("LHLO crash.test"); err != nil || code != 250 {
				return
			}
			for ctx.Err() == nil {
				n++
				id := fmt.Sprintf("%s-%d", name, n)
				rcpts := []string{crashUsers[0], crashUsers[1]}
				if n%2 == 0 {
					rcpts = append(rcpts, popUser)
				}
				if code, _, err := w.smtpCmd("MAIL FROM:<sender@example.org>"); err != nil || code != 250 {
					return
				}
				for _, r := range rcpts {
					if code, _, err := w.smtpCmd("RCPT TO:<" + r + ">"); err != nil || code != 250 {
						return
					}
				}
				if code, _, err := w.smtpCmd("DATA"); err != nil || code != 354 {
					return
				}
				size := crashSize(n)
				l.tried(id, size)
				if err := w.send(crashBody(id, size) + ".\r\n"); err != nil {
					return
				}
				// RFC 2033 §4.2: one reply per accepted recipient, in order.
				for _, r := range rcpts {
					code, line, err := w.reply()
					if err != nil {
						return
					}
					if code == 250 {
						l.ack("lmtp", id, r)
					} else if code/100 == 5 {
						l.fail("lmtp %s to %s: permanent failure %q", id, r, line)
					}
				}
			}
		}()
	}
}

// smtpWorker delivers to crash1 and crash2 over the MX.
func smtpWorker(ctx context.Context, addr, name string, l *ledger) {
	n := 0
	for ctx.Err() == nil {
		w, err := dialWire(addr, 10*time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		func() {
			defer w.Close()
			if code, _, err := w.reply(); err != nil || code != 220 {
				return
			}
			if code, _, err := w.smtpCmd("EHLO crash.test"); err != nil || code != 250 {
				return
			}
			rcpts := []string{crashUsers[1], crashUsers[2]}
			for ctx.Err() == nil {
				n++
				id := fmt.Sprintf("%s-%d", name, n)
				if code, _, err := w.smtpCmd("MAIL FROM:<sender@example.org>"); err != nil || code != 250 {
					return
				}
				for _, r := range rcpts {
					if code, _, err := w.smtpCmd("RCPT TO:<" + r + ">"); err != nil || code != 250 {
						return
					}
				}
				if code, _, err := w.smtpCmd("DATA"); err != nil || code != 354 {
					return
				}
				size := crashSize(n)
				l.tried(id, size)
				if err := w.send(crashBody(id, size) + ".\r\n"); err != nil {
					return
				}
				code, line, err := w.reply()
				if err != nil {
					return
				}
				if code == 250 {
					for _, r := range rcpts {
						l.ack("smtp", id, r)
					}
				} else if code/100 == 5 {
					l.fail("smtp %s: permanent failure %q", id, line)
				}
			}
		}()
	}
}

// imapWorker APPENDs to user's INBOX and records APPENDUID.
func imapWorker(ctx context.Context, addr, name, user string, l *ledger) {
	n := 0
	for ctx.Err() == nil {
		w, err := imapLogin(addr, user, 10*time.Second)
		if err != nil {
			if errors.Is(err, errReply) {
				l.fail("imap %s: %v", name, err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		func() {
			defer w.Close()
			for ctx.Err() == nil {
				n++
				id := fmt.Sprintf("%s-%d", name, n)
				size := crashSize(n)
				body := crashBody(id, size)
				l.tried(id, size)
				if err := w.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(body), body)); err != nil {
					return
				}
				line, _, err := w.until("a ")
				if err != nil {
					return
				}
				var v, uid uint32
				if _, err := fmt.Sscanf(line, "a OK [APPENDUID %d %d]", &v, &uid); err != nil {
					if strings.Contains(line, "SERVERBUG") || strings.HasPrefix(line, "a BAD") {
						l.fail("imap append %s: %q", id, line)
					}
					return
				}
				l.mu.Lock()
				l.uids[id] = imapAck{user, v, store.UID(uid)}
				l.byClient[name] = append(l.byClient[name], store.UID(uid))
				l.mu.Unlock()
				l.ack("imap", id, user)
			}
		}()
	}
}

// moverWorker moves the oldest messages of user's INBOX to Archive, so
// that kills also land in the middle of MOVE (RFC 6851: atomic; a message
// must end up in exactly one of the two mailboxes).
func moverWorker(ctx context.Context, addr, user string, l *ledger, moved *atomic.Int64) {
	for ctx.Err() == nil {
		w, err := imapLogin(addr, user, 10*time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		func() {
			defer w.Close()
			w.send("s SELECT INBOX\r\n")
			if l, _, err := w.until("s "); err != nil || !strings.HasPrefix(l, "s OK") {
				return
			}
			for ctx.Err() == nil {
				if err := w.send("m MOVE 1:2 Archive\r\n"); err != nil {
					return
				}
				line, _, err := w.until("m ")
				if err != nil {
					return
				}
				switch {
				case strings.HasPrefix(line, "m OK"):
					moved.Add(1)
				case strings.Contains(line, "SERVERBUG"):
					l.fail("imap MOVE: %q", line)
					return
				default: // empty mailbox: wait for news
					time.Sleep(30 * time.Millisecond)
					w.send("n NOOP\r\n")
					if _, _, err := w.until("n "); err != nil {
						return
					}
				}
			}
		}()
	}
}

// popPending is a POP3 session's deletions whose fate is not yet checked.
type popPending struct {
	dele     []string // UIDLs marked with DELE (+OK)
	quitSent bool     // QUIT may have reached the server
	quitOK   bool     // QUIT answered +OK
}

type popStats struct {
	sessions, checked, inFlight, inFlightApplied, deleted atomic.Int64
}

// popWorker logs in, checks what became of the previous session's
// deletions (RFC 1939 §6: all in UPDATE, none without QUIT), marks up to
// three messages deleted and QUITs.
//
// quit, if not nil, is signalled (without blocking) right after each QUIT
// is sent, so the test can aim a kill at the UPDATE state.
func popWorker(ctx context.Context, addr string, l *ledger, st *popStats, quit chan<- struct{}) {
	var pending *popPending
	for ctx.Err() == nil {
		w, err := pop3Login(addr, popUser, 10*time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		func() {
			defer w.Close()
			if err := w.send("UIDL\r\n"); err != nil {
				return
			}
			if s, err := w.line(); err != nil || !strings.HasPrefix(s, "+OK") {
				return
			}
			lines, err := w.multiline()
			if err != nil {
				return
			}
			present := map[string]string{} // uidl -> msg number
			var order []string
			for _, s := range lines {
				num, uidl, _ := strings.Cut(s, " ")
				present[uidl] = num
				order = append(order, uidl)
			}
			if pending != nil {
				left := 0
				for _, u := range pending.dele {
					if _, ok := present[u]; ok {
						left++
					}
				}
				switch {
				case !pending.quitSent && left != len(pending.dele):
					l.fail("pop3: session without QUIT lost %d of %d messages", len(pending.dele)-left, len(pending.dele))
				case pending.quitOK && left != 0:
					l.fail("pop3: QUIT +OK but %d of %d deleted messages remain", left, len(pending.dele))
				case left != 0 && left != len(pending.dele):
					l.fail("pop3: kill during UPDATE left %d of %d deletions undone", left, len(pending.dele))
				}
				if pending.quitSent && !pending.quitOK {
					st.inFlight.Add(1)
					if left == 0 {
						st.inFlightApplied.Add(1)
					}
				}
				st.checked.Add(1)
				pending = nil
			}
			st.sessions.Add(1)
			var dele []string
			for _, u := range order {
				if len(dele) == 3 {
					break
				}
				if err := w.send("DELE " + present[u] + "\r\n"); err != nil {
					return
				}
				s, err := w.line()
				if err != nil {
					if len(dele) > 0 {
						pending = &popPending{dele: dele}
					}
					return
				}
				if !strings.HasPrefix(s, "+OK") {
					l.fail("pop3 DELE: %q", s)
					return
				}
				dele = append(dele, u)
			}
			if len(dele) == 0 {
				w.send("QUIT\r\n")
				time.Sleep(20 * time.Millisecond)
				return
			}
			pending = &popPending{dele: dele, quitSent: true}
			if err := w.send("QUIT\r\n"); err != nil {
				return
			}
			select {
			case quit <- struct{}{}:
			default:
			}
			if s, err := w.line(); err == nil && strings.HasPrefix(s, "+OK") {
				pending.quitOK = true
				st.deleted.Add(int64(len(dele)))
			}
		}()
	}
}

// child is one run of the server process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startChild(t *testing.T, dir string, addrs []string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, childAddrsEnv+"="+strings.Join(addrs, ","))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(c.kill) // never leave a server behind, whatever happens
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(c.done)
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			<-c.done
			t.Fatalf("child did not start: %q\n%s", line, stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("child did not start within 60 s")
	}
	return c
}

func (c *child) kill() {
	select {
	case <-c.done:
	default:
		c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
	}
}

// TestCrashSIGKILL delivers over LMTP and SMTP, APPENDs over IMAP and
// deletes over POP3 from several clients while the server process is
// killed with SIGKILL at random moments and restarted. Afterwards every
// acknowledged message is stored byte for byte, exactly once per
// recipient; IMAP UIDs are unique, increasing and match APPENDUID; the
// database passes an integrity check and every body file is referenced;
// and no POP3 session's deletions were applied in part.
func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test in -short mode")
	}
	kills := envInt("SKRYTKA_CRASH_KILLS", 20)
	dir := t.TempDir()
	st, err := embedded.Open(context.Background(), dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range append(append([]string(nil), crashUsers...), popUser) {
		a, err := createUser(st, u)
		if err != nil {
			t.Fatal(err)
		}
		if u == popUser {
			// POP3 deletions move to Trash here (several rows per
			// message in one UPDATE); TestCrashBinary keeps the default,
			// expunge.
			if err := st.SetDownloadPolicy(context.Background(), a.ID, "trash"); err != nil {
				t.Fatal(err)
			}
		}
	}
	validity := map[string]uint32{}
	for _, u := range crashUsers {
		a, _ := st.Account(context.Background(), u)
		mb, _ := st.Mailbox(context.Background(), a.ID, store.InboxName)
		validity[u] = mb.UIDValidity
	}
	st.Close()

	addrs := testharness.FreeAddrs(t, 4)
	led := newLedger()
	var pst popStats
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	for i := 0; i < 2; i++ {
		run(func() { lmtpWorker(ctx, addrs[3], fmt.Sprintf("lmtp%d", i), led) })
		run(func() { smtpWorker(ctx, addrs[2], fmt.Sprintf("smtp%d", i), led) })
	}
	for i, u := range crashUsers {
		run(func() { imapWorker(ctx, addrs[0], fmt.Sprintf("imap%d", i), u, led) })
	}
	quit := make(chan struct{}, 1)
	run(func() { popWorker(ctx, addrs[1], led, &pst, quit) })
	var moved atomic.Int64
	run(func() { moverWorker(ctx, addrs[0], crashUsers[2], led, &moved) })

	start := time.Now()
	for k := 0; k < kills; k++ {
		select {
		case <-quit:
		default:
		}
		c := startChild(t, dir, addrs)
		if k%2 == 1 {
			// Aim at POP3's UPDATE: kill within 30 ms of a QUIT.
			select {
			case <-quit:
				time.Sleep(time.Duration(rand.IntN(30000)) * time.Microsecond)
			case <-time.After(3 * time.Second):
			}
		} else {
			time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		}
		c.kill()
	}
	// One last run so the POP3 client can check the session that was in
	// flight at the last kill, then stop the clients and kill once more.
	c := startChild(t, dir, addrs)
	for checked := pst.checked.Load(); pst.checked.Load() == checked; {
		if time.Since(start) > 10*time.Minute {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	c.kill()
	wg.Wait()

	led.mu.Lock()
	defer led.mu.Unlock()
	for _, e := range led.errs {
		t.Error(e)
	}
	acked := 0
	for _, rs := range led.acks {
		acked += len(rs)
	}
	t.Logf("%d kills in %v; acknowledged %d deliveries (%v), %d messages tried; POP3: %d sessions, %d checked, %d with QUIT in flight at a kill (%d of them applied in full, the others not at all), %d messages deleted after +OK",
		kills, time.Since(start).Round(time.Millisecond), acked, led.perProto, len(led.sizes),
		pst.sessions.Load(), pst.checked.Load(), pst.inFlight.Load(), pst.inFlightApplied.Load(), pst.deleted.Load())
	t.Logf("IMAP MOVE to Archive acknowledged %d times", moved.Load())
	if acked < kills {
		t.Errorf("only %d deliveries acknowledged in %d runs: the clients did not get through", acked, kills)
	}
	verifyCrashStore(t, dir, led, validity, true)
}

// verifyCrashStore opens the store after the last kill and checks it
// against the ledger.
//
// popKeeps says POP3 deletions moved mail to Trash rather than expunging
// it, so the POP3 account's acknowledged messages must all be there too.
func verifyCrashStore(t *testing.T, dir string, led *ledger, validity map[string]uint32, popKeeps bool) {
	t.Helper()
	ctx := context.Background()
	st, err := embedded.Open(ctx, dir, embedded.Options{})
	if err != nil {
		t.Fatalf("store does not open after the last kill: %v", err)
	}
	type found struct {
		count   int
		uid     store.UID
		mailbox string
	}
	verified := 0
	stored := map[string]map[string]*found{} // account -> id -> found
	for _, u := range append(append([]string(nil), crashUsers...), popUser) {
		acct, err := st.Account(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		mbs, err := st.Mailboxes(ctx, acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored[u] = map[string]*found{}
		for _, mb := range mbs {
			if mb.Name == store.InboxName && validity[u] != 0 && mb.UIDValidity != validity[u] {
				t.Errorf("%s INBOX UIDVALIDITY changed from %d to %d", u, validity[u], mb.UIDValidity)
			}
			var uids []store.UID
			err := st.Messages(ctx, acct.ID, mb.ID, store.UIDSet{{Start: 1, Stop: 1<<32 - 1}}, store.FetchOptions{}, func(m *store.Message) error {
				uids = append(uids, m.UID)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, uid := range uids {
				if i > 0 && uid <= uids[i-1] {
					t.Errorf("%s %s: UIDs not strictly increasing: %d after %d", u, mb.Name, uid, uids[i-1])
				}
				if uid >= mb.UIDNext {
					t.Errorf("%s %s: UID %d >= UIDNEXT %d", u, mb.Name, uid, mb.UIDNext)
				}
				r, err := st.OpenMessage(ctx, acct.ID, mb.ID, uid)
				if err != nil {
					t.Fatalf("%s %s UID %d: %v", u, mb.Name, uid, err)
				}
				data, err := io.ReadAll(r)
				r.Close()
				if err != nil {
					t.Fatalf("%s %s UID %d: read: %v", u, mb.Name, uid, err)
				}
				id := crashID(data)
				size, ok := led.sizes[id]
				if !ok {
					t.Errorf("%s %s UID %d: message %q was never sent", u, mb.Name, uid, id)
					continue
				}
				want := crashBody(id, size)
				if strings.HasPrefix(id, "imap") {
					if string(data) != want {
						t.Errorf("%s UID %d (%s): APPENDed bytes differ", u, uid, id)
					}
				} else if !strings.HasSuffix(string(data), want) {
					t.Errorf("%s UID %d (%s): delivered bytes differ after the trace headers", u, uid, id)
				}
				f := stored[u][id]
				if f == nil {
					f = &found{uid: uid, mailbox: mb.Name}
					stored[u][id] = f
				}
				f.count++
				if f.count > 1 {
					t.Errorf("%s: message %s stored %d times (now also in %s)", u, id, f.count, mb.Name)
				}
			}
		}
	}
	for id, rcpts := range led.acks {
		for _, r := range rcpts {
			f := stored[r][id]
			if r == popUser && !popKeeps {
				continue // POP3 may have expunged it; duplicates were checked above
			}
			if f == nil {
				t.Errorf("acknowledged message %s for %s is missing", id, r)
				continue
			}
			verified++
			if a, ok := led.uids[id]; ok && a.acct == r && f.mailbox == store.InboxName {
				if a.uid != f.uid {
					t.Errorf("%s: APPENDUID said %d, stored at %d", id, a.uid, f.uid)
				}
				if a.uidValidity != validity[r] {
					t.Errorf("%s: APPENDUID validity %d, want %d", id, a.uidValidity, validity[r])
				}
			}
		}
	}
	for name, uids := range led.byClient {
		if !sort.SliceIsSorted(uids, func(i, j int) bool { return uids[i] < uids[j] }) {
			t.Errorf("%s: APPENDUIDs not increasing: %v", name, uids)
		}
	}
	t.Logf("verified %d acknowledged deliveries byte for byte", verified)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	checkDatabase(t, dir)
}

// checkDatabase runs SQLite's integrity and foreign-key checks and
// compares body files on disk with the rows that reference them.
func checkDatabase(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "skrytka.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check: %q %v", res, err)
	}
	refs := map[string]bool{}
	rows, err := db.Query(`SELECT file FROM blobs WHERE file IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var f string
		rows.Scan(&f)
		refs[f] = true
	}
	rows.Close()
	var orphans int
	if err := db.QueryRow(`SELECT count(*) FROM messages WHERE blob_id NOT IN (SELECT id FROM blobs)`).Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("messages without a body row: %d %v", orphans, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "blobs", "*", "*"))
	onDisk := map[string]bool{}
	for _, f := range files {
		onDisk[filepath.Base(f)] = true
		if !refs[filepath.Base(f)] {
			t.Errorf("unreferenced body file %s", f)
		}
	}
	for f := range refs {
		if !onDisk[f] {
			if _, err := os.Stat(filepath.Join(dir, "tmp", f)); err != nil {
				t.Errorf("referenced body file %s missing", f)
			}
		}
	}
	t.Logf("database ok; %d body files, all referenced", len(onDisk))
}
