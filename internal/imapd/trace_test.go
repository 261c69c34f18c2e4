package imapd

import (
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/testharness"
)

func TestTraceRedacts(t *testing.T) {
	var logs testharness.SyncBuffer
	ts := newTestServer(t, func(o *Options) {
		o.Trace = true
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	rc := ts.login(t)
	appendRaw(rc, "b", "INBOX", "Subject: secret-subject\r\n\r\nsecret-body\r\n")
	rc.ok("c SELECT INBOX")
	rc.ok("d FETCH 1 BODY.PEEK[]")
	rc2 := ts.dialGreet(t)
	rc2.send("a AUTHENTICATE PLAIN\r\n")
	rc2.line()
	rc2.send(base64.StdEncoding.EncodeToString([]byte("\x00demo@localhost\x00secret pass")) + "\r\n")
	rc2.until("a")
	rc.ok("e LOGOUT")
	out := logs.String()
	for _, secret := range []string{"secret pass", "secret-body", "secret-subject", base64.StdEncoding.EncodeToString([]byte("\x00demo@localhost\x00secret pass"))} {
		if strings.Contains(out, secret) {
			t.Errorf("trace shows %q", secret)
		}
	}
	for _, want := range []string{"L1 LOGIN <redacted>", "a AUTHENTICATE PLAIN <redacted>", "<redacted SASL response>", "octets>", "c SELECT INBOX", "* 1 EXISTS"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q", want)
		}
	}
}
