package imapd

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

func testTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestStartTLS(t *testing.T) {
	cfg := testTLSConfig(t)
	ts := newTestServer(t, func(o *Options) { o.TLSConfig = cfg; o.Plaintext = "never" })
	rc := ts.dial(t)
	g := rc.line()
	if !strings.Contains(g, "STARTTLS") || !strings.Contains(g, "LOGINDISABLED") {
		t.Fatalf("greeting %q", g)
	}
	// CVE-2011-0411: a command pipelined behind STARTTLS in plaintext must
	// be discarded, not run inside the TLS session.
	rc.send("a STARTTLS\r\nb LOGIN demo@localhost \"secret pass\"\r\n")
	if l := rc.line(); l != "a OK begin TLS negotiation now" {
		t.Fatalf("%q", l)
	}
	tc := tls.Client(rc.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	rc.nc = tc
	rc.br = bufio.NewReader(tc)
	u := rc.ok("c CAPABILITY")
	if strings.Contains(u[0], "STARTTLS") || strings.Contains(u[0], "LOGINDISABLED") || !strings.Contains(u[0], "AUTH=PLAIN") {
		t.Fatalf("caps after TLS %q", u)
	}
	// Had "b LOGIN" been run, this would be BAD (already logged in) and
	// the reply to b would arrive first.
	_, tagged := rc.cmd(`d LOGIN demo@localhost "secret pass"`)
	if !strings.HasPrefix(tagged, "d OK") {
		t.Fatalf("login over TLS: %q", tagged)
	}
	_, tagged = rc.cmd("e STARTTLS")
	if !strings.HasPrefix(tagged, "e BAD") {
		t.Fatalf("STARTTLS after login: %q", tagged)
	}
}

func TestImplicitTLS(t *testing.T) {
	cfg := testTLSConfig(t)
	ts := newTestServer(t, func(o *Options) { o.Plaintext = "never" })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.Serve(tls.NewListener(ln, cfg))
	tc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	rc := &rawClient{t: t, nc: tc, br: bufio.NewReader(tc)}
	g := rc.line()
	if strings.Contains(g, "STARTTLS") || strings.Contains(g, "LOGINDISABLED") || !strings.Contains(g, "AUTH=PLAIN") {
		t.Fatalf("greeting on implicit TLS %q", g)
	}
	rc.ok(`a LOGIN demo@localhost "secret pass"`)
}
