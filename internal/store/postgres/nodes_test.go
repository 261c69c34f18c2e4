package postgres

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/imapd"
	"github.com/skrytka/skrytka/internal/pop3d"
	"github.com/skrytka/skrytka/internal/smtpd"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/testharness"
)

// node is one Skrytka "node" in this process: IMAP and POP3 servers over
// their own Store, sharing the database with the other nodes.
type node struct {
	st              *Store
	imap, pop, lmtp string
}

func startNode(t *testing.T, dsn string, opts Options) *node {
	t.Helper()
	st := openDSN(t, dsn, opts)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	au := &auth.Authenticator{Store: st}
	is := imapd.New(imapd.Options{Store: st, Auth: au, Logger: quiet})
	ps := pop3d.New(pop3d.Options{Store: st, Auth: au, Logger: quiet})
	iln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lm := smtpd.New(smtpd.Options{Mode: smtpd.ModeLMTP, Store: st, Domains: []string{"example.com"}, Logger: quiet})
	lln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go is.Serve(iln)
	go ps.Serve(pln)
	go lm.Serve(lln)
	t.Cleanup(func() { is.Close(); ps.Close(); lm.Close() })
	return &node{st: st, imap: iln.Addr().String(), pop: pln.Addr().String(), lmtp: lln.Addr().String()}
}

// lineConn is a minimal line client for raw protocol exchanges.
type lineConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l := &lineConn{t: t, c: c, br: bufio.NewReader(c)}
	l.line(5 * time.Second) // greeting
	return l
}

func (l *lineConn) send(s string) {
	l.t.Helper()
	if _, err := io.WriteString(l.c, s+"\r\n"); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lineConn) line(d time.Duration) string {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(d))
	s, err := l.br.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read: %v (have %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

// until reads lines until one starts with prefix, returning it and the
// lines before it.
func (l *lineConn) until(prefix string, d time.Duration) (string, []string) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	var before []string
	for {
		left := time.Until(deadline)
		if left <= 0 {
			l.t.Fatalf("no line starting %q within %v; got %q", prefix, d, before)
		}
		s := l.line(left)
		if strings.HasPrefix(s, prefix) {
			return s, before
		}
		before = append(before, s)
	}
}

// cmd sends an IMAP command with tag and returns its tagged reply.
func (l *lineConn) cmd(tag, c string) (string, []string) {
	l.t.Helper()
	l.send(tag + " " + c)
	return l.until(tag+" ", 10*time.Second)
}

