package smtpd

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in         string
		local, dom string
		wantErr    bool
		str        string // String(), when different from in
	}{
		{in: "alice@skrytka.test", local: "alice", dom: "skrytka.test"},
		{in: "Alice@SKRYTKA.Test.", local: "Alice", dom: "skrytka.test", str: "Alice@skrytka.test"},
		{in: "a.b+tag@x.test", local: "a.b+tag", dom: "x.test"},
		{in: "a b@x.test", local: "a b", dom: "x.test", str: `"a b"@x.test`},
		{in: `we"ird@x.test`, local: `we"ird`, dom: "x.test", str: `"we\"ird"@x.test`},
		{in: "a@b@x.test", local: "a@b", dom: "x.test", str: `"a@b"@x.test`},
		{in: ".dot@x.test", local: ".dot", dom: "x.test", str: `".dot"@x.test`},
		{in: "jörg@bücher.test", local: "jörg", dom: "bücher.test"},
		{in: "x@[127.0.0.1]", local: "x", dom: "[127.0.0.1]"},
		{in: "x@[IPv6:::1]", local: "x", dom: "[ipv6:::1]", str: "x@[ipv6:::1]"},
		{in: "", wantErr: true},
		{in: "@x.test", wantErr: true},
		{in: "x@", wantErr: true},
		{in: "noat", wantErr: true},
		{in: "a\x00b@x.test", wantErr: true},
		{in: "a\rb@x.test", wantErr: true},
		{in: "a@x\x7f.test", wantErr: true},
		{in: "a@-x.test", wantErr: true},
		{in: "a@x..test", wantErr: true},
		{in: "a@x test", wantErr: true},
		{in: "a@[1.2.3.4", wantErr: true},
		{in: "a@[]", wantErr: true},
		{in: "a@x.test\xff", wantErr: true},
		{in: strings.Repeat("a", 65) + "@x.test", wantErr: true},
		{in: "a@" + strings.Repeat("b", 64) + ".test", wantErr: true},
		{in: "a@" + strings.Repeat("b.", 130) + "test", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseAddress(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("parseAddress(%q) = %+v, want error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseAddress(%q): %v", tc.in, err)
			continue
		}
		if got.Local != tc.local || got.Domain != tc.dom {
			t.Errorf("parseAddress(%q) = %q @ %q, want %q @ %q", tc.in, got.Local, got.Domain, tc.local, tc.dom)
		}
		want := tc.str
		if want == "" {
			want = tc.in
		}
		if got.String() != want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got.String(), want)
		}
	}
}

func TestStripTag(t *testing.T) {
	s := &Server{delims: "+-"}
	for in, want := range map[string]string{
		"alice+tag@x": "alice@x",
		"alice-a+b@x": "alice@x",
		"+alice@x":    "",
		"alice@x":     "",
		"a+b@c+d@x":   "a@x", // "a+b@c+d" is a quoted local part
		"alice+@x":    "alice@x",
	} {
		got, ok := s.stripTag(in)
		if (want == "") == ok || got != want {
			t.Errorf("stripTag(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := (&Server{}).stripTag("a+b@x"); ok {
		t.Errorf("stripTag without delimiters stripped")
	}
}

// FuzzParseAddress: no panic; an accepted address has no control
// characters, is valid UTF-8, round-trips through String() and parses
// again to the same value.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"alice@skrytka.test", "a b@x.test", `q"@x`, "x@[1.2.3.4]", "jörg@bücher.test", "a@b@c", "\x00@x", "a@x..y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		a, err := parseAddress(in)
		if err != nil {
			return
		}
		s := a.String()
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n\x00") {
			t.Fatalf("unsafe rendering %q of %q", s, in)
		}
		if a.Domain != strings.ToLower(a.Domain) {
			t.Fatalf("domain not lower-case: %q", a.Domain)
		}
		again, err := parseAddress(a.Local + "@" + a.Domain)
		if err != nil || again != a {
			t.Fatalf("reparse of %q: %+v, %v", in, again, err)
		}
	})
}
