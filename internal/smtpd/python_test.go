package smtpd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The message Python sends: 8-bit UTF-8, a line starting with a dot, a
// forged Authentication-Results for our hostname (must go) and a genuine
// one from another host (must stay).
const pyMsg = "Authentication-Results: " + testHost + "; spf=pass smtp.mailfrom=forged@example.org\r\n" +
	"Authentication-Results: relay.example.net; dkim=pass header.d=example.net\r\n" +
	"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\r\n" +
	"To: alice@skrytka.test\r\n" +
	"Subject: Grüße\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"\r\n" +
	"Grüße aus Köln.\r\n" +
	".leading dot\r\n" +
	"..two dots\r\n" +
	"\r\n" +
	"last line without much\r\n"

const pyScript = `
import smtplib, sys
port = int(sys.argv[1])
msg = open(sys.argv[2], "rb").read()
with smtplib.SMTP("127.0.0.1", port, local_hostname="py.example.org", timeout=20) as s:
    s.ehlo()
    assert s.has_extn("8bitmime") and s.has_extn("pipelining") and s.has_extn("smtputf8")
    refused = s.sendmail("joerg@example.org", ["alice@skrytka.test"], msg, mail_options=["BODY=8BITMIME"])
    assert not refused, refused
    try:
        s.sendmail("joerg@example.org", ["someone@example.com"], msg)
        print("RELAYED")
        sys.exit(1)
    except smtplib.SMTPRecipientsRefused as e:
        code = e.recipients["someone@example.com"][0]
        assert code == 554, code
print("OK")
`

func TestPythonSmtplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t, ModeMX, nil)
	dir := t.TempDir()
	script := filepath.Join(dir, "send.py")
	msgFile := filepath.Join(dir, "msg.eml")
	os.WriteFile(script, []byte(pyScript), 0o600)
	os.WriteFile(msgFile, []byte(pyMsg), 0o600)
	_, port, _ := strings.Cut(e.addr, ":")
	out, err := exec.Command(py, script, port, msgFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("python: %v\n%s", err, out)
	}

	msgs := e.inbox("alice")
	if len(msgs) != 1 {
		t.Fatalf("alice has %d messages", len(msgs))
	}
	got := msgs[0]
	// Our four fields, then the message as sent minus the forged field.
	names := fieldNames(got)
	want := []string{"Return-Path", "Delivered-To", "Authentication-Results", "Received",
		"Authentication-Results", "From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("fields %v\nwant %v", names, want)
	}
	i := strings.Index(got, "Authentication-Results: relay.example.net")
	if i < 0 {
		t.Fatalf("genuine foreign Authentication-Results missing:\n%s", got)
	}
	_, rest, _ := strings.Cut(pyMsg, "\r\n") // pyMsg without its first (forged) field
	if got[i:] != rest {
		t.Errorf("message after our header fields differs from what was sent:\n got %q\nwant %q", got[i:], rest)
	}
	prefix := got[:i]
	if strings.Contains(prefix, "forged@example.org") {
		t.Errorf("forged Authentication-Results kept")
	}
	if !strings.HasPrefix(prefix, "Return-Path: <joerg@example.org>\r\nDelivered-To: alice@skrytka.test\r\nAuthentication-Results: "+testHost+";\r\n\tspf=none") {
		t.Errorf("prefix:\n%s", prefix)
	}
	if !strings.Contains(prefix, "Received: from py.example.org ([127.0.0.1])\r\n\tby "+testHost+" (Skrytka) with ESMTP id ") {
		t.Errorf("Received:\n%s", prefix)
	}
	// Body byte-identical.
	_, body, _ := strings.Cut(got, "\r\n\r\n")
	_, wantBody, _ := strings.Cut(pyMsg, "\r\n\r\n")
	if body != wantBody {
		t.Errorf("body %q, want %q", body, wantBody)
	}
}
