package embedded

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestOpenMessageContext: OpenMessage refuses a context that has ended,
// and a reader it returned keeps working after the caller's context ends
// (the lookup does not depend on it once it has run), for a body stored
// inline and one stored as a file.
func TestOpenMessageContext(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{InlineMaxBytes: 1024})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	acct, err := s.CreateAccount(ctx, "open@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, acct.ID, store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	bodies := [][]byte{
		[]byte("Subject: small\r\n\r\ninline\r\n"),
		append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("file body line\r\n"), 200)...),
	}
	var msgs []store.AppendMessage
	for _, b := range bodies {
		st, err := s.Stage(ctx, bytes.NewReader(b), 0)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, store.AppendMessage{Body: st})
	}
	if _, err := s.Append(ctx, acct.ID, inbox.ID, msgs); err != nil {
		t.Fatal(err)
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.OpenMessage(done, acct.ID, inbox.ID, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenMessage with a cancelled context: err = %v, want context.Canceled", err)
	}

	for i, want := range bodies {
		live, cancel := context.WithCancel(ctx)
		r, err := s.OpenMessage(live, acct.ID, inbox.ID, store.UID(i+1))
		cancel()
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want) || r.Size() != int64(len(want)) {
			t.Fatalf("message %d: read %d octets (err %v, size %d), want %d", i+1, len(got), err, r.Size(), len(want))
		}
	}
	if _, err := s.OpenMessage(ctx, acct.ID, inbox.ID, 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing UID: err = %v, want ErrNotFound", err)
	}
}

// TestMessageReaderLifetime: inline bodies are read from recycled buffers,
// so a reader must keep its own bytes while it is open, whatever else is
// opened and closed meanwhile, and read nothing after Close. io.Copy of a
// body file works too (it must not find a WriteTo of an inline reader).
func TestMessageReaderLifetime(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{InlineMaxBytes: 4096})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	acct, err := s.CreateAccount(ctx, "life@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, acct.ID, store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	var msgs []store.AppendMessage
	for i, n := range []int{100, 3000, 50, 9000} { // the last one is a file
		b := append([]byte("Subject: x\r\n\r\n"), bytes.Repeat([]byte{byte('a' + i)}, n)...)
		bodies = append(bodies, b)
		st, err := s.Stage(ctx, bytes.NewReader(b), 0)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, store.AppendMessage{Body: st})
	}
	if _, err := s.Append(ctx, acct.ID, inbox.ID, msgs); err != nil {
		t.Fatal(err)
	}
	open := func(uid int) store.MessageReader {
		t.Helper()
		r, err := s.OpenMessage(ctx, acct.ID, inbox.ID, store.UID(uid))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	check := func(r store.MessageReader, want []byte) {
		t.Helper()
		got := make([]byte, len(want))
		if n, err := r.ReadAt(got, 0); n != len(want) || err != nil && err != io.EOF || !bytes.Equal(got, want) {
			t.Fatalf("ReadAt: %d octets, err %v, equal %v", n, err, bytes.Equal(got, want))
		}
	}

	first := open(1)
	for range 20 {
		// Buffers are given back and taken again while first stays open.
		for uid := 2; uid <= 3; uid++ {
			r := open(uid)
			check(r, bodies[uid-1])
			r.Close()
		}
		check(first, bodies[0])
	}
	all, err := io.ReadAll(first)
	if err != nil || !bytes.Equal(all, bodies[0]) {
		t.Fatalf("ReadAll: %d octets, err %v", len(all), err)
	}
	first.Close()
	if n, err := first.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Fatalf("Read after Close: %d, %v; want an error", n, err)
	}
	if n, err := first.ReadAt(make([]byte, 10), 0); n != 0 || err == nil {
		t.Fatalf("ReadAt after Close: %d, %v; want an error", n, err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	file := open(4)
	var out bytes.Buffer
	if _, err := io.Copy(&out, file); err != nil || !bytes.Equal(out.Bytes(), bodies[3]) {
		t.Fatalf("io.Copy of a body file: %d octets, err %v", out.Len(), err)
	}
	file.Close()
	if _, err := file.Read(make([]byte, 10)); err == nil {
		t.Fatal("Read of a closed body file succeeded")
	}
}
