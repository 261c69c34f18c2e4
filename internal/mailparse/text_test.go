package mailparse

import (
	"strings"
	"testing"
)

func TestExtractText(t *testing.T) {
	msg := crlf(`From: =?iso-8859-1?q?J=F8rn?= <j@example.com>
Subject: =?utf-8?b?w6l0w6k=?= report
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus K=F6ln, long line=
 joined
--b
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGh0bWw+PHN0eWxlPnAge2NvbG9yOnJlZH08L3N0eWxlPjxwPkhlbGxvICZhbXA7IHdlbGNv
bWU8L3A+PCEtLSBoaWRkZW4gLS0+PC9odG1sPg==
--b
Content-Type: text/plain; charset=shift_jis
Content-Transfer-Encoding: base64

g2WDWINn
--b
Content-Type: application/pdf
Content-Transfer-Encoding: base64

SGlkZGVuUGRmVGV4dA==
--b
Content-Type: message/rfc822

Subject: =?utf-8?q?inner_subj=C3=A9ct?=

inner body
--b--
`)
	info := mustParse(t, msg)
	hdr, body, err := ExtractText(strings.NewReader(msg), info, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"From: Jørn <j@example.com>", "Subject: été report"} {
		if !strings.Contains(hdr, want) {
			t.Errorf("header text lacks %q:\n%s", want, hdr)
		}
	}
	for _, want := range []string{"Grüße aus Köln, long line joined", "Hello & welcome", "テスト", "Subject: inner subjéct", "inner body"} {
		if !strings.Contains(body, want) {
			t.Errorf("body text lacks %q:\n%s", want, body)
		}
	}
	for _, bad := range []string{"HiddenPdfText", "color:red", "hidden", "<p>", "=FC"} {
		if strings.Contains(body, bad) {
			t.Errorf("body text has %q:\n%s", bad, body)
		}
	}
	if info.Preview != "Grüße aus Köln, long line joined" {
		t.Errorf("preview %q", info.Preview)
	}

	// maxBytes cuts both, never inside a UTF-8 sequence.
	hdr, body, err = ExtractText(strings.NewReader(msg), info, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(hdr) > 9 || len(body) > 9 || body != "Grüße a" {
		t.Errorf("cut: %q %q", hdr, body)
	}

	// Without info, ExtractText parses first.
	if _, body2, err := ExtractText(strings.NewReader(msg), nil, 0); err != nil || !strings.Contains(body2, "inner body") {
		t.Errorf("nil info: %v %q", err, body2)
	}
}

func TestDecodeHelpers(t *testing.T) {
	if got := string(decodeBase64([]byte("SGVs\r\nbG8=\r\n!!V29y bGQ="))); got != "HelloWorld" {
		t.Errorf("base64 %q", got)
	}
	if got := DecodeHeaderValue("=?unknown-cs?q?x?= plain"); got != "=?unknown-cs?q?x?= plain" {
		t.Errorf("unknown charset %q", got)
	}
	if got := DecodeParam(Param{"filename*", "iso-8859-1'en'%E9t%E9.txt"}); got != "été.txt" {
		t.Errorf("param %q", got)
	}
	if got := makePreview(strings.Repeat("ab ", 200)); len([]rune(got)) != previewRunes {
		t.Errorf("preview length %d", len([]rune(got)))
	}
}

func TestExtractTextUndeclared8bit(t *testing.T) {
	msg := "Content-Type: text/plain\r\n\r\ncaf\xe9 cr\xe8me\r\n"
	_, body, err := ExtractText(strings.NewReader(msg), mustParse(t, msg), 0)
	if err != nil || body != "café crème\r\n" {
		t.Errorf("%v %q", err, body)
	}
}
