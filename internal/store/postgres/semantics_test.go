package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

func countRows(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMailboxHierarchy(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	a, _ := s.CreateAccount(ctx, "h@example.com", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	st := stage(t, s, testMessage("m", "b"))
	if _, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}, {Body: st}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "INBOX/kid", store.SpecialNone); err != nil {
		t.Fatal(err)
	}
	// RFC 3501 §6.3.5: renaming INBOX moves its messages, INBOX stays, empty.
	if err := s.RenameMailbox(ctx, a.ID, "inbox", "Old"); err != nil {
		t.Fatal(err)
	}
	in2, uids, err := s.SelectState(ctx, a.ID, inbox.ID)
	if err != nil || len(uids) != 0 || in2.UIDNext != 3 || in2.UIDValidity != inbox.UIDValidity {
		t.Fatalf("INBOX after rename: %+v %v %v", in2, uids, err)
	}
	old, err := s.Mailbox(ctx, a.ID, "Old")
	if err != nil || old.Messages != 2 {
		t.Fatalf("Old: %+v %v", old, err)
	}
	if _, err := s.Mailbox(ctx, a.ID, "INBOX/kid"); err != nil {
		t.Fatalf("INBOX child moved: %v", err)
	}
	// Parents are created; rename takes children along.
	if _, err := s.CreateMailbox(ctx, a.ID, "a/b/c", store.SpecialNone); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameMailbox(ctx, a.ID, "a", "a/b/x"); !errors.Is(err, store.ErrCannotRename) {
		t.Fatalf("rename into own child: %v", err)
	}
	if err := s.RenameMailbox(ctx, a.ID, "a", "zé/q"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"zé", "zé/q", "zé/q/b", "zé/q/b/c"} {
		if _, err := s.Mailbox(ctx, a.ID, n); err != nil {
			t.Fatalf("%s after rename: %v", n, err)
		}
	}
	if err := s.RenameMailbox(ctx, a.ID, "Old", "Sent"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("rename onto existing: %v", err)
	}
	// Delete with children leaves a \Noselect placeholder.
	if err := s.DeleteMailbox(ctx, a.ID, "zé/q/b"); err != nil {
		t.Fatal(err)
	}
	ph, _ := s.Mailbox(ctx, a.ID, "zé/q/b")
	if !ph.NoSelect {
		t.Fatalf("placeholder %+v", ph)
	}
	if _, _, err := s.SelectState(ctx, a.ID, ph.ID); !errors.Is(err, store.ErrNoSelect) {
		t.Fatalf("select placeholder: %v", err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "zé/q/b"); !errors.Is(err, store.ErrHasChildren) {
		t.Fatalf("delete placeholder with children: %v", err)
	}
	if m, err := s.CreateMailbox(ctx, a.ID, "zé/q/b", store.SpecialNone); err != nil || m.NoSelect {
		t.Fatalf("create over placeholder: %+v %v", m, err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "INBOX"); !errors.Is(err, store.ErrInboxSpecial) {
		t.Fatalf("delete INBOX: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "Sent2", store.SpecialSent); !errors.Is(err, store.ErrSpecialUse) {
		t.Fatalf("second \\Sent: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "bad//name", store.SpecialNone); !errors.Is(err, store.ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	if err := s.SetSubscribed(ctx, a.ID, "nonexistent", true); err != nil {
		t.Fatal(err)
	}
	subs, _ := s.Subscriptions(ctx, a.ID)
	if fmt.Sprint(subs) != "[Archive Drafts INBOX Junk Sent Trash nonexistent]" {
		t.Fatalf("subscriptions %v", subs)
	}
}

func TestQuotaDeliverCopyMove(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	a, _ := s.CreateAccount(ctx, "q1@example.com", "x")
	b, _ := s.CreateAccount(ctx, "q2@example.com", "x")
	st := stage(t, s, testMessage("deliver", "body text"))
	if err := s.SetQuota(ctx, b.ID, st.Size()+10); err != nil {
		t.Fatal(err)
	}
	errs, err := s.Deliver(ctx, st, []store.DeliveryTarget{
		{Account: a.ID},
		{Account: b.ID},
		{Account: b.ID, Mailbox: "Junk"}, // over quota by then
		{Account: 987654},
		{Account: a.ID, Mailbox: "nope"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, nil, store.ErrOverQuota, store.ErrNotFound, store.ErrNotFound}
	for i := range want {
		if (want[i] == nil) != (errs[i] == nil) || (want[i] != nil && !errors.Is(errs[i], want[i])) {
			t.Fatalf("target %d: %v, want %v", i, errs[i], want[i])
		}
	}
	if n := countRows(t, s, "bodies"); n != 1 {
		t.Fatalf("%d bodies for one delivery", n)
	}
	ab, _ := s.AccountByID(ctx, b.ID)
	if ab.UsedBytes != st.Size() {
		t.Fatalf("used %d", ab.UsedBytes)
	}
	// Nobody accepts: per-target errors, nothing stored.
	st2 := stage(t, s, testMessage("nobody", "x"))
	errs, err = s.Deliver(ctx, st2, []store.DeliveryTarget{{Account: 987654}})
	if err != nil || !errors.Is(errs[0], store.ErrNotFound) || countRows(t, s, "bodies") != 1 {
		t.Fatalf("deliver to nobody: %v %v", errs, err)
	}
	// Copy and move share the body.
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	arch, _ := s.Mailbox(ctx, a.ID, "Archive")
	cr, err := s.Copy(ctx, a.ID, inbox.ID, arch.ID, store.UIDSet{{Start: 1, Stop: 100}})
	if err != nil || fmt.Sprint(cr.SrcUIDs, cr.DstUIDs) != "[1] [1]" || cr.UIDValidity != arch.UIDValidity {
		t.Fatalf("copy %+v %v", cr, err)
	}
	if _, err := s.Copy(ctx, b.ID, inbox.ID, arch.ID, store.UIDSetOf(1)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("copy from another account's mailbox: %v", err)
	}
	mr, err := s.Move(ctx, a.ID, arch.ID, inbox.ID, store.UIDSetOf(1))
	if err != nil || fmt.Sprint(mr.SrcUIDs, mr.DstUIDs) != "[1] [2]" {
		t.Fatalf("move %+v %v", mr, err)
	}
	d, _ := s.Changes(ctx, a.ID, arch.ID, 0)
	if fmt.Sprint(d.Vanished) != "[1]" || d.Mailbox.Messages != 0 {
		t.Fatalf("archive after move %+v", d)
	}
	aa, _ := s.AccountByID(ctx, a.ID)
	if aa.UsedBytes != 2*st.Size() || countRows(t, s, "bodies") != 1 {
		t.Fatalf("used %d after copy+move", aa.UsedBytes)
	}
	// Deleting everything frees the shared body only at the last reference.
	if err := s.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if countRows(t, s, "bodies") != 1 {
		t.Fatal("body deleted while b still refers to it")
	}
	binbox, _ := s.Mailbox(ctx, b.ID, "INBOX")
	if _, err := s.Expunge(ctx, b.ID, binbox.ID, store.UIDSetOf(1)); err != nil {
		t.Fatal(err)
	}
	if countRows(t, s, "bodies") != 0 || countRows(t, s, "body_chunks") != 0 {
		t.Fatal("body kept after its last entry was expunged")
	}
}

func TestFlagsAndKeywords(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	a, _ := s.CreateAccount(ctx, "f@example.com", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	st := stage(t, s, testMessage("f", "x"))
	s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st, Flags: store.Flags{Keywords: []string{"$Label1"}}}, {Body: st}})
	r, err := s.SetFlags(ctx, a.ID, inbox.ID, store.UIDSet{{Start: 1, Stop: 2}}, store.FlagsAdd, store.Flags{Sys: store.FlagDeleted, Keywords: []string{"$LABEL1"}}, 0)
	if err != nil || len(r.Updated) != 2 {
		t.Fatalf("%+v %v", r, err)
	}
	for _, u := range r.Updated {
		if fmt.Sprint(u.Flags.Keywords) != "[$Label1]" {
			t.Fatalf("keyword spelling %v", u.Flags.Keywords)
		}
	}
	ms := r.Updated[0].ModSeq
	r, _ = s.SetFlags(ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsRemove, store.Flags{Sys: store.FlagDeleted}, 0)
	r2, _ := s.SetFlags(ctx, a.ID, inbox.ID, store.UIDSet{{Start: 1, Stop: 2}}, store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, ms)
	if fmt.Sprint(r2.Modified) != "[1]" || len(r2.Updated) != 1 || r2.Updated[0].UID != 2 {
		t.Fatalf("unchangedSince: %+v", r2)
	}
	if _, err := s.SetFlags(ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{Keywords: []string{"bad word"}}, 0); !errors.Is(err, store.ErrBadFlag) {
		t.Fatalf("bad keyword: %v", err)
	}
	m, _ := s.MailboxByID(ctx, a.ID, inbox.ID)
	if m.Deleted != 1 || m.Unseen != 1 || m.Messages != 2 {
		t.Fatalf("counters %+v", m)
	}
	if claimed, _ := s.ClaimRecent(ctx, a.ID, inbox.ID); claimed != 1 {
		t.Fatalf("first claim %d", claimed)
	}
	if claimed, _ := s.ClaimRecent(ctx, a.ID, inbox.ID); claimed != 3 {
		t.Fatalf("second claim %d", claimed)
	}
}

// bigMessage streams a message of about n bytes: a header and a base64
// attachment, never held in memory.
type bigMessage struct {
	n, off int
	head   []byte
	line   []byte
}

func newBig(n int) *bigMessage {
	return &bigMessage{n: n,
		head: []byte("From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
		line: []byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"),
	}
}

func (b *bigMessage) Read(p []byte) (int, error) {
	if b.off >= b.n {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && b.off < b.n {
		var src []byte
		if b.off < len(b.head) {
			src = b.head[b.off:]
		} else {
			src = b.line[(b.off-len(b.head))%len(b.line):]
		}
		c := copy(p[n:], src)
		if b.off+c > b.n {
			c = b.n - b.off
		}
		n += c
		b.off += c
	}
	return n, nil
}

// TestLargeMessageStreams appends a 50 MB message and checks that the Go
// heap never grows by more than a fraction of it, and that the bytes read
// back are the bytes written, also at random offsets.
func TestLargeMessageStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB")
	}
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	a, _ := s.CreateAccount(ctx, "big@example.com", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	const size = 50 << 20
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t0 := time.Now()
	st, err := s.Stage(ctx, newBig(size), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Discard()
	if _, err := s.Stage(ctx, newBig(size), size/2); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("over maxBytes: %v", err)
	}
	if _, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-done
	grow := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("stage+append of %d MB took %v; heap in use grew by at most %.1f MB", size>>20, time.Since(t0).Round(time.Millisecond), float64(grow)/(1<<20))
	if grow > 24<<20 {
		t.Errorf("heap grew by %d MB for a %d MB message: not streaming", grow>>20, size>>20)
	}
	r, err := s.OpenMessage(ctx, a.ID, inbox.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h1, h2 := sha256.New(), sha256.New()
	io.Copy(h1, newBig(size))
	if n, err := io.Copy(h2, r); err != nil || n != size || r.Size() != size {
		t.Fatalf("read back %d bytes: %v", n, err)
	}
	if !bytes.Equal(h1.Sum(nil), h2.Sum(nil)) {
		t.Fatal("bytes read back differ")
	}
	// Random access across a chunk boundary.
	off := int64(DefaultChunkBytes) - 10
	want := make([]byte, 40)
	b := newBig(size)
	io.CopyN(io.Discard, b, off)
	io.ReadFull(b, want)
	got := make([]byte, 40)
	if _, err := r.ReadAt(got, off); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadAt across chunks: %q vs %q (%v)", got, want, err)
	}
}
