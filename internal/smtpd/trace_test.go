package smtpd

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
)

func TestTraceHeaders(t *testing.T) {
	now := time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC)
	ti := traceInfo{
		hostname: "mx.skrytka.test", helo: "client (evil)\x01", proto: "ESMTP", id: "abc",
		remote: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 25},
		from:   mailAddr{Local: "a b", Domain: "example.org"},
		rcpts:  []mailAddr{{Local: "alice", Domain: "skrytka.test"}},
		now:    now,
	}
	got := traceHeaders(ti)
	want := "Return-Path: <\"a b\"@example.org>\r\n" +
		"Delivered-To: alice@skrytka.test\r\n" +
		"Received: from client__evil__ ([IPv6:2001:db8::1])\r\n" +
		"\tby mx.skrytka.test (Skrytka) with ESMTP id abc\r\n" +
		"\tfor <alice@skrytka.test>;\r\n" +
		"\tFri, 27 Nov 2026 21:00:00 +0000\r\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	ti.rcpts = append(ti.rcpts, mailAddr{Local: "bob", Domain: "skrytka.test"})
	ti.from = mailAddr{}
	got = traceHeaders(ti)
	if strings.Contains(got, "Delivered-To") || strings.Contains(got, "for <") || !strings.HasPrefix(got, "Return-Path: <>\r\n") {
		t.Errorf("two recipients:\n%s", got)
	}
}

// FuzzTraceHeaders: whatever the client sent as HELO, MAIL FROM and RCPT
// TO (once accepted by parseAddress), the fields we prepend are well-formed:
// CRLF line ends only, continuation lines start with a tab, and a header
// parser reads back exactly our fields with the envelope sender intact.
func FuzzTraceHeaders(f *testing.F) {
	f.Add("client.example.org", "a@example.org", "alice@skrytka.test", true)
	f.Add("x\r\nInjected: 1", "a b@x", `q"q@y`, false)
	f.Add("", "", "a@[1.2.3.4]", true)
	f.Fuzz(func(t *testing.T, helo, from, rcpt string, one bool) {
		ti := traceInfo{hostname: "mx.skrytka.test", helo: helo, proto: "ESMTP", id: "1",
			remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, now: time.Unix(0, 0).UTC()}
		if from != "" {
			a, err := parseAddress(from)
			if err != nil {
				return
			}
			ti.from = a
		}
		r, err := parseAddress(rcpt)
		if err != nil {
			return
		}
		ti.rcpts = []mailAddr{r}
		if !one {
			ti.rcpts = append(ti.rcpts, r)
		}
		out := traceHeaders(ti)
		for _, line := range strings.SplitAfter(out, "\r\n") {
			if line == "" {
				continue
			}
			body := strings.TrimSuffix(line, "\r\n")
			if strings.ContainsAny(body, "\r\n") || !strings.HasSuffix(line, "\r\n") {
				t.Fatalf("bad line ending in %q", line)
			}
		}
		h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(out + "\r\n")))
		if err != nil {
			t.Fatalf("unparsable: %v\n%q", err, out)
		}
		wantFields := 2
		if one {
			wantFields = 3
		}
		if h.Len() != wantFields {
			t.Fatalf("%d fields, want %d:\n%q", h.Len(), wantFields, out)
		}
		if got, want := h.Get("Return-Path"), "<"+ti.from.String()+">"; ti.from.Domain != "" && got != want {
			t.Fatalf("Return-Path %q, want %q", got, want)
		}
	})
}
