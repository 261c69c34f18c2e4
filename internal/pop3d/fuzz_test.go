package pop3d

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzReadCommand feeds arbitrary bytes to the command reader and parser,
// as a client would send them, and checks what comes out: no panic, lines
// within the limit and without LF (a CR before CRLF stays: it is content,
// which the parser refuses), and commands whose keyword and
// arguments have the shape the handlers rely on.
func FuzzReadCommand(f *testing.F) {
	for _, seed := range []string{
		"CAPA\r\n",
		"USER demo@localhost\r\nPASS secret with spaces\r\n",
		"AUTH PLAIN AGRlbW9AbG9jYWxob3N0AHNlY3JldA==\r\n",
		"AUTH PLAIN\r\nAGRlbW9AbG9jYWxob3N0AHNlY3JldA==\r\n",
		"AUTH PLAIN =\r\n*\r\n",
		"STLS\r\nCAPA\r\n",
		"STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 10\r\nDELE 1\r\nRSET\r\nNOOP\r\nQUIT\r\n",
		"list 1\nuidl 2\n",
		"TOP  1\t 5  \r\n",
		"RETR 4294967296\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"USER a\x00b\r\n",
		"\r\n\r\n\r\n",
		"RETR 1\rRETR 2\r\n",
		"USER j\xc3\xb6rg\r\n",
		"QUIT",
		string(bytes.Repeat([]byte("A"), 200)) + "\r\nSTAT\r\n",
	} {
		f.Add([]byte(seed))
	}
	const max = 64
	f.Fuzz(func(t *testing.T, data []byte) {
		lr := newLineReader(bytes.NewReader(data), max)
		for range len(data) + 1 {
			line, err := lr.readLine()
			if errors.Is(err, errLineTooLong) {
				continue
			}
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if len(line) > max {
				t.Fatalf("line of %d bytes exceeds the limit %d", len(line), max)
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q keeps its terminator", line)
			}
			cmd, err := parseCommand(line)
			if err != nil {
				continue
			}
			if n := len(cmd.Name); n < 3 || n > 4 {
				t.Fatalf("keyword %q has %d letters", cmd.Name, n)
			}
			for _, c := range []byte(cmd.Name) {
				if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
					t.Fatalf("keyword %q is not upper-case letters and digits", cmd.Name)
				}
			}
			if len(cmd.Args) > maxArgs+1 {
				t.Fatalf("%d args", len(cmd.Args))
			}
			for _, a := range cmd.Args {
				if a == "" || bytes.ContainsAny([]byte(a), " \t\r\n\x00") {
					t.Fatalf("bad argument %q", a)
				}
			}
		}
		t.Fatal("reader did not reach the end of its input")
	})
}

// FuzzDotStuffing checks that undoing the dot-stuffing of RETR output
// gives back the message (plus a final CRLF if it had none), that the
// terminator appears only at the end, and that the two code paths (RETR's
// and TOP's) and any chunking of the input give the same bytes.
func FuzzDotStuffing(f *testing.F) {
	for _, seed := range []string{
		"Subject: x\r\n\r\nbody\r\n",
		".\r\n..\r\n.x\r\n",
		"no newline",
		"a\r\n.\r\nb",
		"",
		"\r\n.\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := writeDotStuffed(w, bytes.NewReader(msg), -1); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		got := out.Bytes()
		if !bytes.HasSuffix(got, []byte(".\r\n")) {
			t.Fatalf("no terminator: %q", got)
		}
		body := got[:len(got)-3]
		if len(body) > 0 && !bytes.HasSuffix(body, []byte("\n")) {
			t.Fatalf("terminator not on its own line: %q", got)
		}
		// Undo the stuffing line by line, as a client does (RFC 1939 §3).
		var back []byte
		for len(body) > 0 {
			i := bytes.IndexByte(body, '\n')
			line := body[:i+1]
			body = body[i+1:]
			if bytes.Equal(line, []byte(".\r\n")) {
				t.Fatalf("early terminator in %q", got)
			}
			if line[0] == '.' {
				line = line[1:]
			}
			back = append(back, line...)
		}
		want := msg
		if len(msg) > 0 && msg[len(msg)-1] != '\n' {
			want = append(append([]byte{}, msg...), '\r', '\n')
		}
		if !bytes.Equal(back, want) {
			t.Fatalf("round trip: got %q, want %q", back, want)
		}
		// The RETR fast path must agree with the line-by-line TOP path
		// given more lines than the message has, and with itself when the
		// store hands out the bytes one at a time.
		for _, alt := range []struct {
			r     io.Reader
			lines int
		}{
			{bytes.NewReader(msg), 1 << 30},
			{iotest.OneByteReader(bytes.NewReader(msg)), -1},
			{iotest.HalfReader(bytes.NewReader(msg)), 1 << 30},
		} {
			var out2 bytes.Buffer
			w2 := bufio.NewWriter(&out2)
			if err := writeDotStuffed(w2, alt.r, alt.lines); err != nil {
				t.Fatal(err)
			}
			w2.Flush()
			if !bytes.Equal(out2.Bytes(), got) {
				t.Fatalf("paths differ (lines %d): %q vs %q", alt.lines, out2.Bytes(), got)
			}
		}
	})
}
