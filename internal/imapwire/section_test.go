package imapwire

import (
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/mailparse"
)

const sectionMsg = "Subject: top\r\n" +
	"Content-Type: multipart/mixed; boundary=b\r\n" +
	"\r\n" +
	"--b\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"one\r\n" +
	"--b\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Subject: inner\r\n" +
	"Content-Type: multipart/alternative; boundary=c\r\n" +
	"\r\n" +
	"--c\r\n" +
	"\r\n" +
	"inner one\r\n" +
	"--c\r\n" +
	"Content-Type: text/html\r\n" +
	"\r\n" +
	"<b>two</b>\r\n" +
	"--c--\r\n" +
	"--b\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Subject: flat\r\n" +
	"\r\n" +
	"flat body\r\n" +
	"--b--\r\n"

func TestSectionRange(t *testing.T) {
	info, err := mailparse.Parse(strings.NewReader(sectionMsg))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path []int
		spec string
		want string
		ok   bool
	}{
		{nil, "", sectionMsg, true},
		{nil, "HEADER", "Subject: top\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n", true},
		{nil, "TEXT", sectionMsg[strings.Index(sectionMsg, "--b\r\n"):], true},
		{nil, "MIME", "", false},
		{[]int{1}, "", "one", true},
		{[]int{1}, "MIME", "Content-Type: text/plain\r\n\r\n", true},
		{[]int{1}, "HEADER", "", false},
		{[]int{1, 1}, "", "", false},
		{[]int{2}, "HEADER", "Subject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n", true},
		{[]int{2}, "header.fields", "Subject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n", true},
		{[]int{2}, "MIME", "Content-Type: message/rfc822\r\n\r\n", true},
		{[]int{2, 1}, "", "inner one", true},
		{[]int{2, 2}, "", "<b>two</b>", true},
		{[]int{2, 2}, "MIME", "Content-Type: text/html\r\n\r\n", true},
		{[]int{2, 3}, "", "", false},
		{[]int{3}, "TEXT", "flat body", true},
		{[]int{3, 1}, "", "flat body", true},
		{[]int{3, 1}, "MIME", "Subject: flat\r\n\r\n", true},
		{[]int{3, 2}, "", "", false},
		{[]int{4}, "", "", false},
		{[]int{0}, "", "", false},
		{[]int{1}, "BOGUS", "", false},
	}
	for _, tc := range tests {
		s, e, ok := SectionRange(info, tc.path, tc.spec)
		if ok != tc.ok {
			t.Errorf("%v %s: ok %v, want %v", tc.path, tc.spec, ok, tc.ok)
			continue
		}
		if ok && sectionMsg[s:e] != tc.want {
			t.Errorf("%v %s: %q, want %q", tc.path, tc.spec, sectionMsg[s:e], tc.want)
		}
	}

	// A message that is not multipart has exactly part 1: its body.
	flat := "Subject: x\r\n\r\nbody\r\n"
	info, _ = mailparse.Parse(strings.NewReader(flat))
	if s, e, ok := SectionRange(info, []int{1}, ""); !ok || flat[s:e] != "body\r\n" {
		t.Errorf("BODY[1] of a flat message: %v %q", ok, flat[s:e])
	}
	if s, e, ok := SectionRange(info, []int{1}, "MIME"); !ok || flat[s:e] != "Subject: x\r\n\r\n" {
		t.Errorf("BODY[1.MIME] of a flat message: %v %q", ok, flat[s:e])
	}
}

func TestFilterHeader(t *testing.T) {
	hdr := []byte("From: a@b\r\nSubject: one\r\n two\r\nTo: c@d\r\nsubject : again\r\n\r\n")
	tests := []struct {
		fields []string
		not    bool
		want   string
	}{
		{[]string{"SUBJECT"}, false, "Subject: one\r\n two\r\nsubject : again\r\n\r\n"},
		{[]string{"subject", "to"}, true, "From: a@b\r\n\r\n"},
		{[]string{"X-None"}, false, "\r\n"},
	}
	for _, tc := range tests {
		if got := string(FilterHeader(hdr, tc.fields, tc.not)); got != tc.want {
			t.Errorf("%v not=%v: %q, want %q", tc.fields, tc.not, got, tc.want)
		}
	}
	// No blank line in the header (a message without body): none added.
	if got := string(FilterHeader([]byte("From: a\r\n"), []string{"from"}, false)); got != "From: a\r\n" {
		t.Errorf("header without blank line: %q", got)
	}
}
