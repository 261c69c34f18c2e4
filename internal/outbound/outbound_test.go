package outbound

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/mailauth"
)

// remoteMX is an in-process SMTP server on loopback playing another
// domain's MX. Recipients starting with "temp" get 451, "perm" 550.
type remoteMX struct {
	mu    sync.Mutex
	got   []received
	addr  string
	port  string
	tlsOn bool
	cert  []byte // PEM, when withTLS
	conns int    // connections accepted
}

type countingListener struct {
	net.Listener
	mx *remoteMX
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mx.mu.Lock()
		l.mx.conns++
		l.mx.mu.Unlock()
	}
	return c, err
}

type received struct {
	from  string
	rcpts []string
	data  []byte
	tls   bool
	helo  string
}

type mxSession struct {
	mx   *remoteMX
	c    *smtp.Conn
	from string
	to   []string
}

func (s *mxSession) Reset()        { s.from, s.to = "", nil }
func (s *mxSession) Logout() error { return nil }
func (s *mxSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch {
	case strings.HasPrefix(to, "temp"):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "try later"}
	case strings.HasPrefix(to, "perm"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.to = append(s.to, to)
	return nil
}
func (s *mxSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.mx.mu.Lock()
	s.mx.got = append(s.mx.got, received{s.from, s.to, b, isTLS, s.c.Hostname()})
	s.mx.mu.Unlock()
	return nil
}

func startMX(t *testing.T, withTLS bool) *remoteMX {
	t.Helper()
	mx := &remoteMX{tlsOn: withTLS}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mxSession{mx: mx, c: c}, nil
	}))
	srv.Domain = "mx2.example.net"
	if withTLS {
		certPEM, keyPEM, err := listen.GenerateSelfSigned("mx2.example.net", time.Now().Add(-time.Hour), time.Hour*24)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := tls.X509KeyPair(certPEM, keyPEM)
		mx.cert = certPEM
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(countingListener{ln, mx})
	t.Cleanup(func() { srv.Close() })
	mx.addr = ln.Addr().String()
	_, mx.port, _ = net.SplitHostPort(mx.addr)
	return mx
}

// zone: example.net has MX 10 mx1 (192.0.2.1, unreachable) and MX 20 mx2
// (127.0.0.1, the remoteMX); noreply.test has a null MX; bare.test has no
// MX, only an address; broken.test fails temporarily.
func testZone() *mailauth.Zone {
	z := &mailauth.Zone{}
	z.AddMX("example.net", "mx2.example.net.", 20)
	z.AddMX("example.net", "mx1.example.net.", 10)
	z.AddIP("mx1.example.net", net.ParseIP("192.0.2.1"))
	z.AddIP("mx2.example.net", net.ParseIP("127.0.0.1"))
	z.AddMX("noreply.test", ".", 0)
	z.AddIP("bare.test", net.ParseIP("127.0.0.1"))
	z.SetTempFail("broken.test")
	return z
}

