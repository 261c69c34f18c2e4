package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakStats counts what the soak clients did.
type soakStats struct {
	ops   [5]atomic.Int64 // imap, pop3, smtp, lmtp, rude
	conns atomic.Int64
	mu    sync.Mutex
	errs  []string
}

func (s *soakStats) fail(format string, args ...any) {
	s.mu.Lock()
	if len(s.errs) < 50 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	}
	s.mu.Unlock()
}

func soakUser(i int) string { return fmt.Sprintf("soak%d@localhost", i) }

// TestSoak runs hundreds of connections doing a mix of IMAP, POP3, SMTP
// and LMTP work against one in-process server, then checks that no client
// saw an unexpected reply and that goroutines and heap return to their
// baseline once the clients are gone. SKRYTKA_SOAK sets the duration
// (default 20s), SKRYTKA_SOAK_CONNS the connections (default 300).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test in -short mode")
	}
	dur := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("SKRYTKA_SOAK")); err == nil && d > 0 {
		dur = d
	}
	defConns := 300
	if raceEnabled {
		defConns = 150
	}
	conns := envInt("SKRYTKA_SOAK_CONNS", defConns)
	s := startStack(t, stackOpts{})
	users := max(conns/5, 4)
	// The soak measures protocol work, not argon2id: its accounts carry a
	// cheap hash (see createUser), so hundreds of logins do not queue
	// behind the password-check slots. The abuse tests use
	// production-cost hashes.
	for i := 0; i < users; i++ {
		a := s.addUser(t, soakUser(i))
		appendMsg(t, s.Store, a, "INBOX", "Subject: seed\r\n\r\nseed\r\n")
	}
	baseG := runtime.NumGoroutine()
	baseHeap := heapInUse()

	var st soakStats
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	// Of every 10 connections: 4 IMAP, 1 IMAP that hangs up rudely
	// (mid-literal, mid-DATA, during IDLE), 1 POP3 (one per account: the
	// maildrop lock is exclusive), 2 SMTP, 2 LMTP.
	pop := 0
	for i := 0; i < conns; i++ {
		wg.Add(1)
		switch i % 10 {
		case 0:
			go func() { defer wg.Done(); soakRude(ctx, s, soakUser(i%users), &st) }()
		case 2, 4, 6, 8:
			go func() { defer wg.Done(); soakIMAP(ctx, s.IMAPAddr, soakUser(i%users), &st) }()
		case 1:
			u := soakUser(pop % users)
			pop++
			go func() { defer wg.Done(); soakPOP3(ctx, s.POP3Addr, u, &st) }()
		case 3, 7:
			go func() { defer wg.Done(); soakSMTP(ctx, s.SMTPAddr, "EHLO", users, &st, 2) }()
		default:
			go func() { defer wg.Done(); soakSMTP(ctx, s.LMTPAddr, "LHLO", users, &st, 3) }()
		}
	}
	peakG := 0
	for ctx.Err() == nil {
		peakG = max(peakG, runtime.NumGoroutine())
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	wg.Wait()

	for _, e := range st.errs {
		t.Error(e)
	}
	total := int64(0)
	for i := range st.ops {
		total += st.ops[i].Load()
	}
	t.Logf("%v, %d connections opened (%d concurrent clients): %d operations (IMAP %d, POP3 %d, SMTP %d, LMTP %d, rude hang-ups %d), %d errors; peak goroutines %d",
		dur, st.conns.Load(), conns, total, st.ops[0].Load(), st.ops[1].Load(), st.ops[2].Load(), st.ops[3].Load(), st.ops[4].Load(), len(st.errs), peakG)
	if total < int64(conns) {
		t.Errorf("only %d operations", total)
	}
	// The servers' connection goroutines end once the clients are gone.
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > baseG+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > baseG+5 {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("goroutines: %d before, %d after the clients left\n%s", baseG, g, buf[:n])
	}
	// Bodies abandoned by the rude clients left no staging files.
	deadline = time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(filepath.Join(s.Dir, "tmp"))
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d staging files left behind", len(ents))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	heap := heapInUse()
	t.Logf("heap: %d KiB before, %d KiB after; goroutines %d before, %d after", baseHeap>>10, heap>>10, baseG, runtime.NumGoroutine())
	if int64(heap)-int64(baseHeap) > 48<<20 {
		t.Errorf("heap grew from %d MiB to %d MiB", baseHeap>>20, heap>>20)
	}
}

// soakTimeout bounds each read and write of a soak client.
const soakTimeout = 90 * time.Second

func soakIMAP(ctx context.Context, addr, user string, st *soakStats) {
	w, err := imapLogin(addr, user, soakTimeout)
	if err != nil {
		st.fail("imap login %s: %v", user, err)
		return
	}
	defer w.Close()
	st.conns.Add(1)
	n := 0
	cmd := func(line string, literal string) bool {
		n++
		tag := fmt.Sprintf("t%d", n)
		if literal != "" {
			line += fmt.Sprintf(" {%d+}\r\n%s", len(literal), literal)
		}
		if err := w.send(tag + " " + line + "\r\n"); err != nil {
			st.fail("imap %s %q: %v", user, line, err)
			return false
		}
		l, _, err := w.until(tag + " ")
		if err != nil || !strings.HasPrefix(l, tag+" OK") {
			st.fail("imap %s %.60q: %q %v", user, line, l, err)
			return false
		}
		st.ops[0].Add(1)
		return true
	}
	if !cmd("SELECT INBOX", "") {
		return
	}
	for i := 0; ctx.Err() == nil; i++ {
		var ok bool
		switch i % 6 {
		case 0:
			ok = cmd("APPEND INBOX (\\Seen)", fmt.Sprintf("Subject: soak %d\r\n\r\n%s\r\n", i, strings.Repeat("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\r\n", rand.IntN(60))))
		case 1:
			ok = cmd("FETCH 1:* (FLAGS UID RFC822.SIZE)", "")
		case 2:
			ok = cmd("UID SEARCH SUBJECT soak", "")
		case 3:
			ok = cmd("FETCH 1 (BODY.PEEK[HEADER] BODYSTRUCTURE)", "")
		case 4:
			ok = cmd("STATUS Trash (MESSAGES UIDNEXT)", "")
		case 5:
			ok = cmd("NOOP", "")
		}
		if !ok {
			return
		}
	}
	w.send("z LOGOUT\r\n")
}

