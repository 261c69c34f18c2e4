package embedded

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateAccount(ctx, "Demo@Localhost", "hash")
	if err != nil {
		t.Fatal(err)
	}
	boxes, err := s.Mailboxes(ctx, a.ID)
	if err != nil || len(boxes) != 6 {
		t.Fatalf("mailboxes %v %v", boxes, err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Stage(ctx, strings.NewReader("Subject: hi\n\nhello\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
	if err != nil || len(res.UIDs) != 1 || res.UIDs[0] != 1 {
		t.Fatalf("append %v %v", res, err)
	}
	r, err := s.OpenMessage(ctx, a.ID, inbox.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "Subject: hi\r\n\r\nhello\r\n" {
		t.Fatalf("body %q", b)
	}
	m, uids, err := s.SelectState(ctx, a.ID, inbox.ID)
	if err != nil || len(uids) != 1 || m.Messages != 1 || m.Unseen != 1 || m.Size != int64(len(b)) {
		t.Fatalf("select %+v %v %v", m, uids, err)
	}
}
