package storetest

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

func testAccounts(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a, err := e.s.CreateAccount(e.ctx, "Alice@Example.ORG", "h1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Address != "alice@example.org" || a.PasswordHash != "h1" || a.ID == 0 {
		t.Errorf("created %+v", a)
	}
	_, err = e.s.CreateAccount(e.ctx, "alice@example.org", "h2")
	wantErr(t, "duplicate CreateAccount", err, store.ErrExists)

	got, err := e.s.Account(e.ctx, "ALICE@example.org")
	if err != nil || got.ID != a.ID {
		t.Errorf("Account by other case: %+v %v", got, err)
	}
	got, err = e.s.AccountByID(e.ctx, a.ID)
	if err != nil || got.Address != a.Address {
		t.Errorf("AccountByID: %+v %v", got, err)
	}
	_, err = e.s.Account(e.ctx, "nobody@example.org")
	wantErr(t, "Account(unknown)", err, store.ErrNotFound)
	_, err = e.s.AccountByID(e.ctx, a.ID+1000)
	wantErr(t, "AccountByID(unknown)", err, store.ErrNotFound)

	if err := e.s.SetPasswordHash(e.ctx, a.ID, "h3"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.SetQuota(e.ctx, a.ID, 12345); err != nil {
		t.Fatal(err)
	}
	if err := e.s.SetDownloadPolicy(e.ctx, a.ID, "delete"); err != nil {
		t.Fatal(err)
	}
	got, _ = e.s.AccountByID(e.ctx, a.ID)
	if got.PasswordHash != "h3" || got.QuotaBytes != 12345 || got.DownloadPolicy != "delete" || got.UsedBytes != 0 {
		t.Errorf("after updates: %+v", got)
	}
	wantErr(t, "SetPasswordHash(unknown)", e.s.SetPasswordHash(e.ctx, a.ID+1000, "x"), store.ErrNotFound)

	b2, err := e.s.CreateAccount(e.ctx, "bob@example.org", "hb")
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.s.Accounts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, x := range list {
		if x.ID == a.ID || x.ID == b2.ID {
			found++
		}
	}
	if found != 2 {
		t.Errorf("Accounts lists %d of the 2 accounts: %+v", found, list)
	}
}

func testDefaultMailboxes(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	boxes, err := e.s.Mailboxes(e.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.SpecialUse{store.InboxName: store.SpecialNone}
	for _, d := range store.DefaultMailboxes {
		want[d.Name] = d.Use
	}
	if len(boxes) != len(want) {
		t.Fatalf("new account has %d mailboxes, want %d: %+v", len(boxes), len(want), boxes)
	}
	for i, m := range boxes {
		use, ok := want[m.Name]
		if !ok || use != m.SpecialUse {
			t.Errorf("mailbox %q use %q; want %q (present %v)", m.Name, m.SpecialUse, use, ok)
		}
		if m.Account != a.ID || m.NoSelect || m.UIDValidity == 0 || m.UIDNext != 1 || m.Messages != 0 {
			t.Errorf("mailbox %+v", m)
		}
		if i > 0 && boxes[i-1].Name >= m.Name {
			t.Errorf("Mailboxes not sorted by name: %q before %q", boxes[i-1].Name, m.Name)
		}
	}
	m := e.mailbox(a.ID, "iNbOx")
	if m.Name != store.InboxName {
		t.Errorf("inbox looked up as iNbOx is named %q", m.Name)
	}
	if got := e.mailboxByID(a.ID, m.ID); got.Name != store.InboxName {
		t.Errorf("MailboxByID: %+v", got)
	}
}

func testStageCRLF(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	cases := []struct{ in, want string }{
		{"Subject: x\n\nline1\nline2\n", "Subject: x\r\n\r\nline1\r\nline2\r\n"},
		{"Subject: x\r\n\r\nalready\r\ncrlf\r\n", "Subject: x\r\n\r\nalready\r\ncrlf\r\n"},
		{"Subject: x\r\n\nmixed\n\r\nend", "Subject: x\r\n\r\nmixed\r\n\r\nend"},
		{"", ""},
	}
	for _, c := range cases {
		st := e.stage(c.in)
		if st.Size() != int64(len(c.want)) {
			t.Errorf("Stage(%q).Size() = %d, want %d", c.in, st.Size(), len(c.want))
		}
		if st.Info() == nil {
			t.Errorf("Stage(%q).Info() is nil", c.in)
		}
		res, err := e.s.Append(e.ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.body(a.ID, inbox.ID, res.UIDs[0]); got != c.want {
			t.Errorf("stored %q, want %q", got, c.want)
		}
		if m := e.message(a.ID, inbox.ID, res.UIDs[0]); m.Size != int64(len(c.want)) {
			t.Errorf("Message.Size %d, want %d", m.Size, len(c.want))
		}
		if err := st.Discard(); err != nil {
			t.Errorf("Discard after Append: %v", err)
		}
		if got := e.body(a.ID, inbox.ID, res.UIDs[0]); got != c.want {
			t.Errorf("after Discard the stored body is %q", got)
		}
	}
	// A CR at the end of one read and the LF at the start of the next.
	st, err := e.s.Stage(e.ctx, io.MultiReader(strings.NewReader("a\r"), strings.NewReader("\nb\n")), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Discard()
	res, err := e.s.Append(e.ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.body(a.ID, inbox.ID, res.UIDs[0]); got != "a\r\nb\r\n" {
		t.Errorf("split CRLF stored as %q", got)
	}
}

func testStageTooLarge(t *testing.T, b Backend) {
	e := newEnv(t, b)
	body := strings.Repeat("x", 1000)
	r := strings.NewReader(body)
	_, err := e.s.Stage(e.ctx, r, 999)
	wantErr(t, "Stage over the limit", err, store.ErrTooLarge)
	// Exactly at the limit after CRLF conversion is fine.
	st, err := e.s.Stage(e.ctx, strings.NewReader("ab\n"), 4)
	if err != nil {
		t.Fatalf("Stage at the limit: %v", err)
	}
	st.Discard()
	// Bare LF conversion counts toward the limit.
	_, err = e.s.Stage(e.ctx, strings.NewReader("ab\n"), 3)
	wantErr(t, "Stage over the limit after CRLF", err, store.ErrTooLarge)
	// Discarded bodies cannot be appended.
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	st = e.stage(msg("discarded"))
	st.Discard()
	if _, err := e.s.Append(e.ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}}); err == nil {
		t.Error("Append of a discarded body succeeded")
	}
}

// bigBody returns a message of about n bytes with a recognisable pattern.
func bigBody(tag string, n int) string {
	var sb strings.Builder
	sb.WriteString("Subject: " + tag + "\r\n\r\n")
	for i := 0; sb.Len() < n; i++ {
		sb.WriteString(strings.Repeat(string(rune('a'+i%26)), 70))
		sb.WriteString("\r\n")
	}
	return sb.String()
}

func testLargeBody(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	for _, n := range []int{100 << 10, 3 << 20} {
		body := bigBody("big", n)
		uid := e.append(a.ID, inbox.ID, body, store.Flags{})
		if got := e.body(a.ID, inbox.ID, uid); got != body {
			t.Fatalf("%d-byte body differs after storing (got %d bytes)", n, len(got))
		}
		r, err := e.s.OpenMessage(e.ctx, a.ID, inbox.ID, uid)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 100)
		off := int64(len(body) - 150)
		if _, err := r.ReadAt(p, off); err != nil {
			t.Fatalf("ReadAt: %v", err)
		}
		if !bytes.Equal(p, []byte(body[off:off+100])) {
			t.Errorf("ReadAt(%d) = %q", off, p)
		}
		r.Close()
	}
}
