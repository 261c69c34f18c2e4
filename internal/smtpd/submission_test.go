package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/auth"
)

const testPassword = "correct horse battery staple"

// newSubmissionEnv is a submission server whose accounts have the password
// testPassword; plaintext says when AUTH may go without TLS.
func newSubmissionEnv(t *testing.T, plaintext auth.PlaintextPolicy) *testEnv {
	t.Helper()
	var authn *auth.Authenticator
	e := newEnv(t, ModeSubmission, func(o *Options) {
		authn = &auth.Authenticator{Store: o.Store}
		o.Auth = authn
		o.PlaintextAuth = plaintext
	})
	hash, err := auth.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range e.accts {
		if err := e.raw.SetPasswordHash(context.Background(), a.ID, hash); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// serveTLS adds an implicit-TLS listener (port 465 style) and returns its address.
func (e *testEnv) serveTLS() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go e.srv.ServeTLS(ln)
	return ln.Addr().String()
}

func (e *testEnv) tlsClientConfig() *tls.Config {
	return &tls.Config{ServerName: testHost, RootCAs: e.roots}
}

func TestSubmissionRequiresTLSAndAuth(t *testing.T) {
	e := newSubmissionEnv(t, auth.PlaintextNever)
	c := e.dial()
	r := c.cmd("EHLO x", "250")
	if strings.Contains(r, "AUTH") || !strings.Contains(r, "STARTTLS") {
		t.Errorf("plaintext EHLO:\n%s", r)
	}
	c.cmd("AUTH PLAIN AGFsaWNlQHNrcnl0a2EudGVzdABjb3JyZWN0", "538 5.7.11")
	c.cmd("MAIL FROM:<alice@skrytka.test>", "530 5.7.0")
	c.cmd("RCPT TO:<bob@skrytka.test>", "502") // no MAIL
	// Not an open relay for anyone unauthenticated, local or remote.
	c.cmd("MAIL FROM:<>", "530 5.7.0")
}

func submitGo(t *testing.T, e *testEnv, user, from string, to []string, msg string) error {
	t.Helper()
	return submitGoPass(t, e, user, testPassword, from, to, msg)
}

func submitGoPass(t *testing.T, e *testEnv, user, pass, from string, to []string, msg string) error {
	t.Helper()
	c, err := smtp.DialStartTLS(e.addr, e.tlsClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		return err
	}
	return c.SendMail(from, to, strings.NewReader(msg))
}

func TestSubmissionLocalDelivery(t *testing.T) {
	e := newSubmissionEnv(t, auth.PlaintextNever)
	msg := "From: Alice <alice@skrytka.test>\r\nTo: bob@skrytka.test\r\nSubject: hi\r\n\r\nHello Bob.\r\n"
	if err := submitGo(t, e, "alice@skrytka.test", "alice@skrytka.test", []string{"bob@skrytka.test"}, msg); err != nil {
		t.Fatal(err)
	}
	msgs := e.inbox("bob")
	if len(msgs) != 1 {
		t.Fatalf("bob has %d messages", len(msgs))
	}
	m := msgs[0]
	want := []string{"Return-Path", "Delivered-To", "Authentication-Results", "Received", "Message-ID", "Date", "From", "To", "Subject"}
	if got := fieldNames(m); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("fields %v, want %v", got, want)
	}
	if ar := header(m, "Authentication-Results"); ar != testHost+"; auth=pass smtp.auth=alice@skrytka.test" {
		t.Errorf("Authentication-Results %q", ar)
	}
	if rcv := header(m, "Received"); !strings.Contains(rcv, "with ESMTPSA") {
		t.Errorf("Received %q", rcv)
	}
	if !strings.HasSuffix(m, "\r\n"+msg) {
		t.Errorf("original message changed:\n%s", m)
	}

	// A sender alias that delivers to the user is theirs; Message-ID and
	// Date already present are kept as they are.
	msg2 := "From: postmaster@skrytka.test\r\nMessage-ID: <x@y>\r\nDate: Fri, 27 Nov 2026 21:00:00 +0000\r\n\r\nx\r\n"
	if err := submitGo(t, e, "alice@skrytka.test", "postmaster@skrytka.test", []string{"carol@skrytka.test"}, msg2); err != nil {
		t.Fatal(err)
	}
	if m := e.inbox("carol"); len(m) != 1 || strings.Count(m[0], "Message-ID") != 1 || !strings.HasSuffix(m[0], msg2) {
		t.Errorf("carol: %q", m)
	}
}

