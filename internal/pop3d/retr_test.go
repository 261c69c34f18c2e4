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

// chunkReader hands out its data in reads of the given sizes (then the
// rest in one), like a store whose reads stop at arbitrary points.
type chunkReader struct {
	data  []byte
	sizes []int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		n, r.sizes = min(r.sizes[0], n), r.sizes[1:]
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// stuffLines is the plain definition of RFC 1939 §3 dot-stuffing, line by
// line, for comparison with the chunked code.
func stuffLines(msg []byte) []byte {
	var out []byte
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		line := msg
		if i >= 0 {
			line = msg[:i+1]
		}
		msg = msg[len(line):]
		if line[0] == '.' {
			out = append(out, '.')
		}
		out = append(out, line...)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, "\r\n"...)
	}
	return append(out, ".\r\n"...)
}

// TestWriteAllDotStuffedBoundaries puts lines that start with a dot, and
// CRLFs split between two reads, at the edges of the copy buffer and of
// the store's reads, for messages shorter than, exactly as long as and
// longer than the buffer.
func TestWriteAllDotStuffedBoundaries(t *testing.T) {
	bufSize := len(*chunkPool.Get().(*[]byte))
	// A line starts at each of these offsets (relative to a buffer
	// boundary) with a dot.
	var cases []int
	for _, d := range []int{-3, -2, -1, 0, 1, 2} {
		cases = append(cases, bufSize+d, 2*bufSize+d)
	}
	for _, size := range []int{bufSize - 1, bufSize, bufSize + 1, 2 * bufSize, 2*bufSize + 5} {
		for _, at := range cases {
			if at >= size {
				continue
			}
			msg := bytes.Repeat([]byte("x"), size)
			for i := 78; i < size; i += 80 {
				msg[i-1], msg[i] = '\r', '\n'
			}
			// A line break just before at, a dot at at.
			if at >= 2 {
				msg[at-2], msg[at-1] = '\r', '\n'
			}
			msg[at] = '.'
			if at+1 < size {
				msg[at+1] = '.' // a second dot: not at a line start
			}
			want := stuffLines(msg)
			for _, sizes := range [][]int{
				nil,                    // as the buffer allows
				{at - 1},               // split between CR and LF
				{at},                   // split between LF and dot
				{at + 1},               // split after the dot
				{1, at - 2, 1, 1, 1},   // small reads around it
				{bufSize - 1, 1, 2, 3}, // not aligned with the buffer
			} {
				if len(sizes) > 0 && sizes[0] <= 0 {
					continue
				}
				var out bytes.Buffer
				w := bufio.NewWriterSize(&out, 100)
				r := &chunkReader{data: msg, sizes: sizes}
				if err := writeDotStuffed(w, r, -1); err != nil {
					t.Fatal(err)
				}
				w.Flush()
				if !bytes.Equal(out.Bytes(), want) {
					t.Fatalf("size %d, dot at %d, reads %v: output differs (%d octets, want %d)", size, at, sizes, out.Len(), len(want))
				}
			}
		}
	}
}

// TestWriteAllDotStuffedLFOnly: a stored message with bare LF line ends
// (which the store should not hold, but could) is still stuffed after each
// LF, and dots inside lines are left alone.
func TestWriteAllDotStuffedLFOnly(t *testing.T) {
	msg := []byte(".a\n.b\nc.d.\n..\n.")
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if err := writeDotStuffed(w, iotest.HalfReader(bytes.NewReader(msg)), -1); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if want := "..a\n..b\nc.d.\n...\n..\r\n.\r\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