func soakPOP3(ctx context.Context, addr, user string, st *soakStats) {
	for ctx.Err() == nil {
		w, err := pop3Login(addr, user, soakTimeout)
		if err != nil {
			st.fail("pop3 login %s: %v", user, err)
			return
		}
		st.conns.Add(1)
		ok := true
		for _, c := range []string{"STAT", "UIDL", "RETR 1", "LIST", "DELE 1", "QUIT"} {
			if ctx.Err() != nil && c != "QUIT" {
				continue
			}
			if err := w.send(c + "\r\n"); err != nil {
				st.fail("pop3 %s: %v", c, err)
				ok = false
				break
			}
			l, err := w.line()
			if err != nil || !strings.HasPrefix(l, "+OK") {
				if c == "RETR 1" || c == "DELE 1" { // the maildrop may be empty
					if strings.HasPrefix(l, "-ERR no such message") {
						continue
					}
				}
				st.fail("pop3 %s %s: %q %v", user, c, l, err)
				ok = false
				break
			}
			if c == "UIDL" || c == "RETR 1" || c == "LIST" {
				if _, err := w.multiline(); err != nil {
					st.fail("pop3 %s: %v", c, err)
					ok = false
					break
				}
			}
			st.ops[1].Add(1)
		}
		w.Close()
		if !ok {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func soakSMTP(ctx context.Context, addr, hello string, users int, st *soakStats, idx int) {
	w, err := dialWire(addr, soakTimeout)
	if err != nil {
		st.fail("%s dial: %v", hello, err)
		return
	}
	defer w.Close()
	st.conns.Add(1)
	if code, l, err := w.reply(); code != 220 {
		st.fail("%s greeting %q %v", hello, l, err)
		return
	}
	if code, l, err := w.smtpCmd(hello + " soak.example.org"); code != 250 {
		st.fail("%s: %q %v", hello, l, err)
		return
	}
	for i := 0; ctx.Err() == nil; i++ {
		rcpts := []string{soakUser(rand.IntN(users)), soakUser(rand.IntN(users))}
		if rcpts[0] == rcpts[1] {
			rcpts = rcpts[:1]
		}
		steps := []string{"MAIL FROM:<soak@example.org>"}
		for _, r := range rcpts {
			steps = append(steps, "RCPT TO:<"+r+">")
		}
		for _, c := range steps {
			if code, l, err := w.smtpCmd(c); code != 250 {
				st.fail("%s %s: %q %v", hello, c, l, err)
				return
			}
		}
		if code, l, err := w.smtpCmd("DATA"); code != 354 {
			st.fail("%s DATA: %q %v", hello, l, err)
			return
		}
		w.send(fmt.Sprintf("From: soak@example.org\r\nSubject: soak %d\r\n\r\n%s\r\n.\r\n", i, strings.Repeat("qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\r\n", rand.IntN(100))))
		replies := 1
		if hello == "LHLO" {
			replies = len(rcpts)
		}
		for r := 0; r < replies; r++ {
			if code, l, err := w.reply(); code != 250 {
				st.fail("%s end of DATA: %q %v", hello, l, err)
				return
			}
		}
		st.ops[idx].Add(1)
	}
	w.smtpCmd("QUIT")
}

// soakRude logs in and hangs up at awkward moments: in the middle of an
// APPEND literal (past the inline limit, so a staging file exists), during
// IDLE, in the middle of an LMTP DATA, and right after a command without
// reading its reply.
func soakRude(ctx context.Context, s *stack, user string, st *soakStats) {
	for i := 0; ctx.Err() == nil; i++ {
		switch i % 4 {
		case 0, 1, 3:
			w, err := imapLogin(s.IMAPAddr, user, soakTimeout)
			if err != nil {
				st.fail("rude imap login %s: %v", user, err)
				return
			}
			st.conns.Add(1)
			switch i % 4 {
			case 0:
				w.send("a APPEND INBOX {200000+}\r\nSubject: cut\r\n\r\n" + strings.Repeat("cut off here\r\n", 7000))
			case 1:
				w.send("s SELECT INBOX\r\n")
				w.until("s ")
				w.send("i IDLE\r\n")
				w.line()
				time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
			case 3:
				w.send("s SELECT INBOX\r\nf FETCH 1:* (BODY.PEEK[])\r\n")
			}
			w.Close()
		case 2:
			w, err := dialWire(s.LMTPAddr, soakTimeout)
			if err != nil {
				st.fail("rude lmtp: %v", err)
				return
			}
			st.conns.Add(1)
			w.reply()
			w.smtpCmd("LHLO rude.example.org")
			w.smtpCmd("MAIL FROM:<rude@example.org>")
			w.smtpCmd("RCPT TO:<" + user + ">")
			w.smtpCmd("DATA")
			w.send("Subject: cut\r\n\r\n" + strings.Repeat("cut off here\r\n", 20000))
			w.Close()
		}
		st.ops[4].Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
