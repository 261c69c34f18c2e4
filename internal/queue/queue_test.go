package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/mailauth"
	"github.com/skrytka/skrytka/internal/outbound"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

// remoteMX plays example.net's MX on loopback. mode decides RCPT replies:
// "ok", "temp" (451) or "perm" (550).
type remoteMX struct {
	mu   sync.Mutex
	mode string
	got  []string
	port string
	// mode "hold": RCPT signals entered, waits for release, then 451.
	entered, release chan struct{}
}

type mxSession struct{ mx *remoteMX }

func (s *mxSession) Reset()                               {}
func (s *mxSession) Logout() error                        { return nil }
func (s *mxSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mx.mu.Lock()
	defer s.mx.mu.Unlock()
	if s.mx.mode == "hold" {
		s.mx.mu.Unlock()
		s.mx.entered <- struct{}{}
		<-s.mx.release
		s.mx.mu.Lock()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
	}
	switch s.mx.mode {
	case "temp":
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
	case "perm":
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}
func (s *mxSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.mx.mu.Lock()
	s.mx.got = append(s.mx.got, string(b))
	s.mx.mu.Unlock()
	return err
}

func (mx *remoteMX) set(mode string) { mx.mu.Lock(); mx.mode = mode; mx.mu.Unlock() }
func (mx *remoteMX) received() []string {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	return append([]string(nil), mx.got...)
}

func startMX(t *testing.T) *remoteMX {
	t.Helper()
	mx := &remoteMX{mode: "ok"}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mxSession{mx}, nil }))
	srv.Domain = "mx.example.net"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, mx.port, _ = net.SplitHostPort(ln.Addr().String())
	return mx
}

type fixture struct {
	t     *testing.T
	dir   string
	st    *embedded.Store
	q     *Queue
	mx    *remoteMX
	alice store.Account
	now   time.Time
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), mx: startMX(t), now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	f.open()
	a, err := f.st.CreateAccount(context.Background(), "alice@skrytka.test", "x")
	if err != nil {
		t.Fatal(err)
	}
	f.alice = a
	return f
}

// open (re)opens the store and the queue, as a restarted server would.
func (f *fixture) open() {
	f.t.Helper()
	if f.st != nil {
		f.st.Close()
	}
	st, err := embedded.Open(context.Background(), f.dir, embedded.Options{Logger: quiet()})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { st.Close() })
	f.st = st
	z := &mailauth.Zone{}
	z.AddMX("example.net", "mx.example.net", 10)
	z.AddIP("mx.example.net", net.IPv4(127, 0, 0, 1))
	sender := outbound.New(outbound.Options{Hostname: "mail.skrytka.test", Resolver: z, Port: f.mx.port})
	q, err := Open(context.Background(), st, sender, Options{Hostname: "mail.skrytka.test", Logger: quiet(),
		Now: func() time.Time { return f.now }})
	if err != nil {
		f.t.Fatal(err)
	}
	f.q = q
}

const msg = "From: alice@skrytka.test\r\nTo: bob@example.net\r\nSubject: queued\r\n\r\nHello.\r\n"

