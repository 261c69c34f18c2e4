package embedded

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestRecoverFiles stages the three states a crash can leave body files in
// and checks what Open does with each: a committed body still in tmp/ is
// moved into place (and readable before that), a staged body that never
// committed is removed, and a body whose deletion committed is unlinked.
func TestRecoverFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{driver: testDriver, InlineMaxBytes: -1})
	a, _ := s.CreateAccount(ctx, "recover@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	body := "Subject: r\r\n\r\n" + strings.Repeat("r", 5000)
	appendOne := func() (store.UID, string) {
		st, err := s.Stage(ctx, strings.NewReader(body), 0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
		if err != nil {
			t.Fatal(err)
		}
		return res.UIDs[0], st.(*staged).file
	}
	kept, keptFile := appendOne()
	gone, goneFile := appendOne()
	// The commit happened but the move into blobs/ did not.
	if err := os.Rename(s.blobPath(keptFile), s.tmpPath(keptFile)); err != nil {
		t.Fatal(err)
	}
	r, err := s.OpenMessage(ctx, a.ID, inbox.ID, kept)
	if err != nil {
		t.Fatalf("body still in tmp/ not readable: %v", err)
	}
	if b, _ := io.ReadAll(r); string(b) != body {
		t.Error("body read from tmp/ differs")
	}
	r.Close()
	// A body staged but never committed.
	orphan, err := s.Stage(ctx, strings.NewReader(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	orphanFile := orphan.(*staged).file
	// A deletion that committed, with the crash before the unlink: put
	// the row back by hand after the sweep.
	if _, err := s.Expunge(ctx, a.ID, inbox.ID, store.UIDSetOf(gone)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.WriteFile(s.blobPath(goneFile), []byte(body), 0o600)
	s = openTest(t, dir, Options{driver: testDriver, InlineMaxBytes: -1})
	if err := s.write(ctx, func(w *wtx) error {
		_, err := w.exec(`INSERT INTO dead_files(name) VALUES(?)`, goneFile)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openTest(t, dir, Options{driver: testDriver, InlineMaxBytes: -1})
	defer s.Close()
	if _, err := os.Stat(s.blobPath(keptFile)); err != nil {
		t.Errorf("committed body not moved into place: %v", err)
	}
	if _, err := os.Stat(s.tmpPath(orphanFile)); !os.IsNotExist(err) {
		t.Errorf("uncommitted staged body still there: %v", err)
	}
	if _, err := os.Stat(s.blobPath(goneFile)); !os.IsNotExist(err) {
		t.Errorf("deleted body still there: %v", err)
	}
	r, err = s.OpenMessage(ctx, a.ID, inbox.ID, kept)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != body {
		t.Error("recovered body differs")
	}
	r.Close()
	var dead int
	s.rdb.QueryRow(`SELECT count(*) FROM dead_files`).Scan(&dead)
	if dead != 0 {
		t.Errorf("%d dead_files rows left", dead)
	}
	checkFiles(t, s)
}
