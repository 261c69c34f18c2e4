package imapwire

import (
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/mailparse"
)

func TestAppendEnvelope(t *testing.T) {
	e := &mailparse.Envelope{
		Subject: `say "hi"`,
		Present: mailparse.EnvSubject | mailparse.EnvInReplyTo,
		From:    []mailparse.Address{{Name: "Jöhn", Mailbox: "j", Host: "x.test"}},
		To: []mailparse.Address{
			{Mailbox: "Team", GroupStart: true},
			{Mailbox: "a", Host: "b", ADL: "@r"},
			{GroupEnd: true},
		},
	}
	got := string(AppendEnvelope(nil, e, false))
	want := `(NIL "say \"hi\"" (({5}` + "\r\n" + `Jöhn NIL "j" "x.test")) (({5}` + "\r\n" + `Jöhn NIL "j" "x.test")) (({5}` + "\r\n" +
		`Jöhn NIL "j" "x.test")) ((NIL NIL "Team" NIL)(NIL "@r" "a" "b")(NIL NIL NIL NIL)) NIL NIL "" NIL)`
	if got != want {
		t.Errorf("envelope\n got %q\nwant %q", got, want)
	}
	if got := string(AppendEnvelope(nil, e, true)); !strings.Contains(got, `(("Jöhn" NIL "j" "x.test"))`) {
		t.Errorf("utf8 envelope %q", got)
	}
}

func TestAppendBodyStructure(t *testing.T) {
	p := &mailparse.Part{
		Type: "multipart", Subtype: "mixed", Params: []mailparse.Param{{Name: "boundary", Value: "b"}},
		Children: []mailparse.Part{
			{Type: "text", Subtype: "plain", Params: []mailparse.Param{{Name: "charset", Value: "us-ascii"}},
				BodyStart: 10, End: 20, Lines: 2, Language: []string{"en", "de"}, Location: "loc"},
			{Type: "message", Subtype: "rfc822", BodyStart: 30, End: 40, Lines: 3}, // not parsed: still needs envelope and body
			{Type: "multipart", Subtype: "related"},                                // no parts: shown as one empty text/plain
			{Type: "image", Subtype: "png", Encoding: "base64", BodyStart: 50, End: 54, HasDisposition: true, TypeSpelling: "IMAGE/Png"},
		},
	}
	got := string(AppendBodyStructure(nil, p, true, false))
	want := `(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 2 NIL NIL ("en" "de") "loc")` +
		`("message" "rfc822" NIL NIL NIL "7bit" 10 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)` +
		`(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "related" NIL NIL NIL NIL)` +
		`("IMAGE" "Png" NIL NIL NIL "base64" 4 NIL ("" NIL) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)`
	if got != want {
		t.Errorf("bodystructure\n got %s\nwant %s", got, want)
	}
	got = string(AppendBodyStructure(nil, p, false, false))
	want = `(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 2)` +
		`("message" "rfc822" NIL NIL NIL "7bit" 10 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 3)` +
		`(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "related")` +
		`("IMAGE" "Png" NIL NIL NIL "base64" 4) "mixed")`
	if got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	// Whatever the tree, the output parses.
	if _, rest, err := parseSexp(got, false); err != nil || rest != "" {
		t.Errorf("output does not parse: %v %q", err, rest)
	}
}
