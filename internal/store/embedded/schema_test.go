package embedded

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// TestMigrateFromV1 builds a store at schema version 1 by hand, with
// messages, and checks that Open migrates it without losing data or
// reusing message IDs.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A current store, to get real staged rows, then rewound to version 1.
	s := openTest(t, dir, Options{driver: testDriver})
	a, _ := s.CreateAccount(ctx, "old@example.org", "x")
	s.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "skrytka.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TABLE messages`, `DELETE FROM meta WHERE key = 'next_message_id'`,
		`CREATE TABLE messages(id INTEGER PRIMARY KEY AUTOINCREMENT, mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, modseq INTEGER NOT NULL, flags INTEGER NOT NULL, keywords TEXT NOT NULL DEFAULT '', internal_date INTEGER NOT NULL, internal_tz INTEGER NOT NULL, size INTEGER NOT NULL, blob_id INTEGER NOT NULL)`,
		`DROP TABLE infos`, `ALTER TABLE blobs ADD COLUMN info BLOB NOT NULL DEFAULT x''`,
		`INSERT INTO blobs(id, size, data, info) VALUES(1, 5, 'hello', '{}')`,
		`INSERT INTO texts(blob_id, header, body) VALUES(1, '', 'hello')`,
		`INSERT INTO messages(id, mailbox_id, uid, modseq, flags, keywords, internal_date, internal_tz, size, blob_id) SELECT 40, id, 1, 2, 1, 'Kw', 1700000000, 0, 5, 1 FROM mailboxes WHERE name = 'INBOX'`,
		`INSERT INTO messages(id, mailbox_id, uid, modseq, flags, keywords, internal_date, internal_tz, size, blob_id) SELECT 41, id, 2, 2, 0, '', 1700000000, 0, 5, 1 FROM mailboxes WHERE name = 'INBOX'`,
		`DELETE FROM messages WHERE id = 41`,
		`UPDATE mailboxes SET uidnext = 3, highest_modseq = 2 WHERE name = 'INBOX'`,
		`DROP TRIGGER IF EXISTS messages_del_blob`,
		`CREATE TRIGGER messages_del_blob AFTER DELETE ON messages BEGIN SELECT 1; END`,
		`UPDATE schema_version SET version = 1`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s = openTest(t, dir, Options{driver: testDriver})
	defer s.Close()
	inbox, _ := s.Mailbox(ctx, a.ID, store.InboxName)
	var got []store.Message
	s.Messages(ctx, a.ID, inbox.ID, store.UIDSet{{Start: 1, Stop: 10}}, store.FetchOptions{}, func(m *store.Message) error {
		got = append(got, *m)
		return nil
	})
	if len(got) != 1 || got[0].ID != 40 || got[0].UID != 1 || got[0].Flags.Sys != store.FlagSeen || got[0].Flags.Keywords[0] != "Kw" {
		t.Fatalf("after migration: %+v", got)
	}
	var info string
	if err := s.rdb.QueryRow(`SELECT info FROM infos WHERE blob_id = 1`).Scan(&info); err != nil || info != "{}" {
		t.Errorf("parsed metadata after migration: %q %v", info, err)
	}
	st, _ := s.Stage(ctx, strings.NewReader("Subject: new\r\n\r\n"), 0)
	res, err := s.Append(ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	s.Messages(ctx, a.ID, inbox.ID, store.UIDSetOf(res.UIDs[0]), store.FetchOptions{}, func(m *store.Message) error {
		got = append(got, *m)
		return nil
	})
	if len(got) != 1 || got[0].ID <= 41 || got[0].UID != 3 {
		t.Errorf("new message after migration: %+v (must not reuse ID 41)", got)
	}
	var v int
	s.rdb.QueryRow(`SELECT version FROM schema_version`).Scan(&v)
	if v != len(migrations) {
		t.Errorf("schema version %d, want %d", v, len(migrations))
	}
}
