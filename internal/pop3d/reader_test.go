package pop3d

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name string
		line string
		want command
		err  error
	}{
		{"simple", "STAT", command{Name: "STAT"}, nil},
		{"lower case", "stat", command{Name: "STAT"}, nil},
		{"mixed case", "Retr 1", command{Name: "RETR", Args: []string{"1"}, Rest: "1"}, nil},
		{"two args", "TOP 1 10", command{Name: "TOP", Args: []string{"1", "10"}, Rest: "1 10"}, nil},
		{"extra spaces", "TOP  1\t 10  ", command{Name: "TOP", Args: []string{"1", "10"}, Rest: " 1\t 10  "}, nil},
		{"pass keeps spaces", "PASS my secret pass", command{Name: "PASS", Args: []string{"my", "secret", "pass"}, Rest: "my secret pass"}, nil},
		{"utf8 arg", "USER jörg@example.org", command{Name: "USER", Args: []string{"jörg@example.org"}, Rest: "jörg@example.org"}, nil},
		{"empty", "", command{}, errBadSyntax},
		{"short keyword", "TO 1", command{}, errBadSyntax},
		{"long keyword", "RETRX 1", command{}, errBadSyntax},
		{"digit in keyword", "utf8", command{Name: "UTF8"}, nil},
		{"punctuation in keyword", "RE.R", command{}, errBadSyntax},
		{"NUL", "USER a\x00b", command{}, errBadSyntax},
		{"bare CR", "USER a\rb", command{}, errBadSyntax},
		{"DEL", "USER \x7f", command{}, errBadSyntax},
		{"leading space", " STAT", command{}, errBadSyntax},
		{"http", "GET / HTTP/1.1", command{Name: "GET", Args: []string{"/", "HTTP/1.1"}, Rest: "/ HTTP/1.1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCommand([]byte(tt.line))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseCommandArgCap(t *testing.T) {
	cmd, err := parseCommand([]byte("LIST " + strings.Repeat("1 ", 1000)))
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd.Args) != maxArgs+1 {
		t.Fatalf("split %d args, want the cap %d", len(cmd.Args), maxArgs+1)
	}
}

func TestReadLine(t *testing.T) {
	type result struct {
		line string
		err  error
	}
	tests := []struct {
		name  string
		input string
		max   int
		want  []result
	}{
		{"crlf", "STAT\r\nNOOP\r\n", 100, []result{{"STAT", nil}, {"NOOP", nil}, {"", io.EOF}}},
		{"bare lf", "STAT\nNOOP\n", 100, []result{{"STAT", nil}, {"NOOP", nil}, {"", io.EOF}}},
		{"partial at eof", "STAT\r\nNO", 100, []result{{"STAT", nil}, {"", io.ErrUnexpectedEOF}}},
		{"exactly max", "ABCDEFGH\r\n", 10, []result{{"ABCDEFGH", nil}}},
		{"one over max", "ABCDEFGHI\r\nSTAT\r\n", 10, []result{{"", errLineTooLong}, {"STAT", nil}}},
		{"far over max", strings.Repeat("x", 20000) + "\r\nSTAT\r\n", 100, []result{{"", errLineTooLong}, {"STAT", nil}, {"", io.EOF}}},
		{"long but allowed", strings.Repeat("x", 9000) + "\r\n", 10000, []result{{strings.Repeat("x", 9000), nil}}},
		{"too long at eof", strings.Repeat("x", 200), 100, []result{{"", io.ErrUnexpectedEOF}}},
		{"empty line", "\r\n", 100, []result{{"", nil}, {"", io.EOF}}},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			name := tt.name
			var r io.Reader = strings.NewReader(tt.input)
			if oneByte {
				name += "/one byte reads"
				r = iotest.OneByteReader(r)
			}
			t.Run(name, func(t *testing.T) {
				lr := newLineReader(r, tt.max)
				for i, w := range tt.want {
					line, err := lr.readLine()
					if !errors.Is(err, w.err) || string(line) != w.line {
						t.Fatalf("read %d: got (%q, %v), want (%q, %v)", i, line, err, w.line, w.err)
					}
				}
			})
		}
	}
}

func TestHasLine(t *testing.T) {
	lr := newLineReader(strings.NewReader("STAT\r\nNO"), 100)
	if lr.hasLine() {
		t.Fatal("hasLine before any read")
	}
	if _, err := lr.readLine(); err != nil {
		t.Fatal(err)
	}
	if lr.hasLine() {
		t.Fatal("hasLine with only a partial line buffered")
	}
	lr = newLineReader(strings.NewReader("STAT\r\nNOOP\r\n"), 100)
	lr.readLine()
	if !lr.hasLine() {
		t.Fatal("hasLine false with a full line buffered")
	}
}
