package pop3d

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriteDotStuffed(t *testing.T) {
	const hdr = "Subject: x\r\nFrom: a@b\r\n\r\n"
	tests := []struct {
		name  string
		msg   string
		lines int
		want  string
	}{
		{"plain", hdr + "hello\r\n", -1, hdr + "hello\r\n.\r\n"},
		{"dot lines", hdr + ".\r\n..x\r\n.y\r\nz.\r\n", -1, hdr + "..\r\n...x\r\n..y\r\nz.\r\n.\r\n"},
		{"no final crlf", hdr + "hello", -1, hdr + "hello\r\n.\r\n"},
		{"dot without final crlf", hdr + ".", -1, hdr + "..\r\n.\r\n"},
		{"empty message", "", -1, ".\r\n"},
		{"dot first header line", ".X: y\r\n\r\nb\r\n", -1, "..X: y\r\n\r\nb\r\n.\r\n"},
		{"top 0", hdr + "l1\r\nl2\r\n", 0, hdr + ".\r\n"},
		{"top 1", hdr + "l1\r\nl2\r\n", 1, hdr + "l1\r\n.\r\n"},
		{"top 1 stuffed", hdr + ".l1\r\nl2\r\n", 1, hdr + "..l1\r\n.\r\n"},
		{"top more than body", hdr + "l1\r\nl2", 10, hdr + "l1\r\nl2\r\n.\r\n"},
		{"top no body", "Subject: x\r\n", 3, "Subject: x\r\n.\r\n"},
		{"top header only with blank", "Subject: x\r\n\r\n", 3, "Subject: x\r\n\r\n.\r\n"},
		{"top counts body empty lines", hdr + "\r\n\r\nl3\r\n", 2, hdr + "\r\n\r\n.\r\n"},
		{"lf only blank line ends header", "S: x\n\nl1\nl2\n", 1, "S: x\n\nl1\n.\r\n"},
		{"cr inside line", hdr + "a\rb\r\n", -1, hdr + "a\rb\r\n.\r\n"},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			name := tt.name
			var r io.Reader = strings.NewReader(tt.msg)
			if oneByte {
				name += "/one byte reads"
				r = iotest.OneByteReader(r)
			}
			t.Run(name, func(t *testing.T) {
				var out bytes.Buffer
				w := bufio.NewWriter(&out)
				if err := writeDotStuffed(w, r, tt.lines); err != nil {
					t.Fatal(err)
				}
				w.Flush()
				if out.String() != tt.want {
					t.Fatalf("got %q\nwant %q", out.String(), tt.want)
				}
			})
		}
	}
}

// TestWriteDotStuffedLongLines checks lines far longer than the copy buffer.
func TestWriteDotStuffedLongLines(t *testing.T) {
	long := strings.Repeat("a", 100_000)
	msg := "S: x\r\n\r\n." + long + "\r\n." + long + "\r\n"
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if err := writeDotStuffed(w, strings.NewReader(msg), 1); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	want := "S: x\r\n\r\n.." + long + "\r\n.\r\n"
	if out.String() != want {
		t.Fatalf("got %d bytes, want %d", out.Len(), len(want))
	}
}

// TestWriteDotStuffedReadError checks that a failing store read is returned.
func TestWriteDotStuffedReadError(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	r := io.MultiReader(strings.NewReader("S: x\r\n"), iotest.ErrReader(io.ErrClosedPipe))
	if err := writeDotStuffed(w, r, -1); err != io.ErrClosedPipe {
		t.Fatalf("err = %v, want ErrClosedPipe", err)
	}
}
