package smtpd

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/mailauth"
	"github.com/skrytka/skrytka/internal/outbound"
	"github.com/skrytka/skrytka/internal/queue"
)

// farMX is another domain's MX (example.com) on loopback.
type farMX struct {
	mu  sync.Mutex
	got []string
}

type farSession struct{ mx *farMX }

func (s *farSession) Reset()                               {}
func (s *farSession) Logout() error                        { return nil }
func (s *farSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *farSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *farSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.mx.mu.Lock()
	s.mx.got = append(s.mx.got, string(b))
	s.mx.mu.Unlock()
	return err
}

// newQueuedSubmissionEnv is a submission server with an outbound queue
// whose deliveries go to a farMX.
func newQueuedSubmissionEnv(t *testing.T) (*testEnv, *queue.Queue, *farMX) {
	t.Helper()
	mx := &farMX{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &farSession{mx}, nil }))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	z := &mailauth.Zone{}
	z.AddMX("example.com", "mx.example.com", 10)
	z.AddIP("mx.example.com", net.IPv4(127, 0, 0, 1))
	var q *queue.Queue
	e := newEnv(t, ModeSubmission, func(o *Options) {
		o.Auth = &auth.Authenticator{Store: o.Store}
		o.PlaintextAuth = auth.PlaintextNever
		sender := outbound.New(outbound.Options{Hostname: testHost, Resolver: z, Port: port})
		q, err = queue.Open(context.Background(), o.Store, sender, queue.Options{Hostname: testHost, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		o.Queue = q
	})
	hash, _ := auth.HashPassword(testPassword)
	for _, a := range e.accts {
		e.raw.SetPasswordHash(context.Background(), a.ID, hash)
	}
	return e, q, mx
}

func TestSubmissionLocalAndRemotePython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e, q, mx := newQueuedSubmissionEnv(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, e.cert, 0o600)
	body := "From: Alice <alice@skrytka.test>\r\nTo: bob@skrytka.test, friend@example.com\r\nSubject: both\r\n\r\nTo a local and a remote friend.\r\n"
	os.WriteFile(filepath.Join(dir, "msg"), []byte(body), 0o600)
	script := `
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
host, port = sys.argv[1].rsplit(":", 1)
with smtplib.SMTP(host, int(port)) as s:
    s.starttls(context=ctx)
    s.login("alice@skrytka.test", sys.argv[4])
    s.sendmail("alice@skrytka.test", ["bob@skrytka.test", "friend@example.com"], open(sys.argv[3], "rb").read())
print("OK")
`
	sp := filepath.Join(dir, "s.py")
	os.WriteFile(sp, []byte(script), 0o600)
	out, err := exec.Command(py, sp, e.addr, ca, filepath.Join(dir, "msg"), testPassword).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("python: %v\n%s", err, out)
	}
	// Local copy: delivered at once.
	bob := e.inbox("bob")
	if len(bob) != 1 || !strings.HasSuffix(bob[0], body) {
		t.Fatalf("bob: %q", bob)
	}
	// Remote copy: queued durably, then delivered by the queue.
	entries, err := q.List(context.Background())
	if err != nil || len(entries) != 1 || entries[0].To[0] != "friend@example.com" || entries[0].From != "alice@skrytka.test" {
		t.Fatalf("queue: %+v %v", entries, err)
	}
	if err := q.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if len(mx.got) != 1 {
		t.Fatalf("remote MX got %d messages", len(mx.got))
	}
	got := mx.got[0]
	names := fieldNames(got)
	want := []string{"Received", "Message-ID", "Date", "From", "To", "Subject"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("remote copy fields %v, want %v", names, want)
	}
	if !strings.Contains(header(got, "Received"), "with ESMTPSA") || !strings.HasSuffix(got, body) {
		t.Errorf("remote copy:\n%s", got)
	}
}

func TestSubmissionRemoteNeedsAuth(t *testing.T) {
	e, q, _ := newQueuedSubmissionEnv(t)
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<alice@skrytka.test>", "530 5.7.0")
	c.cmd("RCPT TO:<friend@example.com>", "502")
	if l, _ := q.List(context.Background()); len(l) != 0 {
		t.Errorf("queued without authentication: %+v", l)
	}
}

// Even with an outbound queue configured, the MX and LMTP listeners relay
// nothing.
func TestNoRelayWithQueue(t *testing.T) {
	for _, mode := range []Mode{ModeMX, ModeLMTP} {
		var q *queue.Queue
		e := newEnv(t, mode, func(o *Options) {
			var err error
			q, err = queue.Open(context.Background(), o.Store, outbound.New(outbound.Options{Resolver: &mailauth.Zone{}}), queue.Options{})
			if err != nil {
				t.Fatal(err)
			}
			o.Queue = q
		})
		c := e.dial()
		c.cmd(map[Mode]string{ModeMX: "EHLO x", ModeLMTP: "LHLO x"}[mode], "250")
		c.cmd("MAIL FROM:<alice@skrytka.test>", "250")
		c.cmd("RCPT TO:<friend@example.com>", "554 5.7.1")
		if l, _ := q.List(context.Background()); len(l) != 0 {
			t.Errorf("mode %d queued %+v", mode, l)
		}
	}
}
