package mailparse

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func mustParse(t *testing.T, msg string) *Info {
	t.Helper()
	info, err := Parse(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, info, int64(len(msg)))
	return info
}

// checkTree verifies the offset invariants: every part inside its parent's
// body, siblings in order, HeaderStart <= BodyStart <= End <= size.
func checkTree(t testing.TB, info *Info, size int64) {
	t.Helper()
	if info.Root.HeaderStart != 0 || info.Root.End != size {
		t.Fatalf("root [%d,%d), size %d", info.Root.HeaderStart, info.Root.End, size)
	}
	var walk func(p *Part, depth int)
	walk = func(p *Part, depth int) {
		if depth > maxDepth+2 {
			t.Fatalf("tree deeper than the limit")
		}
		if !(0 <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= size) {
			t.Fatalf("bad offsets %d %d %d (size %d)", p.HeaderStart, p.BodyStart, p.End, size)
		}
		if p.Lines < 0 || p.Lines > p.End-p.BodyStart {
			t.Fatalf("bad line count %d for %d octets", p.Lines, p.End-p.BodyStart)
		}
		prev := p.BodyStart
		for i := range p.Children {
			c := &p.Children[i]
			if c.HeaderStart < prev || c.End > p.End {
				t.Fatalf("child [%d,%d) outside parent body [%d,%d) or before sibling end %d", c.HeaderStart, c.End, p.BodyStart, p.End, prev)
			}
			prev = c.End
			walk(c, depth+1)
		}
		isMsg := p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global")
		if isMsg != (p.Envelope != nil) || (isMsg && len(p.Children) != 1) {
			t.Fatalf("message part %s/%s with envelope %v and %d children", p.Type, p.Subtype, p.Envelope != nil, len(p.Children))
		}
	}
	walk(&info.Root, 0)
}

func body(msg string, p *Part) string   { return msg[p.BodyStart:p.End] }
func header(msg string, p *Part) string { return msg[p.HeaderStart:p.BodyStart] }

func TestParseStructure(t *testing.T) {
	msg := crlf(`From: a@example.com
Subject: nested
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8

plain text
two lines
--inner
Content-Type: text/html

<p>html</p>
--inner--
--outer
Content-Type: message/rfc822
Content-Disposition: attachment; filename*0="long"; filename*1="name.eml"

From: "B. Person" <b@example.org>
Subject: inside
Content-Type: multipart/digest; boundary=d

--d

From: c@example.net
Subject: digest entry

entry body
--d--
--outer
Content-Type: application/octet-stream; name*=utf-8''%C3%A9t%C3%A9.bin
Content-Transfer-Encoding: base64
Content-ID: <id@x>
Content-Description: some data
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Language: en, de
Content-Location: http://example.com/x

AAAA
--outer--
epilogue
`)
	info := mustParse(t, msg)
	r := &info.Root
	if r.Type != "multipart" || r.Subtype != "mixed" || len(r.Children) != 3 {
		t.Fatalf("root %s/%s with %d children", r.Type, r.Subtype, len(r.Children))
	}
	alt := &r.Children[0]
	if alt.Subtype != "alternative" || len(alt.Children) != 2 {
		t.Fatalf("alt %+v", alt)
	}
	if got := body(msg, &alt.Children[0]); got != "plain text\r\ntwo lines" {
		t.Errorf("text body %q", got)
	}
	if alt.Children[0].Lines != 1 {
		t.Errorf("text lines %d, want 1", alt.Children[0].Lines)
	}
	if got := header(msg, &alt.Children[1]); got != "Content-Type: text/html\r\n\r\n" {
		t.Errorf("html header %q", got)
	}
	if p := alt.Children[1].Params; len(p) != 1 || p[0] != (Param{"charset", "us-ascii"}) {
		t.Errorf("default charset not added: %v", p)
	}
	if got := body(msg, r); !strings.HasPrefix(got, "preamble\r\n--outer") || !strings.HasSuffix(got, "epilogue\r\n") {
		t.Errorf("root body %q", got)
	}

	m := &r.Children[1]
	if !m.IsMessage() || m.Envelope.Subject != "inside" {
		t.Fatalf("message part %+v", m)
	}
	if m.DispositionParams[0] != (Param{"filename", "longname.eml"}) {
		t.Errorf("RFC 2231 continuation: %v", m.DispositionParams)
	}
	if a := m.Envelope.From; len(a) != 1 || a[0].Name != "B. Person" || a[0].Mailbox != "b" || a[0].Host != "example.org" {
		t.Errorf("inner from %+v", a)
	}
	inner := &m.Children[0]
	if inner.HeaderStart != m.BodyStart || inner.End != m.End {
		t.Errorf("encapsulated message [%d,%d) vs part body [%d,%d)", inner.HeaderStart, inner.End, m.BodyStart, m.End)
	}
	if inner.Subtype != "digest" || len(inner.Children) != 1 {
		t.Fatalf("digest %+v", inner)
	}
	entry := &inner.Children[0]
	if entry.Type != "message" || entry.Subtype != "rfc822" || !entry.IsMessage() {
		t.Fatalf("digest entry should default to message/rfc822: %s/%s", entry.Type, entry.Subtype)
	}
	if entry.Envelope.Subject != "digest entry" || body(msg, &entry.Children[0]) != "entry body" {
		t.Errorf("digest entry %q", body(msg, &entry.Children[0]))
	}

	bin := &r.Children[2]
	if bin.Encoding != "base64" || bin.ID != "<id@x>" || bin.Desc != "some data" || bin.MD5 != "Q2hlY2sgSW50ZWdyaXR5IQ==" ||
		!reflect.DeepEqual(bin.Language, []string{"en", "de"}) || bin.Location != "http://example.com/x" {
		t.Errorf("content fields %+v", bin)
	}
	if p := bin.Params[0]; p.Name != "name*" || DecodeParam(p) != "été.bin" {
		t.Errorf("RFC 2231 charset param %v -> %q", p, DecodeParam(p))
	}
	if body(msg, bin) != "AAAA" {
		t.Errorf("bin body %q", body(msg, bin))
	}
}