func newUser(t *testing.T, s *Store, addr, pass string) store.Account {
	t.Helper()
	h, err := auth.HashPassword(pass)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateAccount(context.Background(), addr, h)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestTwoNodesIMAPAndPOP3 runs two nodes on one database: an IMAP client
// idling on node A sees, within a second, mail delivered through node B
// and the flag change and expunge made by an IMAP session on node B; a
// POP3 session on A refuses a POP3 login on B until it quits.
func TestTwoNodesIMAPAndPOP3(t *testing.T) {
	_, dsn := openTest(t, Options{})
	a := startNode(t, dsn, Options{})
	b := startNode(t, dsn, Options{})
	acct := newUser(t, a.st, "multi@example.com", "s3cret")

	ia := dialLine(t, a.imap)
	if r, _ := ia.cmd("a1", "LOGIN multi@example.com s3cret"); !strings.HasPrefix(r, "a1 OK") {
		t.Fatalf("login on A: %s", r)
	}
	if r, _ := ia.cmd("a2", "SELECT INBOX"); !strings.HasPrefix(r, "a2 OK") {
		t.Fatalf("select on A: %s", r)
	}
	ia.send("a3 IDLE")
	ia.until("+", 5*time.Second)

	// Deliver through node B.
	st, err := b.st.Stage(context.Background(), strings.NewReader(testMessage("cross", "hello from B")), 0)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if errs, err := b.st.Deliver(context.Background(), st, []store.DeliveryTarget{{Account: acct.ID}}); err != nil || errs[0] != nil {
		t.Fatalf("deliver via B: %v %v", errs, err)
	}
	st.Discard()
	ia.until("* 1 EXISTS", time.Second)
	t.Logf("EXISTS on node A %v after delivery through node B", time.Since(t0).Round(time.Millisecond))

	// Flags and expunge from an IMAP session on node B.
	ib := dialLine(t, b.imap)
	ib.cmd("b1", "LOGIN multi@example.com s3cret")
	if r, _ := ib.cmd("b2", "SELECT INBOX"); !strings.HasPrefix(r, "b2 OK") {
		t.Fatalf("select on B: %s", r)
	}
	if r, _ := ib.cmd("b3", `STORE 1 +FLAGS (\Flagged)`); !strings.HasPrefix(r, "b3 OK") {
		t.Fatalf("store on B: %s", r)
	}
	if l, _ := ia.until("* 1 FETCH", time.Second); !strings.Contains(l, `\Flagged`) {
		t.Fatalf("FETCH on A without the flag: %s", l)
	}
	ib.cmd("b4", `STORE 1 +FLAGS (\Deleted)`)
	if r, _ := ib.cmd("b5", "EXPUNGE"); !strings.HasPrefix(r, "b5 OK") {
		t.Fatalf("expunge on B: %s", r)
	}
	ia.until("* 1 EXPUNGE", time.Second)
	ia.send("DONE")
	ia.until("a3 OK", 5*time.Second)

	// POP3: a session on A holds the maildrop; B refuses until A quits.
	pa := dialLine(t, a.pop)
	pa.send("USER multi@example.com")
	pa.line(5 * time.Second)
	pa.send("PASS s3cret")
	if r := pa.line(10 * time.Second); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 login on A: %s", r)
	}
	pb := dialLine(t, b.pop)
	pb.send("USER multi@example.com")
	pb.line(5 * time.Second)
	pb.send("PASS s3cret")
	if r := pb.line(10 * time.Second); !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Fatalf("POP3 login on B while A holds the lock: %s", r)
	}
	pa.send("QUIT")
	pa.line(5 * time.Second)
	// pop3d may release the lock just after its +OK to QUIT; allow that
	// moment, but no more.
	quit := time.Now()
	for {
		pb2 := dialLine(t, b.pop)
		pb2.send("USER multi@example.com")
		pb2.line(5 * time.Second)
		pb2.send("PASS s3cret")
		r := pb2.line(10 * time.Second)
		if strings.HasPrefix(r, "+OK") {
			break
		}
		if time.Since(quit) > 2*time.Second {
			t.Fatalf("POP3 login on B %v after A quit: %s", time.Since(quit), r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFrontEndsDuringOutage stops PostgreSQL under open IMAP and POP3
// sessions: commands get temporary failures (NO [UNAVAILABLE],
// -ERR [SYS/TEMP], LMTP 451) and work again once the server is back, on
// the same IMAP connection; nothing acknowledged is lost.
func TestFrontEndsDuringOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL server")
	}
	testharness.PG(t)
	srv, err := testharness.StartPG()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Stop(); srv.Remove() }()
	dsn := srv.NewDatabase(t)
	n := startNode(t, dsn, Options{ConnectTimeout: time.Second})
	acct := newUser(t, n.st, "down@example.com", "pw")
	if ok, r := lmtpTry(t, n.lmtp, "down@example.com", "before"); !ok {
		t.Fatalf("LMTP before the outage: %s", r)
	}

	im := dialLine(t, n.imap)
	im.cmd("a1", "LOGIN down@example.com pw")
	if r, _ := im.cmd("a2", "SELECT INBOX"); !strings.HasPrefix(r, "a2 OK") {
		t.Fatalf("select: %s", r)
	}
	srv.Stop()
	if r, _ := im.cmd("a3", "STATUS Sent (MESSAGES)"); !strings.HasPrefix(r, "a3 NO [UNAVAILABLE]") {
		t.Fatalf("STATUS while the database is down: %s", r)
	}
	po := dialLine(t, n.pop)
	po.send("USER down@example.com")
	po.line(5 * time.Second)
	po.send("PASS pw")
	if r := po.line(10 * time.Second); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
		t.Fatalf("POP3 login while the database is down: %s", r)
	}
	if ok, r := lmtpTry(t, n.lmtp, "down@example.com", "during"); ok || !strings.HasPrefix(r, "451") {
		t.Fatalf("LMTP while the database is down: ok=%v reply %q, want 451", ok, r)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		r, _ := im.cmd("s"+string(rune('a'+i%26)), "STATUS Sent (MESSAGES)")
		if strings.Contains(r, " OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("STATUS after restart: %s", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	po2 := dialLine(t, n.pop)
	po2.send("USER down@example.com")
	po2.line(5 * time.Second)
	po2.send("PASS pw")
	if r := po2.line(10 * time.Second); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 login after restart: %s", r)
	}
	if ok, r := lmtpTry(t, n.lmtp, "down@example.com", "after"); !ok {
		t.Fatalf("LMTP after restart: %s", r)
	}
	inbox, err := n.st.Mailbox(context.Background(), acct.ID, "INBOX")
	if err != nil || inbox.Messages != 2 {
		t.Fatalf("INBOX after the outage: %+v %v (want the 2 acknowledged messages)", inbox, err)
	}
}
