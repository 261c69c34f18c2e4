package embedded

import (
	"context"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestSameBodyTwice appends one staged body twice in one call and again in
// a later call, inline and as a file: one body row, three messages.
func TestSameBodyTwice(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{driver: testDriver})
	defer s.Close()
	a, _ := s.CreateAccount(ctx, "twice@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	for _, size := range []int{100, 200 << 10} {
		body := "Subject: twice\r\n\r\n" + strings.Repeat("z", size)
		st, err := s.Stage(ctx, strings.NewReader(body), 0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}, {Body: st}})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		res2, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
		if err != nil {
			t.Fatalf("size %d, second call: %v", size, err)
		}
		st.Discard()
		for _, u := range append(res.UIDs, res2.UIDs...) {
			r, err := s.OpenMessage(ctx, a.ID, inbox.ID, u)
			if err != nil {
				t.Fatal(err)
			}
			if r.Size() != int64(len(body)) {
				t.Errorf("UID %d size %d", u, r.Size())
			}
			r.Close()
		}
	}
	var blobs int
	s.rdb.QueryRow(`SELECT count(*) FROM blobs`).Scan(&blobs)
	if blobs != 2 {
		t.Errorf("%d body rows, want 2 (one per staged body)", blobs)
	}
	checkFiles(t, s)
}