func TestSubmissionSpoofingRefused(t *testing.T) {
	e := newSubmissionEnv(t, auth.PlaintextNever)
	// Envelope sender of someone else.
	err := submitGo(t, e, "alice@skrytka.test", "bob@skrytka.test", []string{"carol@skrytka.test"}, "From: bob@skrytka.test\r\n\r\nx\r\n")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 553 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
		t.Errorf("MAIL FROM someone else: %v", err)
	}
	// Own envelope, someone else's From: header.
	err = submitGo(t, e, "alice@skrytka.test", "alice@skrytka.test", []string{"carol@skrytka.test"}, "From: Bob <bob@skrytka.test>\r\n\r\nx\r\n")
	if !errors.As(err, &se) || se.Code != 553 {
		t.Errorf("From: someone else: %v", err)
	}
	// A remote recipient: this server has no outbound queue.
	err = submitGo(t, e, "alice@skrytka.test", "alice@skrytka.test", []string{"friend@example.com"}, "From: alice@skrytka.test\r\n\r\nx\r\n")
	if !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("remote recipient: %v", err)
	}
	if n := len(e.inbox("carol")); n != 0 {
		t.Errorf("carol got %d spoofed messages", n)
	}
	// Wrong password.
	err = submitGoPass(t, e, "carol@skrytka.test", "wrong", "carol@skrytka.test", []string{"bob@skrytka.test"}, "From: carol@skrytka.test\r\n\r\nx\r\n")
	if !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("wrong password: %v", err)
	}
}

func TestSubmissionImplicitTLSPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e := newSubmissionEnv(t, auth.PlaintextNever)
	tlsAddr := e.serveTLS()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	certPEM := pemOf(e)
	os.WriteFile(ca, certPEM, 0o600)
	script := `
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
host, port = sys.argv[1].rsplit(":", 1)
msg = b"From: alice@skrytka.test\r\nTo: bob@skrytka.test\r\nSubject: via 465\r\n\r\nimplicit\r\n"
with smtplib.SMTP_SSL(host, int(port), context=ctx) as s:
    s.login("alice@skrytka.test", "` + testPassword + `")
    s.sendmail("alice@skrytka.test", ["bob@skrytka.test"], msg)
host, port = sys.argv[2].rsplit(":", 1)
with smtplib.SMTP(host, int(port)) as s:
    s.starttls(context=ctx)
    s.login("bob@skrytka.test", "` + testPassword + `")
    s.sendmail("bob@skrytka.test", ["alice@skrytka.test"], msg.replace(b"alice@", b"bob@", 1))
    try:
        s.sendmail("bob@skrytka.test", ["friend@example.com"], msg)
        sys.exit("remote recipient accepted")
    except smtplib.SMTPRecipientsRefused:
        pass
print("OK")
`
	sp := filepath.Join(dir, "s.py")
	os.WriteFile(sp, []byte(script), 0o600)
	out, err := exec.Command(py, sp, tlsAddr, e.addr, ca).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if len(e.inbox("bob")) != 1 || len(e.inbox("alice")) != 1 {
		t.Errorf("deliveries: bob %d, alice %d", len(e.inbox("bob")), len(e.inbox("alice")))
	}
	if rcv := header(e.inbox("bob")[0], "Received"); !strings.Contains(rcv, "ESMTPSA") {
		t.Errorf("Received %q", rcv)
	}
}

// A header line longer than the read buffer, ending exactly at a buffer
// boundary, must not be taken for the end of the header section.
func TestSubmissionLongHeaderLine(t *testing.T) {
	e := newSubmissionEnv(t, auth.PlaintextNever)
	for _, n := range []int{4094, 4095, 4096, 4097, 7000} {
		long := "X-Long: " + strings.Repeat("a", n-len("X-Long: ")) + "\r\n"
		msg := long + "From: alice@skrytka.test\r\nDate: Fri, 27 Nov 2026 21:00:00 +0000\r\nMessage-ID: <l@x>\r\n\r\nbody\r\n"
		if err := submitGo(t, e, "alice@skrytka.test", "alice@skrytka.test", []string{"bob@skrytka.test"}, msg); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		m := e.inbox("bob")
		last := m[len(m)-1]
		if strings.Count(last, "Date:") != 1 || !strings.HasSuffix(last, msg) {
			t.Errorf("n=%d: header mangled", n)
		}
	}
}
