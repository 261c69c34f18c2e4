package postgres

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

func TestSmoke(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	a, err := s.CreateAccount(ctx, "Demo@Localhost", "hash")
	if err != nil {
		t.Fatal(err)
	}
	if a.Address != "demo@localhost" {
		t.Fatalf("address %q", a.Address)
	}
	if _, err := s.CreateAccount(ctx, "demo@localhost", "x"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("dup account: %v", err)
	}
	boxes, err := s.Mailboxes(ctx, a.ID)
	if err != nil || len(boxes) != 6 {
		t.Fatalf("mailboxes %v %v", boxes, err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Subscribe(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	msg := testMessage("hello", "Hello World body")
	st := stage(t, s, msg)
	res, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st, Flags: store.Flags{Keywords: []string{"$Forwarded", "foo"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.UIDs) != 1 || res.UIDs[0] != 1 {
		t.Fatalf("res %+v", res)
	}
	select {
	case c := <-sub.C():
		if c.Kind != store.ChangeAppend || c.Mailbox != inbox.ID || len(c.UIDs) != 1 {
			t.Fatalf("change %+v", c)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no change")
	}
	r, err := s.OpenMessage(ctx, a.ID, inbox.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if int64(len(b)) != st.Size() || r.Size() != st.Size() {
		t.Fatalf("size %d vs %d", len(b), st.Size())
	}
	var got []store.Message
	if err := s.Messages(ctx, a.ID, inbox.ID, store.UIDSet{{Start: 1, Stop: 10}}, store.FetchOptions{Parsed: true}, func(m *store.Message) error {
		got = append(got, *m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Parsed == nil || len(got[0].Flags.Keywords) != 2 {
		t.Fatalf("messages %+v", got)
	}
	uids, err := s.SearchText(ctx, a.ID, inbox.ID, nil, store.TextBody, "WORLD")
	if err != nil || len(uids) != 1 {
		t.Fatalf("search %v %v", uids, err)
	}
	fr, err := s.SetFlags(ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0)
	if err != nil || len(fr.Updated) != 1 {
		t.Fatalf("setflags %+v %v", fr, err)
	}
	m, uidl, err := s.SelectState(ctx, a.ID, inbox.ID)
	if err != nil || m.Messages != 1 || m.Unseen != 0 || len(uidl) != 1 {
		t.Fatalf("select %+v %v %v", m, uidl, err)
	}
	ex, err := s.Expunge(ctx, a.ID, inbox.ID, store.UIDSet{{Start: 1, Stop: 5}})
	if err != nil || len(ex) != 1 {
		t.Fatalf("expunge %v %v", ex, err)
	}
	d, err := s.Changes(ctx, a.ID, inbox.ID, 0)
	if err != nil || len(d.Vanished) != 1 || len(d.Messages) != 0 {
		t.Fatalf("changes %+v %v", d, err)
	}
	a2, _ := s.AccountByID(ctx, a.ID)
	if a2.UsedBytes != 0 {
		t.Fatalf("used %d", a2.UsedBytes)
	}
	l, err := s.LockMaildrop(ctx, a.ID, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LockMaildrop(ctx, a.ID, "t2"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	l.Release()
	l2, err := s.LockMaildrop(ctx, a.ID, "t2")
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
}

// TestUnstorableInput: client-supplied names PostgreSQL cannot hold in
// text (NUL, invalid UTF-8) are unknown or invalid, never a temporary
// failure.
func TestUnstorableInput(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	for _, addr := range []string{"a\x00b@example.com", "bad\xff@example.com"} {
		if _, err := s.Account(ctx, addr); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Account(%q): %v", addr, err)
		}
		if _, err := s.CreateAccount(ctx, addr, "h"); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("CreateAccount(%q): %v", addr, err)
		}
	}
	a, _ := s.CreateAccount(ctx, "ok@example.com", "h")
	if _, err := s.Mailbox(ctx, a.ID, "x\x00y"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Mailbox with NUL: %v", err)
	}
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	if _, err := s.SearchText(ctx, a.ID, inbox.ID, nil, store.TextAll, "x\x00\xff"); err != nil {
		t.Errorf("SearchText with NUL: %v", err)
	}
	l, err := s.LockMaildrop(ctx, a.ID, "holder\x00\xff")
	if err != nil {
		t.Fatalf("LockMaildrop with odd holder: %v", err)
	}
	l.Release()
}
