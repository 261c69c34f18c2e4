package mailauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
)

const testMsg = "From: Alice <alice@example.org>\r\n" +
	"To: bob@skrytka.test\r\n" +
	"Subject: hello\r\n" +
	"\r\n" +
	"Hi Bob.\r\n"

// signedZone returns a zone for example.org with SPF allowing 192.0.2.1,
// a DMARC reject policy and a DKIM key, and the message signed with it.
func signedZone(t *testing.T) (*Zone, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	z := &Zone{}
	z.AddTXT("example.org", "v=spf1 ip4:192.0.2.1 -all")
	z.AddTXT("_dmarc.example.org", "v=DMARC1; p=reject")
	z.AddTXT("sel._domainkey.example.org", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	var signed bytes.Buffer
	err = dkim.Sign(&signed, strings.NewReader(testMsg), &dkim.SignOptions{
		Domain: "example.org", Selector: "sel", Signer: priv,
	})
	if err != nil {
		t.Fatal(err)
	}
	return z, signed.Bytes()
}

func TestCheck(t *testing.T) {
	z, signed := signedZone(t)
	c := &Checker{Resolver: z}
	ctx := context.Background()
	good := net.ParseIP("192.0.2.1")
	bad := net.ParseIP("198.51.100.7")

	tests := []struct {
		name       string
		ip         net.IP
		from       string
		msg        string
		spf, dmarc authres.ResultValue
		dkim       authres.ResultValue
		policy     dmarc.Policy
	}{
		{"all pass", good, "alice@example.org", string(signed), authres.ResultPass, authres.ResultPass, authres.ResultPass, ""},
		{"spf fail, dkim pass", bad, "alice@example.org", string(signed), authres.ResultFail, authres.ResultPass, authres.ResultPass, ""},
		{"spf pass, unsigned", good, "alice@example.org", testMsg, authres.ResultPass, authres.ResultPass, authres.ResultNone, ""},
		{"both fail", bad, "alice@example.org", testMsg, authres.ResultFail, authres.ResultFail, authres.ResultNone, dmarc.PolicyReject},
		{"body tampered", bad, "x@other.test", strings.Replace(string(signed), "Hi Bob", "Hi Eve", 1), authres.ResultNone, authres.ResultFail, authres.ResultFail, dmarc.PolicyReject},
		{"spf pass unaligned", good, "bounce@example.org.evil.test", testMsg, authres.ResultNone, authres.ResultFail, authres.ResultNone, dmarc.PolicyReject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := c.Check(ctx, Input{RemoteIP: tc.ip, Helo: "mx.example.org", MailFrom: tc.from}, strings.NewReader(tc.msg))
			if res.SPF != tc.spf {
				t.Errorf("spf = %q, want %q", res.SPF, tc.spf)
			}
			if res.DMARC != tc.dmarc {
				t.Errorf("dmarc = %q (%s), want %q", res.DMARC, res.DMARCReason, tc.dmarc)
			}
			gotDKIM := authres.ResultValue(authres.ResultNone)
			if len(res.DKIM) > 0 {
				gotDKIM = res.DKIM[0].Result
			}
			if gotDKIM != tc.dkim {
				t.Errorf("dkim = %q, want %q (%+v)", gotDKIM, tc.dkim, res.DKIM)
			}
			if res.Policy != tc.policy {
				t.Errorf("policy = %q, want %q", res.Policy, tc.policy)
			}
		})
	}
}

func TestCheckTempError(t *testing.T) {
	z := &Zone{}
	z.SetTempFail("example.org")
	z.SetTempFail("_dmarc.example.org")
	c := &Checker{Resolver: z}
	res := c.Check(context.Background(), Input{RemoteIP: net.ParseIP("192.0.2.1"), Helo: "h", MailFrom: "a@example.org"}, strings.NewReader(testMsg))
	if res.SPF != authres.ResultTempError || res.DMARC != authres.ResultTempError {
		t.Fatalf("spf=%q dmarc=%q, want temperror for both", res.SPF, res.DMARC)
	}
}

func TestCheckFromProblems(t *testing.T) {
	c := &Checker{Resolver: &Zone{}}
	for _, msg := range []string{
		"Subject: no from\r\n\r\nx\r\n",
		"From: a@x.test\r\nFrom: b@y.test\r\n\r\nx\r\n",
		"From: a@x.test, b@y.test\r\n\r\nx\r\n",
		"From: \r\n\r\nbody",
	} {
		res := c.Check(context.Background(), Input{}, strings.NewReader(msg))
		if res.DMARC != authres.ResultPermError {
			t.Errorf("%q: dmarc = %q, want permerror", msg, res.DMARC)
		}
	}
}

func TestHeader(t *testing.T) {
	res := &Results{
		SPF: authres.ResultPass, MailFrom: "alice@example.org", SPFDomain: "example.org",
		DKIM:  []DKIMOutcome{{Domain: "example.org", Result: authres.ResultFail, Reason: "bad sig\r\nInjected: yes"}},
		DMARC: authres.ResultFail, DMARCReason: "no aligned SPF or DKIM pass", FromDomain: "example.org",
	}
	got := res.Header("mx.skrytka.test")
	want := "Authentication-Results: mx.skrytka.test;\r\n" +
		"\tspf=pass smtp.mailfrom=alice@example.org;\r\n" +
		"\tdkim=fail reason=\"bad sig  Injected: yes\" header.d=example.org;\r\n" +
		"\tdmarc=fail reason=\"no aligned SPF or DKIM pass\" header.from=example.org\r\n"
	if got != want {
		t.Errorf("header:\n%s\nwant:\n%s", got, want)
	}
	// The result must parse back with the same authserv-id.
	id, results, err := authres.Parse(strings.TrimSuffix(strings.TrimPrefix(
		strings.ReplaceAll(got, "\r\n\t", " "), "Authentication-Results: "), "\r\n"))
	if err != nil || id != "mx.skrytka.test" || len(results) != 3 {
		t.Errorf("Parse = %q, %d results, %v", id, len(results), err)
	}
}

func TestOrgDomain(t *testing.T) {
	for in, want := range map[string]string{
		"example.org":       "example.org",
		"mail.example.org.": "example.org",
		"a.b.example.co.uk": "example.co.uk",
		"co.uk":             "co.uk",
		"MX.Example.COM":    "example.com",
	} {
		if got := OrgDomain(in); got != want {
			t.Errorf("OrgDomain(%q) = %q, want %q", in, got, want)
		}
	}
}
