package load

import (
	"bufio"
	"bytes"
	"math"
	"net"
	"os"
	"testing"
	"time"
)

func TestMedianAndQuantile(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
	var l Latencies
	for i := 1; i <= 100; i++ {
		l.Add(time.Duration(i) * time.Millisecond)
	}
	if got := l.Quantile(0.99); got != 99 {
		t.Errorf("p99 = %v ms, want 99", got)
	}
	if got := l.Quantile(0.5); got != 50 {
		t.Errorf("p50 = %v ms, want 50", got)
	}
}

// TestPOP3MultiLine feeds the POP3 reader a dot-stuffed body over a real
// socket and checks it undoes the stuffing and stops at the terminator.
func TestPOP3MultiLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	long := bytes.Repeat([]byte("x"), 100000) // longer than the reader's buffer
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		w := bufio.NewWriter(c)
		w.WriteString("Subject: a\r\n\r\n..leading dot\r\n.\r\n")
		w.WriteString("+OK next\r\n")
		w.Write(long)
		w.WriteString("\r\n.\r\n")
		w.Flush()
		time.Sleep(100 * time.Millisecond)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &pop3Client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriter(conn)}
	var b bytes.Buffer
	if err := c.multi(&b); err != nil {
		t.Fatal(err)
	}
	if want := "Subject: a\r\n\r\n.leading dot\r\n"; b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
	if s, err := c.status(); err != nil || s != "next" {
		t.Fatalf("status after body: %q, %v", s, err)
	}
	b.Reset()
	if err := c.multi(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), append(long, "\r\n"...)) {
		t.Fatalf("long line: got %d bytes", b.Len())
	}
}

func TestTreeMemOfSelf(t *testing.T) {
	m, err := TreeMem([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Procs < 1 || m.RSS <= 0 || m.PSS <= 0 || m.PSS > m.RSS {
		t.Fatalf("implausible memory of this test process: %+v", m)
	}
}
