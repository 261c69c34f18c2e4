package smtpd

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/store"
)

func TestLMTPPerRecipient(t *testing.T) {
	e := newEnv(t, ModeLMTP, nil)
	ctx := context.Background()
	// bob's quota is smaller than the message: his delivery fails at
	// Deliver time, after RCPT was accepted.
	if err := e.raw.SetQuota(ctx, e.accts["bob"].ID, 50); err != nil {
		t.Fatal(err)
	}
	c := e.dial()
	c.cmd("EHLO x", "500") // LMTP wants LHLO
	r := c.cmd("LHLO mta.skrytka.test", "250")
	if strings.Contains(r, "STARTTLS\n") == false && !strings.Contains(r, "STARTTLS") {
		t.Errorf("LHLO lacks STARTTLS: %s", r)
	}
	c.cmd("MAIL FROM:<sender@example.org>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("RCPT TO:<bob@skrytka.test>", "250")
	c.cmd("RCPT TO:<nobody@skrytka.test>", "550 5.1.1")
	c.cmd("RCPT TO:<Alice+x@skrytka.test>", "250") // same account again
	c.cmd("DATA", "354")
	c.send(simpleMsg + ".\r\n")
	// One reply per accepted RCPT, in order (RFC 2033 §4.2).
	c.expect("250 2.0.0 <alice@skrytka.test>")
	c.expect("452 4.2.2 <bob@skrytka.test>")
	c.expect("250 2.0.0 <Alice+x@skrytka.test>")
	c.cmd("NOOP", "250")

	alice := e.inbox("alice")
	if len(alice) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(alice))
	}
	if len(e.inbox("bob")) != 0 {
		t.Errorf("bob got the message despite his quota")
	}
	// LMTP: no Authentication-Results (the MTA in front did the checks);
	// the trace line says LMTP.
	if header(alice[0], "Authentication-Results") != "" {
		t.Errorf("LMTP added Authentication-Results")
	}
	if rcv := header(alice[0], "Received"); !strings.Contains(rcv, "with LMTP") {
		t.Errorf("Received %q", rcv)
	}

	// Permanent quota failure when configured so.
	e2 := newEnv(t, ModeLMTP, func(o *Options) { o.QuotaFullPermanent = true })
	if err := e2.raw.SetQuota(ctx, e2.accts["carol"].ID, 10); err != nil {
		t.Fatal(err)
	}
	c2 := e2.dial()
	c2.cmd("LHLO x", "250")
	c2.cmd("MAIL FROM:<>", "250")
	c2.cmd("RCPT TO:<carol@skrytka.test>", "250")
	c2.cmd("RCPT TO:<bob@skrytka.test>", "250")
	c2.cmd("DATA", "354")
	c2.send(simpleMsg + ".\r\n")
	c2.expect("552 5.2.2 <carol@skrytka.test>")
	c2.expect("250 2.0.0 <bob@skrytka.test>")
}

func TestLMTPWithGoClient(t *testing.T) {
	e := newEnv(t, ModeLMTP, nil)
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(nc)
	defer c.Close()
	if err := c.Hello("mta.skrytka.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"alice@skrytka.test", "carol@skrytka.test"} {
		if err := c.Rcpt(to, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(simpleMsg))
	resp, err := w.CloseWithLMTPResponse()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp) != 2 {
		t.Errorf("responses: %v", resp)
	}
	if len(e.inbox("alice")) != 1 || len(e.inbox("carol")) != 1 {
		t.Errorf("not delivered to both")
	}
}

// failingStore decorates the real store: Deliver fails for the accounts in
// fail (with err), or entirely when all is set. Everything else is the
// real store.
type failingStore struct {
	store.Store
	fail map[store.AccountID]error
	all  error
}

func (f *failingStore) Deliver(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]error, error) {
	if f.all != nil {
		return nil, f.all
	}
	errs, err := f.Store.Deliver(ctx, body, targets)
	for i, t := range targets {
		if e, ok := f.fail[t.Account]; ok && err == nil {
			errs[i] = e
		}
	}
	return errs, err
}

