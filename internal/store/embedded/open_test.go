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