func TestParseBroken(t *testing.T) {
	tests := []struct {
		name, msg string
		check     func(t *testing.T, msg string, info *Info)
	}{
		{"empty", "", func(t *testing.T, msg string, info *Info) {
			if info.Root.Type != "text" || info.Root.End != 0 {
				t.Errorf("%+v", info.Root)
			}
		}},
		{"header only, no blank line", "Subject: x\r\n", func(t *testing.T, msg string, info *Info) {
			if info.Root.BodyStart != int64(len(msg)) || info.Envelope.Subject != "x" {
				t.Errorf("%+v", info.Root)
			}
		}},
		{"bare LF", "Subject: lf\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b--\n", func(t *testing.T, msg string, info *Info) {
			if len(info.Root.Children) != 1 || body(msg, &info.Root.Children[0]) != "one" {
				t.Errorf("%+v", info.Root)
			}
		}},
		{"missing boundary parameter", crlf("Content-Type: multipart/mixed\n\n--x\n\nbody\n"), func(t *testing.T, msg string, info *Info) {
			if info.Root.Type != "multipart" || len(info.Root.Children) != 0 {
				t.Errorf("%+v", info.Root)
			}
		}},
		{"boundary never appears", crlf("Content-Type: multipart/mixed; boundary=zz\n\njust text\n"), func(t *testing.T, msg string, info *Info) {
			if len(info.Root.Children) != 0 || body(msg, &info.Root) != "just text\r\n" {
				t.Errorf("%+v", info.Root)
			}
		}},
		{"no close delimiter", crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n"), func(t *testing.T, msg string, info *Info) {
			if len(info.Root.Children) != 2 || body(msg, &info.Root.Children[1]) != "two\r\n" {
				t.Errorf("%+v", info.Root.Children)
			}
		}},
		{"garbage content-type", crlf("Content-Type: ???\n\nx\n"), func(t *testing.T, msg string, info *Info) {
			if info.Root.Type != "text" || info.Root.Subtype != "plain" {
				t.Errorf("%+v", info.Root)
			}
		}},
		{"invalid encoding", crlf("Content-Transfer-Encoding: quoted printable\n\nx\n"), func(t *testing.T, msg string, info *Info) {
			if info.Root.Encoding != "" {
				t.Errorf("encoding %q", info.Root.Encoding)
			}
		}},
		{"message/rfc822 with empty body", crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: in\n\n--b--\n"), func(t *testing.T, msg string, info *Info) {
			m := &info.Root.Children[0]
			if !m.IsMessage() || m.Envelope.Subject != "in" || m.Children[0].BodyStart != m.Children[0].End {
				t.Errorf("%+v", m)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, tc.msg, mustParse(t, tc.msg))
		})
	}
}

