package realclients

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestNeomutt reads, flags and deletes mail over IMAP with neomutt, which
// needs a terminal: it runs under script(1) (util-linux) with its keys
// pushed from its rc file, and exits by itself at the end.
//
// neomutt sends ENABLE UTF8=ACCEPT and pipelines the next command behind
// it (issue 3), and then names mailboxes in UTF-8.
func TestNeomutt(t *testing.T) {
	bin := needClient(t, "neomutt", "neomutt")
	script := needClient(t, "script", "bsdutils")
	t.Parallel()
	s := startServer(t, "")
	const user = "neomutt@localhost"
	s.addUser(t, user)
	for i := 1; i <= 3; i++ {
		s.deliver(t, user, message("sender@example.org", user, fmt.Sprintf("mutt %d", i), 0))
	}
	c := s.imapLogin(t, user)
	if err := c.Create("Entwürfe", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout()
	s.appendMsg(t, user, "Entwürfe", message(user, user, "mutt draft", 0), imap.FlagDraft)
	before := s.mailbox(t, user, "INBOX")

	home := t.TempDir()
	out1, out2 := filepath.Join(home, "out1"), filepath.Join(home, "out2")
	debug := filepath.Join(home, "debug")
	rc := filepath.Join(home, "neomuttrc")
	// Messages in mailbox order (they share one Date); no caches; no
	// questions (wait_key, delete, move, quit) so that the pushed keys
	// run to the end.
	cfg := fmt.Sprintf(`set imap_user = "%s"
set imap_pass = "%s"
set folder = "imap://localhost:%s/"
set spoolfile = "+INBOX"
set ssl_starttls = yes
set ssl_force_tls = yes
set certificate_file = "%s"
set charset = "utf-8"
set header_cache = ""
set message_cachedir = ""
set sort = mailbox-order
set wait_key = no
set delete = yes
set move = no
set quit = yes
set mark_old = no
set debug_level = 5
set debug_file = "%s"
push "<first-entry><pipe-message>cat > %s<enter><next-entry><flag-message><next-entry><delete-message><sync-mailbox><change-folder>=Entwürfe<enter><first-entry><pipe-message>cat > %s<enter><quit>"
`, user, password, portOf(s.imap), s.caFile(), debug, out1, out2)
	if err := os.WriteFile(rc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runClient(t, home, []string{"HOME=" + home, "TERM=xterm"}, nil, script, "-qec", bin+" -n -F "+rc, "/dev/null")
	logs, _ := filepath.Glob(debug + "*")
	var trace []byte
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		trace = append(trace, b...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("neomutt debug log:\n%s", tail(string(trace), 150))
		}
	})

	// The wire: ENABLE UTF8=ACCEPT, the next command pipelined behind
	// it, and the non-ASCII mailbox named in UTF-8 afterwards.
	if !regexp.MustCompile(`> a[0-9]+ ENABLE UTF8=ACCEPT`).Match(trace) || !bytes.Contains(trace, []byte("< * ENABLED UTF8=ACCEPT")) {
		t.Errorf("no ENABLE UTF8=ACCEPT exchange")
	}
	if !bytes.Contains(trace, []byte(`SELECT "Entwürfe"`)) {
		t.Errorf(`neomutt did not SELECT "Entwürfe" in UTF-8`)
	}

	got1, err := os.ReadFile(out1)
	if err != nil {
		t.Fatalf("neomutt piped nothing: %v", err)
	}
	if want := lf(before["mutt 1"].Raw); !bytes.Equal(got1, want) {
		t.Errorf("mutt 1 piped:\n%q\nwant\n%q", head(got1), head(want))
	}
	after := s.mailbox(t, user, "INBOX")
	if got := subjects(after); !slices.Equal(got, []string{"mutt 1", "mutt 2"}) {
		t.Fatalf("INBOX after neomutt deleted mutt 3: %v", got)
	}
	if !after["mutt 2"].hasFlag(imap.FlagFlagged) {
		t.Errorf("mutt 2 not \\Flagged: %v", after["mutt 2"].Flags)
	}
	got2, err := os.ReadFile(out2)
	if err != nil {
		t.Fatalf("neomutt piped nothing from Entwürfe: %v", err)
	}
	if want := lf(s.mailbox(t, user, "Entwürfe")["mutt draft"].Raw); !bytes.Equal(got2, want) {
		t.Errorf("mutt draft piped:\n%q\nwant\n%q", head(got2), head(want))
	}
	if strings.Contains(string(trace), " BAD ") {
		t.Errorf("the server answered BAD to neomutt")
	}
}
