package pop3d

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
)

func newCertPool(t testing.TB, certPEM []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("bad test certificate")
	}
	return pool
}

// startTLS sends STLS, expects +OK and upgrades the client.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.cmd("STLS").expect("+OK begin TLS negotiation")
	tc := tls.Client(c.nc, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.nc = tc
	c.br = bufio.NewReader(tc)
}

// TestSTLS: STLS upgrades the connection, CAPA changes, login works where
// plaintext is refused without TLS.
func TestSTLS(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Plaintext = auth.PlaintextNever })
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	c := e.dialGreeted()
	c.cmd("CAPA").expectPrefix("+OK")
	if got := strings.Join(c.lines(), "|"); strings.Contains(got, "USER") || strings.Contains(got, "SASL") || !strings.Contains(got, "STLS") {
		t.Fatalf("CAPA without TLS under PlaintextNever = %q", got)
	}
	c.cmd("USER " + e.acct.Address).expect("-ERR [AUTH] plaintext authentication is disallowed without TLS, use STLS")
	c.cmd("AUTH PLAIN").expect("-ERR [AUTH] plaintext authentication is disallowed without TLS, use STLS")
	c.cmd("AUTH").expect("+OK SASL mechanisms follow")
	if got := c.lines(); len(got) != 0 {
		t.Fatalf("AUTH lists %q without TLS", got)
	}
	c.startTLS(e.tls)
	c.cmd("CAPA").expectPrefix("+OK")
	if got := strings.Join(c.lines(), "|"); !strings.Contains(got, "USER") || !strings.Contains(got, "SASL PLAIN") || strings.Contains(got, "STLS") {
		t.Fatalf("CAPA after STLS = %q", got)
	}
	c.cmd("STLS").expect("-ERR TLS is already active")
	c.cmd("USER " + e.acct.Address).expect("+OK send PASS")
	c.cmd("PASS " + testPassword).expectPrefix("+OK maildrop locked and ready, 1 messages")
	c.cmd("RETR 1").expectPrefix("+OK")
	if got := unstuff(c.multiline()); got != crlf(msg1) {
		t.Fatalf("RETR over TLS = %q", got)
	}
	c.cmd("QUIT").expectPrefix("+OK")
}

// TestSTLSDiscardsPipelinedPlaintext: commands sent in plaintext right
// after STLS must not be run as if they came over TLS (RFC 2595 §4,
// CVE-2011-0411).
func TestSTLSDiscardsPipelinedPlaintext(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialGreeted()
	c.send("STLS\r\nUSER " + e.acct.Address + "\r\nPASS " + testPassword + "\r\n")
	c.expect("+OK begin TLS negotiation")
	// The server must either drop the injected bytes (our case: they were
	// in the read buffer) or fail the handshake on them; it must never
	// answer them.
	tc := tls.Client(c.nc, e.tls)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
	c.cmd("STAT").expect("-ERR command not valid in this state")
	c.cmd("PASS " + testPassword).expect("-ERR send USER first")
}

// TestPOP3S serves implicit TLS through tls.NewListener.
func TestPOP3S(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Plaintext = auth.PlaintextNever })
	deliver(t, e.st, e.acct, e.inbox.ID, msg3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.serve(tls.NewListener(ln, e.srv.opts.TLSConfig))
	tc, err := tls.Dial("tcp", ln.Addr().String(), e.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, nc: tc, br: bufio.NewReader(tc)}
	c.expect("+OK pop.example.org Skrytka POP3 server ready")
	c.cmd("CAPA").expectPrefix("+OK")
	if got := strings.Join(c.lines(), "|"); strings.Contains(got, "STLS") || !strings.Contains(got, "USER") {
		t.Fatalf("CAPA on POP3S = %q", got)
	}
	c.cmd("STLS").expect("-ERR TLS is already active")
	c.cmd("AUTH PLAIN " + b64("\x00"+e.acct.Address+"\x00"+testPassword)).expectPrefix("+OK maildrop locked and ready, 1 messages")
	c.cmd("TOP 1 1").expectPrefix("+OK")
	if got := c.multiline(); got != "From: c@example.org\r\nSubject: three\r\n\r\nl1\r\n" {
		t.Fatalf("TOP over POP3S = %q", got)
	}
	c.cmd("QUIT").expectPrefix("+OK")
}

// TestPOP3SBadHandshake: a plaintext client on the TLS port is dropped
// without harm.
func TestPOP3SBadHandshake(t *testing.T) {
	e := newEnv(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.serve(tls.NewListener(ln, e.srv.opts.TLSConfig))
	c := dialAddr(t, ln.Addr().String())
	c.cmd("CAPA")
	c.expectClosed()
}