func (f *fixture) enqueue() {
	f.t.Helper()
	if err := f.q.Enqueue(context.Background(), "alice@skrytka.test", []string{"bob@example.net"}, strings.NewReader(msg), 0); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) runOnce() {
	f.t.Helper()
	if err := f.q.RunOnce(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) list() []Entry {
	f.t.Helper()
	l, err := f.q.List(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

func (f *fixture) aliceInbox() []string {
	f.t.Helper()
	ctx := context.Background()
	m, _ := f.st.Mailbox(ctx, f.alice.ID, "INBOX")
	_, uids, _ := f.st.SelectState(ctx, f.alice.ID, m.ID)
	var out []string
	for _, u := range uids {
		r, err := f.st.OpenMessage(ctx, f.alice.ID, m.ID, u)
		if err != nil {
			f.t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		out = append(out, string(b))
	}
	return out
}

func TestDeliverAtOnce(t *testing.T) {
	f := newFixture(t)
	f.enqueue()
	if l := f.list(); len(l) != 1 || l[0].From != "alice@skrytka.test" || l[0].To[0] != "bob@example.net" || l[0].Size != int64(len(msg)) {
		t.Fatalf("list: %+v", l)
	}
	f.runOnce()
	if got := f.mx.received(); len(got) != 1 || got[0] != msg {
		t.Fatalf("remote got %q", got)
	}
	if l := f.list(); len(l) != 0 {
		t.Errorf("queue not empty: %+v", l)
	}
}

func TestTemporaryFailureRetriedAcrossRestart(t *testing.T) {
	f := newFixture(t)
	f.mx.set("temp")
	f.enqueue()
	f.runOnce()
	l := f.list()
	if len(l) != 1 || l[0].Attempts != 1 || !l[0].Next.Equal(f.now.Add(time.Minute)) {
		t.Fatalf("after a temporary failure: %+v", l)
	}
	// Not due yet: nothing happens.
	f.mx.set("ok")
	f.runOnce()
	if len(f.mx.received()) != 0 {
		t.Fatalf("retried before its time")
	}
	// Restart between attempts: the entry is still there.
	f.open()
	f.now = f.now.Add(2 * time.Minute)
	f.runOnce()
	if got := f.mx.received(); len(got) != 1 || got[0] != msg {
		t.Fatalf("remote got %q", got)
	}
	if len(f.list()) != 0 || len(f.aliceInbox()) != 0 {
		t.Errorf("queue %+v, alice %d messages (want no DSN)", f.list(), len(f.aliceInbox()))
	}
}

func TestPermanentFailureBounces(t *testing.T) {
	f := newFixture(t)
	f.mx.set("perm")
	f.enqueue()
	f.runOnce()
	if len(f.list()) != 0 {
		t.Errorf("failed entry still queued")
	}
	inbox := f.aliceInbox()
	if len(inbox) != 1 {
		t.Fatalf("alice has %d messages, want the DSN", len(inbox))
	}
	checkDSN(t, inbox[0], "failed", "5.1.1", "bob@example.net")
}

func TestExpiryBounces(t *testing.T) {
	f := newFixture(t)
	f.mx.set("temp")
	f.enqueue()
	f.runOnce()
	f.now = f.now.Add(DefaultMaxAge + time.Hour)
	f.runOnce()
	if len(f.list()) != 0 {
		t.Errorf("expired entry still queued")
	}
	inbox := f.aliceInbox()
	if len(inbox) != 1 {
		t.Fatalf("alice has %d messages", len(inbox))
	}
	checkDSN(t, inbox[0], "failed", "4.4.7", "bob@example.net")
}

func TestRetryAndDrop(t *testing.T) {
	f := newFixture(t)
	f.mx.set("temp")
	f.enqueue()
	f.runOnce()
	f.mx.set("ok")
	l := f.list()
	if err := f.q.Retry(context.Background(), l[0].ID); err != nil {
		t.Fatal(err)
	}
	f.runOnce()
	if len(f.mx.received()) != 1 {
		t.Errorf("Retry did not make the entry due")
	}
	f.mx.set("temp")
	f.enqueue()
	l = f.list()
	if err := f.q.Drop(context.Background(), l[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := f.q.Drop(context.Background(), l[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Drop: %v", err)
	}
	if len(f.list()) != 0 {
		t.Errorf("Drop left %+v", f.list())
	}
}

// TestIDStableAndDropDuringAttempt: an entry keeps the ID that List shows
// across attempts (each attempt replaces its message), and a Drop while
// an attempt is under way is not undone by that attempt's replacement.
func TestIDStableAndDropDuringAttempt(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.mx.set("temp")
	f.enqueue()
	id := f.list()[0].ID
	for i := 1; i <= 2; i++ {
		f.runOnce()
		f.now = f.now.Add(time.Hour)
		if l := f.list(); len(l) != 1 || l[0].ID != id || l[0].Attempts != i {
			t.Fatalf("after attempt %d: %+v, want ID %d", i, l, id)
		}
	}
	if err := f.q.Retry(ctx, id); err != nil {
		t.Fatal(err)
	}
	if l := f.list(); len(l) != 1 || l[0].ID != id {
		t.Fatalf("after Retry: %+v, want ID %d", l, id)
	}
	// The same survives a restart (the ID is in the stored entry).
	f.open()
	if l := f.list(); len(l) != 1 || l[0].ID != id {
		t.Fatalf("after restart: %+v, want ID %d", l, id)
	}

	f.mx.entered, f.mx.release = make(chan struct{}), make(chan struct{})
	f.mx.set("hold")
	done := make(chan error, 1)
	go func() { done <- f.q.RunOnce(ctx) }()
	<-f.mx.entered
	if err := f.q.Drop(ctx, id); err != nil {
		t.Fatalf("Drop during an attempt: %v", err)
	}
	close(f.mx.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := f.list(); len(l) != 0 {
		t.Fatalf("the attempt brought the dropped entry back: %+v", l)
	}
}

func checkDSN(t *testing.T, raw, action, status, rcpt string) {
	t.Helper()
	if !strings.HasPrefix(raw, "Return-Path: <>\r\n") {
		t.Errorf("DSN without null Return-Path:\n%s", raw)
	}
	e, err := message.Read(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ct, p, _ := e.Header.ContentType(); ct != "multipart/report" || p["report-type"] != "delivery-status" {
		t.Fatalf("content type %q %v", ct, p)
	}
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no delivery-status part: %v", err)
		}
		if ct, _, _ := p.Header.ContentType(); ct == "message/delivery-status" {
			b, _ := io.ReadAll(p.Body)
			for _, want := range []string{"Final-Recipient: rfc822; " + rcpt, "Action: " + action, "Status: " + status} {
				if !strings.Contains(string(b), want) {
					t.Errorf("delivery-status lacks %q:\n%s", want, b)
				}
			}
			return
		}
	}
}

func TestManyEntriesInParallel(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 20; i++ {
		f.enqueue()
	}
	f.runOnce()
	if n := len(f.mx.received()); n != 20 {
		t.Errorf("remote got %d of 20", n)
	}
	if l := f.list(); len(l) != 0 {
		t.Errorf("%d entries left", len(l))
	}
}

func TestRunPicksUpAtOnce(t *testing.T) {
	f := newFixture(t)
	f.q.opts.Interval = time.Hour // only Wake can start a pass
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.q.Run(ctx); close(done) }()
	f.enqueue()
	deadline := time.Now().Add(10 * time.Second)
	for len(f.mx.received()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not deliver after Enqueue")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// A remote sender's DSN goes back out through the queue, with the null
// reverse-path; a DSN that fails is dropped, never bounced again.
func TestRemoteSenderBounceNoLoop(t *testing.T) {
	f := newFixture(t)
	f.mx.set("perm")
	ctx := context.Background()
	if err := f.q.Enqueue(ctx, "someone@example.net", []string{"bob@example.net"}, strings.NewReader(msg), 0); err != nil {
		t.Fatal(err)
	}
	f.runOnce()
	l := f.list()
	if len(l) != 1 || l[0].From != "" || l[0].To[0] != "someone@example.net" {
		t.Fatalf("DSN not queued for the remote sender: %+v", l)
	}
	f.runOnce() // the DSN fails permanently too
	if l := f.list(); len(l) != 0 {
		t.Errorf("bounce of a bounce queued: %+v", l)
	}
}

func TestDelayWarningOnce(t *testing.T) {
	f := newFixture(t)
	f.mx.set("temp")
	f.enqueue()
	f.runOnce() // attempt 1: deferred, no warning yet
	if n := len(f.aliceInbox()); n != 0 {
		t.Fatalf("warned too early (%d messages)", n)
	}
	f.now = f.now.Add(DefaultDelayWarning + time.Minute)
	f.runOnce() // deferred again, now old enough: one "delayed" DSN
	f.now = f.now.Add(time.Hour)
	f.runOnce() // and no second one
	inbox := f.aliceInbox()
	if len(inbox) != 1 {
		t.Fatalf("alice has %d messages, want one delay warning", len(inbox))
	}
	checkDSN(t, inbox[0], "delayed", "4.7.1", "bob@example.net")
	if l := f.list(); len(l) != 1 || l[0].Attempts != 3 {
		t.Errorf("entry: %+v", l)
	}
}
