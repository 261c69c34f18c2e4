package smtpd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/skrytka/skrytka/internal/mailauth"
)

// authZone publishes good.test (SPF allows 127.0.0.1, DKIM key, DMARC
// reject), bad.test (SPF allows nobody, DMARC reject) and q.test (SPF
// allows nobody, DMARC quarantine).
func authZone(t *testing.T) (*mailauth.Zone, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	z := &mailauth.Zone{}
	z.AddTXT("good.test", "v=spf1 ip4:127.0.0.1 -all")
	z.AddTXT("_dmarc.good.test", "v=DMARC1; p=reject")
	z.AddTXT("s1._domainkey.good.test", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	z.AddTXT("bad.test", "v=spf1 -all")
	z.AddTXT("_dmarc.bad.test", "v=DMARC1; p=reject")
	z.AddTXT("q.test", "v=spf1 -all")
	z.AddTXT("_dmarc.q.test", "v=DMARC1; p=quarantine")
	z.AddIP("mx.good.test", net.ParseIP("127.0.0.1"))
	return z, priv
}

func msgFrom(domain string) string {
	return "From: someone@" + domain + "\r\nTo: alice@skrytka.test\r\nSubject: auth\r\n\r\nbody\r\n"
}

func TestAuthenticationResults(t *testing.T) {
	z, priv := authZone(t)
	e := newEnv(t, ModeMX, func(o *Options) { o.Resolver = z })

	var signed bytes.Buffer
	if err := dkim.Sign(&signed, strings.NewReader(msgFrom("good.test")), &dkim.SignOptions{
		Domain: "good.test", Selector: "s1", Signer: priv,
	}); err != nil {
		t.Fatal(err)
	}
	if err := deliverGo(t, e.addr, "bounce@good.test", []string{"alice@skrytka.test"}, signed.String()); err != nil {
		t.Fatal(err)
	}
	// Failing DMARC is only annotated by default.
	if err := deliverGo(t, e.addr, "x@bad.test", []string{"alice@skrytka.test"}, msgFrom("bad.test")); err != nil {
		t.Fatal(err)
	}
	msgs := e.inbox("alice")
	if len(msgs) != 2 {
		t.Fatalf("alice has %d messages", len(msgs))
	}
	ar := header(msgs[0], "Authentication-Results")
	for _, want := range []string{testHost + ";", "spf=pass smtp.mailfrom=bounce@good.test", "dkim=pass header.d=good.test", "dmarc=pass header.from=good.test"} {
		if !strings.Contains(ar, want) {
			t.Errorf("signed message: %q lacks %q", ar, want)
		}
	}
	// The DKIM signature must still verify on the stored message (our
	// fields are above it and not signed).
	verifs, err := dkim.VerifyWithOptions(strings.NewReader(msgs[0]), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return z.LookupTXT(t.Context(), name) },
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil {
		t.Errorf("stored message no longer verifies: %v %+v", err, verifs)
	}
	ar = header(msgs[1], "Authentication-Results")
	if !strings.Contains(ar, "spf=fail") || !strings.Contains(ar, "dmarc=fail") {
		t.Errorf("unsigned bad.test message: %q", ar)
	}
}

func TestDMARCEnforce(t *testing.T) {
	z, _ := authZone(t)
	e := newEnv(t, ModeMX, func(o *Options) { o.Resolver = z; o.DMARCPolicy = DMARCEnforce })
	c := e.dial()
	c.cmd("EHLO x", "250")
	c.cmd("MAIL FROM:<x@bad.test>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send(msgFrom("bad.test") + ".\r\n")
	c.expect("550 5.7.1")
	// p=quarantine: delivered, to Junk.
	c.cmd("MAIL FROM:<x@q.test>", "250")
	c.cmd("RCPT TO:<alice@skrytka.test>", "250")
	c.cmd("DATA", "354")
	c.send(msgFrom("q.test") + ".\r\n")
	c.expect("250")
	if n := len(e.inbox("alice")); n != 0 {
		t.Errorf("INBOX has %d messages", n)
	}
	if n := len(e.mailbox("alice", "Junk")); n != 1 {
		t.Errorf("Junk has %d messages, want 1", n)
	}
}

func TestNoAuthChecks(t *testing.T) {
	e := newEnv(t, ModeMX, func(o *Options) { o.NoAuthChecks = true })
	msg := "Authentication-Results: " + strings.ToUpper(testHost) + "; dmarc=pass\r\n" + simpleMsg
	if err := deliverGo(t, e.addr, "a@example.org", []string{"alice@skrytka.test"}, msg); err != nil {
		t.Fatal(err)
	}
	m := e.inbox("alice")[0]
	if strings.Contains(m, "Authentication-Results") {
		t.Errorf("Authentication-Results present with checks off (forged one must still go):\n%s", m)
	}
}
