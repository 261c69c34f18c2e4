package imapd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestPreview: FETCH PREVIEW (RFC 8970) sends the text made at delivery:
// white space folded, HTML reduced to its text, "" for a message without
// text, non-ASCII as a literal for a rev1 session and quoted after ENABLE
// UTF8=ACCEPT; the LAZY modifier is accepted, others are BAD; PREVIEW
// never sets \Seen.
func TestPreview(t *testing.T) {
	ts := newTestServer(t)
	ts.appendMsg(t, "INBOX", "Subject: a\r\n\r\nHello   there,\r\n\r\n  see you at 3.\r\n", store.Flags{})
	ts.appendMsg(t, "INBOX", "Subject: b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n", store.Flags{})
	ts.appendMsg(t, "INBOX", "Subject: c\r\nContent-Type: text/html\r\n\r\n<html><body><p>Big <b>news</b></p></body></html>\r\n", store.Flags{})
	ts.appendMsg(t, "INBOX", "Subject: d\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n", store.Flags{})
	long := strings.Repeat("word ", 100)
	ts.appendMsg(t, "INBOX", "Subject: e\r\n\r\n"+long+"\r\n", store.Flags{})

	rc := ts.login(t)
	if caps := rc.ok("C CAPABILITY"); !strings.Contains(caps[0], " PREVIEW") {
		t.Fatalf("PREVIEW not advertised: %q", caps)
	}
	rc.ok("S SELECT INBOX")
	u := rc.ok("F1 FETCH 1:4 PREVIEW")
	want := []string{
		`* 1 FETCH (PREVIEW "Hello there, see you at 3.")`,
		fmt.Sprintf("* 2 FETCH (PREVIEW {%d}\r\nGrüße aus Köln)", len("Grüße aus Köln")),
		`* 3 FETCH (PREVIEW "Big news")`,
		`* 4 FETCH (PREVIEW "")`,
	}
	if strings.Join(u, "\n") != strings.Join(want, "\n") {
		t.Fatalf("FETCH PREVIEW:\n got %q\nwant %q", u, want)
	}
	u = rc.ok("F2 FETCH 5 PREVIEW (LAZY)")
	p := strings.TrimSuffix(strings.TrimPrefix(u[0], `* 5 FETCH (PREVIEW "`), `")`)
	if len([]rune(p)) > 200 || !strings.HasPrefix(p, "word word") || strings.Contains(p, "  ") {
		t.Fatalf("long preview (%d characters): %q", len([]rune(p)), u[0])
	}
	if u := rc.ok("F3 FETCH 1 (FLAGS PREVIEW (lazy) UID)"); len(u) != 1 || u[0] != `* 1 FETCH (FLAGS (\Recent) PREVIEW "Hello there, see you at 3." UID 1)` {
		t.Fatalf("PREVIEW in a list: %q (and PREVIEW must not set \\Seen)", u)
	}
	for _, c := range []string{"F4 FETCH 1 PREVIEW (EAGER)", "F5 FETCH 1 PREVIEW ()", "F6 FETCH 1 (PREVIEW (LAZY)"} {
		if _, tagged := rc.cmd(c); !strings.Contains(tagged, " BAD") {
			t.Errorf("%s: %q, want BAD", c, tagged)
		}
	}
	rc.ok("E ENABLE UTF8=ACCEPT")
	if u := rc.ok("F7 UID FETCH 2 PREVIEW"); len(u) != 1 || u[0] != `* 2 FETCH (UID 2 PREVIEW "Grüße aus Köln")` {
		t.Fatalf("PREVIEW after UTF8=ACCEPT: %q", u)
	}
}
