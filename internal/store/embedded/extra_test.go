package embedded

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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

// TestClosed checks that every kind of call after Close fails with
// ErrClosed instead of panicking or hanging.
func TestClosed(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{driver: testDriver})
	a, _ := s.CreateAccount(ctx, "closed@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	st, _ := s.Stage(ctx, strings.NewReader("Subject: x\r\n\r\n"), 0)
	sub, _ := s.Subscribe(ctx, a.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, ok := <-sub.C(); ok {
		t.Error("subscription still open after Close")
	}
	checks := map[string]error{}
	_, checks["Append"] = s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
	_, checks["Mailboxes"] = s.Mailboxes(ctx, a.ID)
	_, checks["Account"] = s.Account(ctx, a.Address)
	_, _, checks["SelectState"] = s.SelectState(ctx, a.ID, inbox.ID)
	_, checks["OpenMessage"] = s.OpenMessage(ctx, a.ID, inbox.ID, 1)
	_, checks["Stage"] = s.Stage(ctx, strings.NewReader("x"), 0)
	_, checks["Subscribe"] = s.Subscribe(ctx, a.ID)
	_, checks["LockMaildrop"] = s.LockMaildrop(ctx, a.ID, "x")
	checks["Messages"] = s.Messages(ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FetchOptions{}, func(*store.Message) error { return nil })
	for name, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

// TestCancelled checks that a cancelled context stops a write before it
// runs and that nothing is stored.
func TestCancelled(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{driver: testDriver})
	defer s.Close()
	ctx := context.Background()
	a, _ := s.CreateAccount(ctx, "cancel@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	st, _ := s.Stage(ctx, strings.NewReader("Subject: x\r\n\r\n"), 0)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Append(cctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context: %v", err)
	}
	if _, err := s.Stage(cctx, strings.NewReader("x"), 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Stage with a cancelled context: %v", err)
	}
	if m, _ := s.MailboxByID(ctx, a.ID, inbox.ID); m.Messages != 0 || m.UIDNext != 1 {
		t.Errorf("cancelled append left %+v", m)
	}
}

// TestPackedRows checks the packed page format with keywords that contain
// commas, negative zone offsets and more than one page.
func TestPackedRows(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{driver: testDriver})
	defer s.Close()
	a, _ := s.CreateAccount(ctx, "packed@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	date := time.Date(2021, 1, 2, 3, 4, 5, 0, time.FixedZone("", -(9*3600+30*60)))
	var msgs []store.AppendMessage
	for i := 0; i < messagesPage+10; i++ {
		st, _ := s.Stage(ctx, strings.NewReader("Subject: p\r\n\r\n"), 0)
		msgs = append(msgs, store.AppendMessage{Body: st, InternalDate: date, Flags: store.Flags{Sys: store.FlagAnswered, Keywords: []string{"a,b", "$x"}}})
	}
	if _, err := s.Append(ctx, a.ID, inbox.ID, msgs); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := s.Messages(ctx, a.ID, inbox.ID, store.UIDSet{{Start: 1, Stop: ^store.UID(0)}}, store.FetchOptions{}, func(m *store.Message) error {
		n++
		if m.UID != store.UID(n) || m.Flags.Sys != store.FlagAnswered || len(m.Flags.Keywords) != 2 ||
			m.Flags.Keywords[0] != "$x" || m.Flags.Keywords[1] != "a,b" || !m.InternalDate.Equal(date) || m.Size != 14 || m.ID == 0 {
			t.Fatalf("message %d: %+v", n, m)
		}
		if _, off := m.InternalDate.Zone(); off != -(9*3600 + 30*60) {
			t.Fatalf("zone offset %d", off)
		}
		return nil
	})
	if err != nil || n != messagesPage+10 {
		t.Fatalf("%d messages, %v", n, err)
	}
}
