package postgres

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/testharness"
)

// skrytkaNode is one `skrytka serve` process.
type skrytkaNode struct {
	cmd                   *exec.Cmd
	stderr                *testharness.SyncBuffer
	exited                chan struct{} // closed once cmd.Wait returned (Wait is called exactly once)
	waitErr               error
	cfg                   string
	imap, pop, lmtp, smtp string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return testharness.FreeAddrs(t, 1)[0]
}

func buildSkrytka(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "skrytka")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/skrytka/skrytka/cmd/skrytka").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func writeNodeConfig(t *testing.T, dsn string) *skrytkaNode {
	t.Helper()
	dir := t.TempDir()
	n := &skrytkaNode{imap: freeAddr(t), pop: freeAddr(t), lmtp: freeAddr(t), smtp: freeAddr(t)}
	n.cfg = filepath.Join(dir, "skrytka.toml")
	conf := fmt.Sprintf(`data_dir = %q
hostname = "localhost"
domains = ["example.com"]
[imap]
listen = %q
tls_listen = ""
[pop3]
listen = %q
tls_listen = ""
[smtp]
listen = %q
[lmtp]
listen = %q
[submission]
listen = ""
tls_listen = ""
[storage]
backend = "postgres"
dsn = %q
`, filepath.Join(dir, "data"), n.imap, n.pop, n.smtp, n.lmtp, dsn)
	if err := os.WriteFile(n.cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *skrytkaNode) start(t *testing.T, bin string) {
	t.Helper()
	n.stderr = &testharness.SyncBuffer{}
	n.cmd = exec.Command(bin, "serve", "-config", n.cfg)
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func() {
		// The only call to Wait: a second, concurrent Wait races inside
		// os/exec and can block forever.
		n.waitErr = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			n.cmd.Process.Kill()
			<-n.exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", n.imap)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-n.exited:
			err := n.waitErr
			if strings.Contains(n.stderr.String(), "not part of this build") {
				t.Skipf("this build of skrytka has no postgres backend: %s", n.stderr)
			}
			t.Fatalf("skrytka serve exited: %v\n%s", err, n.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("skrytka serve not listening after 30s\n%s", n.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lmtpDeliver delivers one message over LMTP and reports whether the
// recipient's reply was 250.
func lmtpDeliver(t *testing.T, addr, rcpt, subject string) bool {
	t.Helper()
	ok, _ := lmtpTry(t, addr, rcpt, subject)
	return ok
}

// lmtpTry is lmtpDeliver that also returns the first reply that was not
// the expected one ("" when all were).
func lmtpTry(t *testing.T, addr, rcpt, subject string) (bool, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, err.Error()
	}
	defer c.Close()
	l := &lineConn{t: t, c: c, br: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := l.br.ReadString('\n'); err != nil {
		return false, err.Error()
	}
	steps := []struct{ send, want string }{
		{"LHLO test", "250 "},
		{"MAIL FROM:<sender@example.net>", "250"},
		{"RCPT TO:<" + rcpt + ">", "250"},
		{"DATA", "354"},
		{"From: sender@example.net\r\nTo: " + rcpt + "\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject + "@example.net>\r\n\r\nhello\r\n.", "250"},
	}
	for _, s := range steps {
		if _, err := fmt.Fprintf(c, "%s\r\n", s.send); err != nil {
			return false, err.Error()
		}
		for {
			line, err := l.br.ReadString('\n')
			if err != nil {
				return false, err.Error()
			}
			if len(line) >= 4 && line[3] == '-' {
				continue // continuation of a multi-line reply
			}
			if !strings.HasPrefix(line, s.want[:3]) {
				return false, strings.TrimSpace(line)
			}
			break
		}
	}
	fmt.Fprintf(c, "QUIT\r\n")
	return true, ""
}

// TestBinaryTwoNodes is the multi-node test of the scale-out issue with
// two real `skrytka serve` processes on one database: IDLE on node A sees
// EXISTS within 1 s for mail delivered through node B's LMTP, and
// FETCH/EXPUNGE for changes made by an IMAP session on node B; a POP3
// session on A refuses a POP3 login on B; SIGKILL of node A while it
// acknowledges deliveries loses no acknowledged message and frees A's
// POP3 lock within the lease time.
func TestBinaryTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds skrytka and waits for a lease to expire")
	}
	dsn, _ := func() (string, *Store) {
		s, dsn := openTest(t, Options{})
		return dsn, s
	}()
	bin := buildSkrytka(t)
	a, b := writeNodeConfig(t, dsn), writeNodeConfig(t, dsn)
	add := exec.Command(bin, "user", "add", "multi@example.com", "-password-stdin", "-config", a.cfg)
	add.Stdin = strings.NewReader("s3cret-password\n")
	if out, err := add.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "not part of this build") {
			t.Skipf("this build of skrytka has no postgres backend: %s", out)
		}
		t.Fatalf("user add: %v\n%s", err, out)
	}
	a.start(t, bin)
	b.start(t, bin)

	ia := dialLine(t, a.imap)
	if r, _ := ia.cmd("a1", "LOGIN multi@example.com s3cret-password"); !strings.HasPrefix(r, "a1 OK") {
		t.Fatalf("login on A: %s", r)
	}
	if r, _ := ia.cmd("a2", "SELECT INBOX"); !strings.HasPrefix(r, "a2 OK") {
		t.Fatalf("select on A: %s", r)
	}
	ia.send("a3 IDLE")
	ia.until("+", 5*time.Second)
	t0 := time.Now()
	if !lmtpDeliver(t, b.lmtp, "multi@example.com", "via-b") {
		t.Fatalf("LMTP delivery through node B failed\n%s", b.stderr)
	}
	ia.until("* 1 EXISTS", time.Second+time.Since(t0))
	t.Logf("EXISTS on node A %v after LMTP delivery through node B began", time.Since(t0).Round(time.Millisecond))

	ib := dialLine(t, b.imap)
	ib.cmd("b1", "LOGIN multi@example.com s3cret-password")
	ib.cmd("b2", "SELECT INBOX")
	if r, _ := ib.cmd("b3", `STORE 1 +FLAGS (\Flagged)`); !strings.HasPrefix(r, "b3 OK") {
		t.Fatalf("store on B: %s", r)
	}
	if l, _ := ia.until("* 1 FETCH", time.Second); !strings.Contains(l, `\Flagged`) {
		t.Fatalf("FETCH on A: %s", l)
	}
	ib.cmd("b4", `STORE 1 +FLAGS (\Deleted)`)
	ib.cmd("b5", "EXPUNGE")
	ia.until("* 1 EXPUNGE", time.Second)
	ia.send("DONE")
	ia.until("a3 OK", 5*time.Second)

	pa := dialLine(t, a.pop)
	pa.send("USER multi@example.com")
	pa.line(5 * time.Second)
	pa.send("PASS s3cret-password")
	if r := pa.line(10 * time.Second); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 login on A: %s", r)
	}
	pb := dialLine(t, b.pop)
	pb.send("USER multi@example.com")
	pb.line(5 * time.Second)
	pb.send("PASS s3cret-password")
	if r := pb.line(10 * time.Second); !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Fatalf("POP3 login on B while A holds the lock: %s", r)
	}

	// Deliveries through A while it is killed: every acknowledged one must
	// be in the store afterwards.
	acked := make(chan string, 1000)
	stop := make(chan struct{})
	go func() {
		defer close(acked)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			subj := fmt.Sprintf("kill-%d", i)
			if lmtpDeliver(t, a.lmtp, "multi@example.com", subj) {
				acked <- subj
			} else {
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	a.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	close(stop)
	var ackedSubjects []string
	for s := range acked {
		ackedSubjects = append(ackedSubjects, s)
	}
	check := openDSN(t, dsn, Options{})
	ctx := context.Background()
	acct, err := check.Account(ctx, "multi@example.com")
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := check.Mailbox(ctx, acct.ID, "INBOX")
	have := map[string]bool{}
	err = check.Messages(ctx, acct.ID, inbox.ID, store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}, store.FetchOptions{Parsed: true}, func(m *store.Message) error {
		have[m.Parsed.Envelope.Subject] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ackedSubjects {
		if !have[s] {
			t.Errorf("acknowledged message %q lost when node A was killed", s)
		}
	}
	t.Logf("%d deliveries acknowledged by node A before SIGKILL, all present", len(ackedSubjects))

	// A's POP3 lease expires within the lease time (DefaultLeaseTTL).
	for {
		pb := dialLine(t, b.pop)
		pb.send("USER multi@example.com")
		pb.line(5 * time.Second)
		pb.send("PASS s3cret-password")
		r := pb.line(10 * time.Second)
		if strings.HasPrefix(r, "+OK") {
			pb.send("QUIT")
			break
		}
		if !strings.HasPrefix(r, "-ERR [IN-USE]") {
			t.Fatalf("POP3 login on B after A died: %s", r)
		}
		if time.Since(killed) > DefaultLeaseTTL+5*time.Second {
			t.Fatalf("A's POP3 lock still held %v after SIGKILL", time.Since(killed))
		}
		time.Sleep(time.Second)
	}
	t.Logf("A's POP3 lock released %v after SIGKILL (lease %v)", time.Since(killed).Round(time.Second), DefaultLeaseTTL)
}
