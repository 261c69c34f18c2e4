package imapwire

import (
	"strings"
	"testing"
)

func TestStrings(t *testing.T) {
	long := strings.Repeat("a", maxQuoted+1)
	tests := []struct {
		name string
		fn   func([]byte, string, bool) []byte
		in   string
		utf8 bool
		want string
	}{
		{"nstring empty is NIL", AppendNString, "", false, "NIL"},
		{"nstring plain", AppendNString, "hello world", false, `"hello world"`},
		{"nstring escapes", AppendNString, `a"b\c`, false, `"a\"b\\c"`},
		{"nstring CRLF literal", AppendNString, "a\r\nb", false, "{4}\r\na\r\nb"},
		{"nstring 8bit no utf8", AppendNString, "Jöhn", false, "{5}\r\nJöhn"},
		{"nstring 8bit utf8", AppendNString, "Jöhn", true, `"Jöhn"`},
		{"nstring invalid utf8", AppendNString, "J\xffn", true, "{3}\r\nJ\xffn"},
		{"nstring NUL dropped", AppendNString, "a\x00b", false, `"ab"`},
		{"nstring long", AppendNString, long, false, "{1025}\r\n" + long},
		{"astring atom", AppendAString, "INBOX", false, "INBOX"},
		{"astring bracket", AppendAString, "a]b", false, "a]b"},
		{"astring space", AppendAString, "a b", false, `"a b"`},
		{"astring empty", AppendAString, "", false, `""`},
		{"astring NIL word", AppendAString, "nil", false, `"nil"`},
		{"astring wildcard", AppendAString, "a*", false, `"a*"`},
		{"atom bracket quoted", AppendAtom, "a]", false, `"a]"`},
		{"string empty", AppendString, "", false, `""`},
	}
	for _, tc := range tests {
		got := string(tc.fn([]byte("x "), tc.in, tc.utf8))
		if got != "x "+tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, "x "+tc.want)
		}
	}
	if got := string(AppendLiteralHeader(nil, 12, true)); got != "~{12}\r\n" {
		t.Errorf("literal8 header %q", got)
	}
	if got := string(AppendNumber(nil, 1234567890123)); got != "1234567890123" {
		t.Errorf("number %q", got)
	}
}