func TestParseDeepNesting(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 500; i++ {
		b.WriteString("Content-Type: multipart/mixed; boundary=b" + strings.Repeat("x", i) + "\r\n\r\n--b" + strings.Repeat("x", i) + "\r\n")
	}
	b.WriteString("\r\ntext\r\n")
	msg := b.String()
	info := mustParse(t, msg)
	depth := 0
	for p := &info.Root; len(p.Children) > 0; p = &p.Children[0] {
		depth++
	}
	if depth > maxDepth {
		t.Errorf("depth %d beyond limit %d", depth, maxDepth)
	}
}

func TestParseLongLines(t *testing.T) {
	long := strings.Repeat("a", 200000)
	msg := "Subject: " + long + "\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + long + "\r\n--b--\r\n"
	info := mustParse(t, msg)
	if len(info.Root.Children) != 1 || len(body(msg, &info.Root.Children[0])) != len(long) {
		t.Fatalf("%+v", info.Root)
	}
	if len(info.Envelope.Subject) > maxFieldBytes {
		t.Errorf("kept subject of %d octets", len(info.Envelope.Subject))
	}
}

func TestEnvelope(t *testing.T) {
	msg := crlf(`Date: Fri, 21 Nov 1997 09:55:06 -0600
Subject: =?utf-8?q?caf=C3=A9?=
 folded
From: "Joe Q. Public" <john.q.public@example.com>
Reply-To:
To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Mary <@route.example:mary@x.test>
Cc: Undisclosed recipients:;
Bcc: broken <
In-Reply-To:
Message-ID: <1234@local.machine.example>

body
`)
	info := mustParse(t, msg)
	e := &info.Envelope
	if e.Subject != "=?utf-8?q?caf=C3=A9?= folded" {
		t.Errorf("subject %q", e.Subject)
	}
	if e.Present&EnvInReplyTo == 0 || e.InReplyTo != "" {
		t.Errorf("empty In-Reply-To should be present: %q %b", e.InReplyTo, e.Present)
	}
	if len(e.ReplyTo) != 0 || len(e.EffectiveReplyTo()) != 1 || len(e.EffectiveSender()) != 1 {
		t.Errorf("reply-to/sender defaults: %+v %+v", e.ReplyTo, e.EffectiveSender())
	}
	want := []Address{
		{Mailbox: "A Group", GroupStart: true},
		{Name: "Ed Jones", Mailbox: "c", Host: "a.test"},
		{Mailbox: "joe", Host: "where.test"},
		{Name: "John", Mailbox: "jdoe", Host: "one.test"},
		{GroupEnd: true},
		{Name: "Mary", ADL: "@route.example", Mailbox: "mary", Host: "x.test"},
	}
	if !reflect.DeepEqual(e.To, want) {
		t.Errorf("to:\n got %+v\nwant %+v", e.To, want)
	}
	if len(e.Cc) != 2 || !e.Cc[0].GroupStart || !e.Cc[1].GroupEnd {
		t.Errorf("cc %+v", e.Cc)
	}
	if len(e.Bcc) != 1 || e.Bcc[0].Host != "SYNTAX_ERROR" {
		t.Errorf("bcc %+v", e.Bcc)
	}
	if info.Date.IsZero() || info.Date.Year() != 1997 {
		t.Errorf("date %v", info.Date)
	}
	if info.Preview != "body" {
		t.Errorf("preview %q", info.Preview)
	}
}

func corpusMessages(t testing.TB) map[string][]byte {
	t.Helper()
	dir := filepath.Join("..", "imapwire", "testdata", "mime-corpus", "messages")
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		out[de.Name()] = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	}
	return out
}