func Test451WhenStoreRefuses(t *testing.T) {
	fs := &failingStore{all: errors.New("database is locked")}
	e := newEnv(t, ModeMX, nil, func(s store.Store) store.Store { fs.Store = s; return fs })
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send(simpleMsg + ".\r\n")
	r := c.expect("451 4.3.0")
	if strings.Contains(r, "locked") {
		t.Errorf("reply leaks the store error: %q", r)
	}
	if n := len(e.inbox("alice")); n != 0 {
		t.Fatalf("alice has %d messages after a refused delivery", n)
	}

	// One of two SMTP recipients fails: the transaction is retried (451),
	// never acknowledged with a loss.
	fs.all = nil
	fs.fail = map[store.AccountID]error{e.accts["bob"].ID: store.ErrUnavailable}
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("RCPT TO:<bob@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send(simpleMsg + ".\r\n")
	c.expect("451 4.3.0")

	// A single recipient whose mailbox fills up between RCPT and DATA:
	// the reply names the reason (452 4.2.2), not a generic failure.
	fs.fail = map[store.AccountID]error{e.accts["bob"].ID: store.ErrOverQuota}
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<bob@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send(simpleMsg + ".\r\n")
	c.expect("452 4.2.2")

	// The real store closed underneath: lookups and deliveries fail
	// temporarily, the server does not crash.
	e.raw.Close()
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<carol@skrytka.test>", "451 4.3.0")
}

func TestLMTP451ForOneRecipient(t *testing.T) {
	fs := &failingStore{}
	e := newEnv(t, ModeLMTP, nil, func(s store.Store) store.Store { fs.Store = s; return fs })
	fs.fail = map[store.AccountID]error{e.accts["bob"].ID: errors.New("disk I/O error")}
	c := e.dial()
	c.cmd("LHLO x", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<bob@skrytka.test>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send(simpleMsg + ".\r\n")
	c.expect("451 4.3.0 <bob@skrytka.test>")
	c.expect("250 2.0.0 <alice@skrytka.test>")
	if len(e.inbox("alice")) != 1 {
		t.Errorf("alice's delivery was lost")
	}
}

func TestLMTPUnixSocket(t *testing.T) {
	e := newEnv(t, ModeLMTP, nil)
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(ln)
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c := &lineConn{t: t, c: nc, br: bufio.NewReader(nc)}
	defer nc.Close()
	c.expect("220 ")
	c.cmd("LHLO postfix.skrytka.test", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<carol@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send(simpleMsg + ".\r\n")
	c.expect("250 2.0.0 <carol@skrytka.test>")
	m := e.inbox("carol")
	if len(m) != 1 || !strings.Contains(header(m[0], "Received"), "from postfix.skrytka.test (unix)") {
		t.Errorf("carol: %q", m)
	}
}

// LMTP keeps the front MTA's Authentication-Results, even for our name.
func TestLMTPKeepsAuthResults(t *testing.T) {
	e := newEnv(t, ModeLMTP, nil)
	msg := "Authentication-Results: " + testHost + "; dkim=pass header.d=example.org\r\n" + simpleMsg
	c := e.dial()
	c.cmd("LHLO mta", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send(strings.ReplaceAll(msg, "\r\n.", "\r\n..") + ".\r\n")
	c.expect("250")
	if m := e.inbox("alice"); len(m) != 1 || !strings.HasSuffix(m[0], "\r\n"+msg) {
		t.Errorf("LMTP changed the message: %q", m)
	}
}

// A delivery reaches the account's change feed at once: an IMAP session
// in IDLE on INBOX learns of it (EXISTS) without polling.
func TestDeliveryNotifiesSubscribers(t *testing.T) {
	e := newEnv(t, ModeLMTP, nil)
	sub, err := e.raw.Subscribe(context.Background(), e.accts["alice"].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	c := e.dial()
	c.cmd("LHLO mta", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send(simpleMsg + ".\r\n")
	c.expect("250")
	select {
	case ch := <-sub.C():
		if ch.Kind != store.ChangeAppend || len(ch.UIDs) != 1 {
			t.Errorf("change %+v", ch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change published for the delivery")
	}
}
