package embedded

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestFullDisk makes the database hit a size limit (SQLite reports it as
// SQLITE_FULL, exactly like a full disk) and checks that appends fail with
// ErrUnavailable, that nothing half-done is visible, and that the store
// works again once space is back.
func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{driver: testDriver})
	defer s.Close()
	a, err := s.CreateAccount(ctx, "full@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	var pages int64
	if err := s.write(ctx, func(w *wtx) error {
		if err := w.queryRow(`PRAGMA page_count`, nil, &pages); err != nil {
			return err
		}
		_, err := w.exec(`PRAGMA max_page_count = ` + strconv.FormatInt(pages+40, 10))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 30<<10) // inline: 30 KB per message
	acked := 0
	var failure error
	for i := 0; i < 100 && failure == nil; i++ {
		st, err := s.Stage(ctx, strings.NewReader("Subject: full\r\n\r\n"+body), 0)
		if err != nil {
			t.Fatal(err)
		}
		_, failure = s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
		if failure == nil {
			acked++
		}
		st.Discard()
	}
	if failure == nil || acked == 0 {
		t.Fatalf("no error from a full database, or none fitted (%d acknowledged)", acked)
	}
	if !errors.Is(failure, store.ErrUnavailable) {
		t.Errorf("full database gave %v, want ErrUnavailable", failure)
	}
	m, uids, err := s.SelectState(ctx, a.ID, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(uids) != acked || int(m.Messages) != acked || m.UIDNext != store.UID(acked+1) {
		t.Errorf("after the failure: %d UIDs, Messages %d, UIDNext %d; %d acknowledged", len(uids), m.Messages, m.UIDNext, acked)
	}
	// Space comes back.
	if err := s.write(ctx, func(w *wtx) error {
		_, err := w.exec(`PRAGMA max_page_count = 1073741823`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stage(ctx, strings.NewReader("Subject: again\r\n\r\nok\r\n"), 0)
	res, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
	if err != nil {
		t.Fatalf("append after space came back: %v", err)
	}
	if res.UIDs[0] != store.UID(acked+1) {
		t.Errorf("UID after recovery %d, want %d", res.UIDs[0], acked+1)
	}
}

// TestStageIOErrors checks that a failing fsync or an unwritable staging
// directory fails Stage (so nothing is acknowledged) and leaves no file.
func TestStageIOErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fail := false
	s := openTest(t, dir, Options{driver: testDriver, syncFile: func(f *os.File) error {
		if fail {
			return &os.PathError{Op: "fsync", Path: f.Name(), Err: syscall.EIO}
		}
		return f.Sync()
	}})
	defer s.Close()
	big := strings.Repeat("y", 200<<10)
	fail = true
	_, err := s.Stage(ctx, strings.NewReader(big), 0)
	if err == nil || !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Stage with failing fsync: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(ents) != 0 {
		t.Errorf("failed Stage left %d files", len(ents))
	}
	fail = false
	// The staging directory disappears (replaced by a file).
	tmp := filepath.Join(dir, tmpDir)
	os.Remove(tmp)
	os.WriteFile(tmp, nil, 0o600)
	_, err = s.Stage(ctx, strings.NewReader(big), 0)
	if err == nil || !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Stage into a broken directory: %v", err)
	}
	os.Remove(tmp)
	os.Mkdir(tmp, 0o700)
	st, err := s.Stage(ctx, strings.NewReader(big), 0)
	if err != nil {
		t.Fatalf("Stage after repair: %v", err)
	}
	st.Discard()
}