func TestMarshalRoundTrip(t *testing.T) {
	for name, msg := range corpusMessages(t) {
		info, err := Parse(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		b, err := info.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !info.Date.Equal(got.Date) {
			t.Errorf("%s: date %v != %v", name, got.Date, info.Date)
		}
		got.Date = info.Date
		if !reflect.DeepEqual(info, got) {
			t.Errorf("%s: round trip differs:\n got %+v\nwant %+v", name, got, info)
		}
		// Every truncation must fail cleanly, never panic.
		for i := 0; i < len(b); i++ {
			if _, err := Unmarshal(b[:i]); err == nil {
				t.Errorf("%s: truncated encoding (%d of %d) accepted", name, i, len(b))
				break
			}
		}
	}
	if _, err := Unmarshal([]byte(`{"json":1}`)); err == nil {
		t.Error("foreign data accepted")
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	msgs := corpusMessages(b)
	for _, name := range []string{
		"plain_emails__basic_email.eml",
		"multipart_report_emails__multi_address_bounce1.eml",
		"attachment_emails__attachment_message_rfc822_inline_image.eml",
	} {
		info, err := Parse(bytes.NewReader(msgs[name]))
		if err != nil {
			b.Fatal(err)
		}
		enc, err := info.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(name, ".eml"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := Unmarshal(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	msg := corpusMessages(b)["multipart_report_emails__multi_address_bounce1.eml"]
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
}

// bigMessage streams a message with a huge base64 attachment without ever
// holding it.
type bigMessage struct {
	head, tail []byte
	n          int64 // body octets still to produce
	line       []byte
	pos        int
}

func (m *bigMessage) Read(b []byte) (int, error) {
	if len(m.head) > 0 {
		n := copy(b, m.head)
		m.head = m.head[n:]
		return n, nil
	}
	if m.n > 0 {
		total := 0
		for len(b) > 0 && m.n > 0 {
			n := copy(b, m.line[m.pos:])
			if int64(n) > m.n {
				n = int(m.n)
			}
			m.pos = (m.pos + n) % len(m.line)
			m.n -= int64(n)
			b = b[n:]
			total += n
		}
		return total, nil
	}
	if len(m.tail) > 0 {
		n := copy(b, m.tail)
		m.tail = m.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

func TestParseStreamsLargeMessage(t *testing.T) {
	const bodySize = 50 << 20
	line := []byte(strings.Repeat("QUJD", 19) + "\r\n") // 78 octets
	head := crlf("Subject: big\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhello\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n")
	tail := crlf("\n--b--\n")
	m := &bigMessage{head: []byte(head), tail: []byte(tail), n: bodySize - bodySize%int64(len(line)), line: line}
	total := int64(len(head)) + m.n + int64(len(tail))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	info, err := Parse(m)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if info.Root.End != total || len(info.Root.Children) != 2 {
		t.Fatalf("size %d (want %d), %d parts", info.Root.End, total, len(info.Root.Children))
	}
	att := &info.Root.Children[1]
	if att.End-att.BodyStart != total-int64(len(head))-int64(len(tail)) {
		t.Errorf("attachment size %d", att.End-att.BodyStart)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("parsing a %d MB message allocated %d bytes; it must stream", total>>20, alloc)
	}
}

func TestParseDate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // RFC 3339, "" for zero
	}{
		{"Fri, 21 Nov 1997 09:55:06 -0600", "1997-11-21T09:55:06-06:00"},
		{"Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", "1997-11-21T09:55:06-06:00"},
		{"Tue, 1 Jul 2003 10:52:37 +0200 (CEST)", "2003-07-01T10:52:37+02:00"},
		{"       <HR>", ""},
		{"", ""},
	} {
		got := parseDate(tc.in)
		if s := got.Format(time.RFC3339); (tc.want == "" && !got.IsZero()) || (tc.want != "" && s != tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseDeepMessages(t *testing.T) {
	// message/rfc822 inside message/rfc822 ... beyond the nesting limit.
	msg := strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 200) + "Subject: deep\r\n\r\nbody\r\n"
	info := mustParse(t, msg)
	depth := 0
	for p := &info.Root; len(p.Children) > 0; p = &p.Children[0] {
		depth++
	}
	if depth > maxDepth+1 {
		t.Errorf("depth %d", depth)
	}
}

func TestParseManyParams(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: text/plain")
	for i := 4999; i >= 0; i-- { // reverse order, ~50 KB: within maxFieldBytes
		b.WriteString("; a*" + strconv.Itoa(i) + "=x")
	}
	b.WriteString("\r\n\r\nbody\r\n")
	start := time.Now()
	info := mustParse(t, b.String())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("parsing 5000 parameter sections took %v", d)
	}
	if v := info.Root.Param("a"); len(v) != 5000 {
		t.Errorf("joined value of %d octets", len(v))
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(b []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.ErrClosedPipe
	}
	n := min(len(b), r.n)
	for i := range b[:n] {
		b[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func TestParseReadError(t *testing.T) {
	if _, err := Parse(&failingReader{n: 100}); err != io.ErrClosedPipe {
		t.Errorf("read error not returned: %v", err)
	}
	// A stored body shorter than its metadata says (damage): ExtractText
	// returns what there is.
	msg := "Subject: s\r\n\r\nhello world\r\n"
	info := mustParse(t, msg)
	if _, body, err := ExtractText(strings.NewReader(msg[:20]), info, 0); err != nil || body != "hello " {
		t.Errorf("short body: %v %q", err, body)
	}
}
