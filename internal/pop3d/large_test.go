package pop3d

import (
	"bufio"
	"bytes"
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// bigBody returns a message of about n octets: a header, then lines of
// 76 octets, every tenth starting with a dot.
func bigBody(n int) []byte {
	var b bytes.Buffer
	b.Grow(n + 100)
	b.WriteString("From: big@example.org\r\nSubject: big\r\n\r\n")
	line := strings.Repeat("x", 74) + "\r\n"
	for i := 0; b.Len() < n; i++ {
		if i%10 == 0 {
			b.WriteString("." + line[1:])
		} else {
			b.WriteString(line)
		}
	}
	return b.Bytes()
}

// TestRETRLargeMessageStreams: a 50 MB message is sent without the server
// allocating anywhere near its size (it is streamed from the store through
// a fixed buffer).
func TestRETRLargeMessageStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB message")
	}
	const size = 50 << 20
	e := newEnv(t, nil)
	ctx := context.Background()
	want := bigBody(size)
	staged, err := e.st.Stage(ctx, bytes.NewReader(want), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Append(ctx, e.acct.ID, e.inbox.ID, []store.AppendMessage{{Body: staged}}); err != nil {
		t.Fatal(err)
	}
	c := e.login()
	c.cmd("LIST 1").expect("+OK 1 " + strconv.Itoa(len(want)))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c.cmd("RETR 1").expect("+OK " + strconv.Itoa(len(want)) + " octets")
	// Read and check the stream without holding it: compare line by line.
	br := bufio.NewReaderSize(c.br, 64<<10)
	src := bufio.NewReader(bytes.NewReader(want))
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if string(line) == ".\r\n" {
			break
		}
		if line[0] == '.' {
			line = line[1:]
		}
		exp, err := src.ReadSlice('\n')
		if err != nil || !bytes.Equal(line, exp) {
			t.Fatalf("at byte %d: got %q, want %q", n, line, exp)
		}
		n += len(line)
	}
	runtime.ReadMemStats(&after)
	if n != len(want) {
		t.Fatalf("received %d bytes, want %d", n, len(want))
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("RETR of %d MB allocated %d KB in the whole process", size>>20, alloc>>10)
	if alloc > 8<<20 {
		t.Fatalf("RETR of a %d MB message allocated %d MB: not streamed", size>>20, alloc>>20)
	}
}
