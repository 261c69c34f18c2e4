package bulk

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/bench/corpus"
	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

func testPlan() *Plan {
	return &Plan{Accounts: 2, PerAccount: 7, Prefix: "bulk", Domain: "bench.test", Unread: 2,
		Gen: &corpus.Generator{Seed: 9, Profile: corpus.Compact, MaxBytes: 4096}}
}

// TestMaildir writes a plan and reads every file back: its name carries
// the right sizes and flags, and its bytes are the generated message with
// LF line endings. A second run leaves complete accounts alone.
func TestMaildir(t *testing.T) {
	root := t.TempDir()
	p := testPlan()
	if err := Maildir(context.Background(), root, p, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	for a := 0; a < p.Accounts; a++ {
		cur := filepath.Join(root, "bench.test", fmt.Sprintf("bulk%d", a+1), "Maildir", "cur")
		ents, err := os.ReadDir(cur)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != p.PerAccount {
			t.Fatalf("%s: %d files, want %d", cur, len(ents), p.PerAccount)
		}
		for _, e := range ents {
			var date int64
			var j, acct, q, s, w int
			var flags string
			name := strings.Replace(e.Name(), ":2,", " ", 1)
			if n, _ := fmt.Sscanf(name, "%d.M%dP%dQ%d.skbench,S=%d,W=%d %s", &date, &j, &acct, &q, &s, &w, &flags); n < 6 {
				t.Fatalf("file name %q does not parse", e.Name())
			}
			want := p.Gen.Message(p.Index(a, j))
			lf := bytes.ReplaceAll(want, []byte("\r\n"), []byte("\n"))
			got, err := os.ReadFile(filepath.Join(cur, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, lf) || s != len(lf) || w != len(want) {
				t.Fatalf("%s: %d bytes (S=%d W=%d), want %d bytes LF, %d CRLF", e.Name(), len(got), s, w, len(lf), len(want))
			}
			if wantFlags := p.seen(j); (flags == "S") != wantFlags {
				t.Fatalf("%s: flags %q, seen should be %v", e.Name(), flags, wantFlags)
			}
			fi, _ := e.Info()
			if !fi.ModTime().Equal(p.InternalDate(j)) || date != p.InternalDate(j).Unix() {
				t.Fatalf("%s: mtime %v, want %v", e.Name(), fi.ModTime(), p.InternalDate(j))
			}
		}
	}
	marker := filepath.Join(root, "bench.test", "bulk1", "Maildir", "dovecot-uidlist")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Maildir(context.Background(), root, p, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("a second run rewrote a complete account: %v", err)
	}
}

// TestSkrytka loads a plan into a real embedded store, checks counts,
// flags and bytes, and that a second run adds nothing.
func TestSkrytka(t *testing.T) {
	ctx := context.Background()
	st, err := embedded.Open(ctx, t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := testPlan()
	hash, err := auth.HashPassword("bulk-password-1")
	if err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 2; run++ {
		if err := Skrytka(ctx, st, p, hash); err != nil {
			t.Fatal(err)
		}
	}
	for a := 0; a < p.Accounts; a++ {
		acct, err := st.Account(ctx, p.Address(a))
		if err != nil {
			t.Fatal(err)
		}
		mb, err := st.Mailbox(ctx, acct.ID, store.InboxName)
		if err != nil {
			t.Fatal(err)
		}
		if int(mb.Messages) != p.PerAccount || int(mb.Unseen) != p.Unread {
			t.Fatalf("%s: %d messages, %d unseen; want %d, %d", p.Address(a), mb.Messages, mb.Unseen, p.PerAccount, p.Unread)
		}
		r, err := st.OpenMessage(ctx, acct.ID, mb.ID, store.UID(p.PerAccount))
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		_, err = got.ReadFrom(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Gen.VerifyExact(got.Bytes(), p.Index(a, p.PerAccount-1)); err != nil {
			t.Fatal(err)
		}
	}
}