// loopbackOnly refuses every address but 127.0.0.1, as an unreachable
// host would (and keeps tests off the network).
func loopbackOnly(ctx context.Context, network, addr string) (net.Conn, error) {
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

const outMsg = "From: Alice <alice@skrytka.test>\r\nTo: bob@example.net\r\nSubject: out\r\n\r\nHello from Skrytka.\r\n"

func testMessage(rcpts ...string) Message {
	return Message{From: "alice@skrytka.test", Rcpts: rcpts, Body: strings.NewReader(outMsg), Size: int64(len(outMsg))}
}

func TestDeliverSignedWithFallback(t *testing.T) {
	mx := startMX(t, true)
	z := testZone()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	z.AddTXT("sel._domainkey.skrytka.test", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	s := New(Options{Hostname: "mail.skrytka.test", Resolver: z, Dial: loopbackOnly, Port: mx.port,
		DKIM: map[string]*dkim.SignOptions{"skrytka.test": {Domain: "skrytka.test", Selector: "sel", Signer: priv}}})

	res := s.Deliver(context.Background(), testMessage("bob@example.net", "temp1@example.net", "perm1@example.net"))
	if res[0].Err != nil || res[0].Host != "mx2.example.net" {
		t.Errorf("bob: %+v", res[0])
	}
	if res[1].Err == nil || !res[1].Temporary {
		t.Errorf("temp: %+v", res[1])
	}
	if se, ok := res[2].SMTPError(); !ok || se.Code != 550 || res[2].Temporary {
		t.Errorf("perm: %+v", res[2])
	}
	if len(mx.got) != 1 {
		t.Fatalf("remote MX got %d messages", len(mx.got))
	}
	got := mx.got[0]
	if !got.tls || got.helo != "mail.skrytka.test" || got.from != "alice@skrytka.test" || len(got.rcpts) != 1 {
		t.Errorf("transaction: tls=%v helo=%q from=%q rcpts=%v", got.tls, got.helo, got.from, got.rcpts)
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(got.data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return z.LookupTXT(context.Background(), name) },
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "skrytka.test" {
		t.Errorf("DKIM on the delivered message: %v %+v", err, verifs)
	}
	if !bytes.HasSuffix(got.data, []byte(outMsg)) {
		t.Errorf("message changed in transit:\n%s", got.data)
	}
}

func TestDeliverRoutingFailures(t *testing.T) {
	mx := startMX(t, false)
	s := New(Options{Resolver: testZone(), Dial: loopbackOnly, Port: mx.port})
	res := s.Deliver(context.Background(), testMessage("x@noreply.test", "y@broken.test", "z@bare.test", "w@unknown.test"))
	if se, ok := res[0].SMTPError(); !ok || se.Code != 556 || res[0].Temporary {
		t.Errorf("null MX: %+v", res[0])
	}
	if res[1].Err == nil || !res[1].Temporary {
		t.Errorf("DNS temporary failure: %+v", res[1])
	}
	if res[2].Err != nil {
		t.Errorf("implicit MX (address record): %+v", res[2])
	}
	if res[3].Err == nil || !res[3].Temporary {
		// No MX and no address: nothing to connect to yet; retried
		// until the queue's expiry.
		t.Errorf("unknown domain: %+v", res[3])
	}
	if len(mx.got) != 1 || mx.got[0].tls {
		t.Errorf("plaintext delivery to bare.test: %+v", mx.got)
	}
}

func TestDSN(t *testing.T) {
	results := []Result{
		{Rcpt: "perm1@example.net", Host: "mx2.example.net", Err: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such\r\nuser"}},
		{Rcpt: "x@noreply.test", Err: errNullMX},
	}
	raw := DSN{ReportingMTA: "mail.skrytka.test", Sender: "alice@skrytka.test", Arrival: time.Unix(0, 0),
		Header: []byte("From: alice@skrytka.test\r\nSubject: out\r\n\r\n"), Results: results}.Build(time.Unix(60, 0))
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	ct, params, _ := e.Header.ContentType()
	if ct != "multipart/report" || params["report-type"] != "delivery-status" || e.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Fatalf("header: %v %v", ct, params)
	}
	mr := e.MultipartReader()
	var types []string
	var status string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := p.Header.ContentType()
		types = append(types, pt)
		b, _ := io.ReadAll(p.Body)
		if pt == "message/delivery-status" {
			status = string(b)
		}
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Errorf("parts %v", types)
	}
	for _, want := range []string{"Reporting-MTA: dns; mail.skrytka.test", "Final-Recipient: rfc822; perm1@example.net",
		"Action: failed", "Status: 5.1.1", "Remote-MTA: dns; mx2.example.net", "Diagnostic-Code: smtp; 550 no such  user",
		"Final-Recipient: rfc822; x@noreply.test", "Status: 5.1.10"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
}

func TestGeneratedDKIMKeySignsVerifiably(t *testing.T) {
	mx := startMX(t, false)
	keyPEM, txt, err := GenerateDKIMKey()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := ParseDKIMKey(keyPEM, "skrytka.test", "s2026")
	if err != nil {
		t.Fatal(err)
	}
	z := testZone()
	z.AddTXT(DKIMRecordName("skrytka.test", "s2026"), txt)
	s := New(Options{Resolver: z, Dial: loopbackOnly, Port: mx.port, DKIM: map[string]*dkim.SignOptions{"skrytka.test": opts}})
	if res := s.Deliver(context.Background(), testMessage("bob@example.net")); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(mx.got[0].data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return z.LookupTXT(context.Background(), name) },
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil {
		t.Errorf("verify: %v %+v", err, verifs)
	}
}

func TestSmarthostRequiresTLS(t *testing.T) {
	plain := startMX(t, false)
	s := New(Options{Resolver: testZone(), Dial: loopbackOnly, Smarthost: plain.addr})
	res := s.Deliver(context.Background(), testMessage("bob@example.net", "carol@example.org"))
	for _, r := range res {
		if r.Err == nil || !r.Temporary {
			t.Errorf("plaintext smarthost: %+v", r)
		}
	}
	if len(plain.got) != 0 {
		t.Errorf("sent to a smarthost without TLS")
	}
	// Its certificate must verify: with the right roots it works.
	secure := startMX(t, true)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(secure.cert)
	s = New(Options{Resolver: testZone(), Dial: loopbackOnly, Smarthost: secure.addr, TLSConfig: &tls.Config{RootCAs: roots}})
	if res := s.Deliver(context.Background(), testMessage("x@example.net")); res[0].Err != nil {
		t.Fatalf("verified smarthost: %v", res[0].Err)
	}
	// An unverifiable smarthost certificate is refused (retry later).
	s2 := New(Options{Resolver: testZone(), Dial: loopbackOnly, Smarthost: secure.addr})
	if res := s2.Deliver(context.Background(), testMessage("x@example.net")); res[0].Err == nil || !res[0].Temporary {
		t.Errorf("unverified smarthost accepted: %+v", res[0])
	}
	secure.got = nil
	res = s.Deliver(context.Background(), testMessage("bob@example.net", "carol@example.org"))
	if res[0].Err != nil || res[1].Err != nil || len(secure.got) != 1 || len(secure.got[0].rcpts) != 2 || !secure.got[0].tls {
		t.Errorf("smarthost delivery: %+v %+v", res, secure.got)
	}
}

func TestBatchReusesConnection(t *testing.T) {
	mx := startMX(t, true)
	s := New(Options{Resolver: testZone(), Dial: loopbackOnly, Port: mx.port})
	b := s.NewBatch()
	for i := 0; i < 3; i++ {
		// perm1 is refused at RCPT: the session must stay usable.
		res := b.Deliver(context.Background(), testMessage("bob@example.net", "perm1@example.net"))
		if res[0].Err != nil || res[1].Err == nil {
			t.Fatalf("message %d: %+v", i, res)
		}
	}
	b.Close()
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if mx.conns != 1 || len(mx.got) != 3 || !mx.got[2].tls {
		t.Errorf("%d connections for %d messages, want 1 (TLS) for 3", mx.conns, len(mx.got))
	}
}

func TestEightBitNeedsEightBitMIME(t *testing.T) {
	mx := startMX(t, false)
	s := New(Options{Resolver: testZone(), Dial: loopbackOnly, Port: mx.port})
	body := "From: alice@skrytka.test\r\n\r\nGrüße\r\n"
	m := Message{From: "alice@skrytka.test", Rcpts: []string{"bob@example.net"}, Body: strings.NewReader(body), Size: int64(len(body))}
	// go-smtp's server offers 8BITMIME: delivered as is.
	if res := s.Deliver(context.Background(), m); res[0].Err != nil {
		t.Fatalf("8BITMIME server: %v", res[0].Err)
	}
	if got := mx.got[0].data; !bytes.Equal(got, []byte(body)) {
		t.Errorf("got %q", got)
	}
	if !has8Bit(strings.NewReader(body)) || has8Bit(strings.NewReader(outMsg)) {
		t.Errorf("has8Bit wrong")
	}
}

// oldMX is a minimal hand-driven server that offers no extensions at all
// (no 8BITMIME, no STARTTLS); it records the commands it sees.
func oldMX(t *testing.T) (port string, cmds func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var seen []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				io.WriteString(c, "220 old.example.net\r\n")
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.ToUpper(strings.TrimSpace(line))
					mu.Lock()
					seen = append(seen, cmd)
					mu.Unlock()
					switch {
					case strings.HasPrefix(cmd, "EHLO"):
						io.WriteString(c, "250 old.example.net\r\n")
					case strings.HasPrefix(cmd, "QUIT"):
						io.WriteString(c, "221 bye\r\n")
						return
					case strings.HasPrefix(cmd, "DATA"):
						io.WriteString(c, "354 go\r\n")
						for {
							l, err := br.ReadString('\n')
							if err != nil || l == ".\r\n" {
								break
							}
						}
						io.WriteString(c, "250 ok\r\n")
					default:
						io.WriteString(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

func TestEightBitToOldServerBounces(t *testing.T) {
	port, cmds := oldMX(t)
	s := New(Options{Resolver: testZone(), Dial: loopbackOnly, Port: port})
	body := "From: alice@skrytka.test\r\n\r\nGrüße\r\n"
	m := Message{From: "alice@skrytka.test", Rcpts: []string{"bob@example.net"}, Body: strings.NewReader(body), Size: int64(len(body))}
	res := s.Deliver(context.Background(), m)
	if se, ok := res[0].SMTPError(); !ok || se.Code != 554 || res[0].Temporary {
		t.Fatalf("8-bit to a 7-bit server: %+v", res[0])
	}
	for _, c := range cmds() {
		if strings.HasPrefix(c, "DATA") {
			t.Errorf("8-bit data sent to a server without 8BITMIME")
		}
	}
	// A 7-bit message goes through (in plaintext: no STARTTLS offered).
	if res := s.Deliver(context.Background(), testMessage("bob@example.net")); res[0].Err != nil {
		t.Errorf("7-bit message: %v", res[0].Err)
	}
}
