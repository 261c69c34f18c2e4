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

// TestOfflineIMAP syncs an account into a Maildir with offlineimap3, then
// pushes local changes back and pulls a new delivery.
//
// offlineimap sends ID before logging in, authenticates with AUTHENTICATE
// PLAIN without an initial response (waiting for the "+"), and SELECTs and
// EXAMINEs each folder (issue 3). Its Maildir uses "." as the hierarchy
// separator; with utf8foldernames it decodes modified UTF-7 names.
func TestOfflineIMAP(t *testing.T) {
	bin := needClient(t, "offlineimap", "offlineimap3")
	t.Parallel()
	s := startServer(t, serverConfig{})
	const user = "offlineimap@localhost"
	s.addUser(t, user)
	for i := 1; i <= 3; i++ {
		pad := 0
		if i == 3 {
			pad = 80 << 10
		}
		s.deliver(t, user, message("sender@example.org", user, fmt.Sprintf("oi %d", i), pad))
	}
	c := s.imapLogin(t, user)
	for _, name := range []string{"Work", "Work/Projects", "Entwürfe"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", name, err)
		}
	}
	c.Logout()
	s.appendMsg(t, user, "Work/Projects", message(user, user, "oi projects", 0), imap.FlagFlagged)
	s.appendMsg(t, user, "Entwürfe", message(user, user, "oi draft", 0), imap.FlagDraft)

	home := t.TempDir()
	mail := filepath.Join(home, "mail")
	rc := filepath.Join(home, "offlineimaprc")
	cfg := fmt.Sprintf(`[general]
accounts = skrytka
metadata = %s/meta

[Account skrytka]
localrepository = local
remoterepository = remote
utf8foldernames = yes

[Repository local]
type = Maildir
localfolders = %s

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = %s
remoteuser = %s
remotepass = %s
ssl = no
auth_mechanisms = PLAIN
`, home, mail, portOf(s.imap), user, password)
	// tls is the rest of the remote repository: plaintext on loopback,
	// or STARTTLS trusting the server's generated certificate.
	sync := func(step, tls string) string {
		t.Helper()
		t.Logf("offlineimap: %s", step)
		if err := os.WriteFile(rc, []byte(cfg+tls), 0o600); err != nil {
			t.Fatal(err)
		}
		out := runClient(t, home, []string{"HOME=" + home}, nil, bin, "-c", rc, "-o", "-u", "basic", "-d", "imap")
		if strings.Contains(out, "ERROR") {
			t.Fatalf("offlineimap reported an error")
		}
		return out
	}

	// 1. First sync: folders and messages arrive with their flags.
	out := sync("first sync", "starttls = no\n")
	// What the client sent, in order: ID and AUTHENTICATE PLAIN
	// without an initial response, then the credentials after "+".
	sent := regexp.MustCompile(`writer > b'([A-Z]+[0-9]+ )?([^\\']*)`).FindAllStringSubmatch(out, -1)
	var cmds []string
	for _, m := range sent {
		cmds = append(cmds, m[2])
	}
	id := slices.IndexFunc(cmds, func(s string) bool { return strings.HasPrefix(s, "ID (") })
	auth := slices.Index(cmds, "AUTHENTICATE PLAIN")
	if id < 0 || auth < 0 || id > auth {
		t.Errorf("expected ID, then AUTHENTICATE PLAIN without an initial response; sent %q", cmds[:min(len(cmds), 6)])
	}
	if !slices.Contains(cmds, "EXAMINE INBOX") {
		t.Errorf("offlineimap did not EXAMINE INBOX; sent %q", cmds)
	}

	for _, box := range []struct{ server, local string }{
		{"INBOX", "INBOX"}, {"Work/Projects", "Work.Projects"}, {"Entwürfe", "Entwürfe"},
	} {
		srv := s.mailbox(t, user, box.server)
		loc := readMaildir(t, filepath.Join(mail, box.local))
		if !slices.Equal(subjects(srv), subjects(loc)) {
			t.Fatalf("%s: server %v, Maildir %v", box.server, subjects(srv), subjects(loc))
		}
		for subj, sm := range srv {
			if got := loc[subj].Raw; !bytes.Equal(lf(sm.Raw), lf(got)) {
				t.Errorf("%s: %q differs:\n%q\nwant\n%q", box.server, subj, head(got), head(sm.Raw))
			}
			if got, want := loc[subj].Flags, maildirFlags(sm.Flags); got != want {
				t.Errorf("%s: %q has local flags %q, want %q", box.server, subj, got, want)
			}
		}
	}

	// 2. Local changes pushed back (a flag, a deletion, a new message in
	// the non-ASCII folder), and a new delivery pulled.
	inbox := readMaildir(t, filepath.Join(mail, "INBOX"))
	setMaildirFlags(t, inbox["oi 1"], "S")
	if err := os.Remove(inbox["oi 2"].Path); err != nil {
		t.Fatal(err)
	}
	localNew := message(user, user, "oi local", 0)
	writeMaildirMsg(t, filepath.Join(mail, "Entwürfe"), "1800000000.R3.realclients", string(lf([]byte(localNew))))
	localFolder := message(user, user, "oi büro", 0)
	writeMaildirMsg(t, filepath.Join(mail, "Büro"), "1800000001.R4.realclients", string(lf([]byte(localFolder))))
	s.deliver(t, user, message("sender@example.org", user, "oi 4", 0))
	out = sync("push local changes", "starttls = yes\nsslcacertfile = "+s.caFile()+"\n")
	if !strings.Contains(out, "STARTTLS") {
		t.Errorf("offlineimap did not use STARTTLS")
	}
	if !strings.Contains(out, "CREATE B&APw-ro") {
		t.Errorf("offlineimap did not CREATE the new folder in modified UTF-7")
	}
	if got := s.mailbox(t, user, "Büro"); !bytes.Equal(lf(withoutHeader(got["oi büro"].Raw, "X-OfflineIMAP")), lf([]byte(localFolder))) {
		t.Errorf("new folder Büro on the server: %v", subjects(got))
	}

	srv := s.mailbox(t, user, "INBOX")
	if got := subjects(srv); !slices.Equal(got, []string{"oi 1", "oi 3", "oi 4"}) {
		t.Fatalf("server INBOX after push: %v", got)
	}
	if !srv["oi 1"].hasFlag(imap.FlagSeen) {
		t.Errorf("oi 1 on the server: flags %v, want \\Seen", srv["oi 1"].Flags)
	}
	drafts := s.mailbox(t, user, "Entwürfe")
	if got := subjects(drafts); !slices.Equal(got, []string{"oi draft", "oi local"}) {
		t.Fatalf("server Entwürfe after push: %v", got)
	}
	if got := lf(withoutHeader(drafts["oi local"].Raw, "X-OfflineIMAP")); !bytes.Equal(got, lf([]byte(localNew))) {
		t.Errorf("oi local on the server:\n%q\nwant\n%q", head(got), head([]byte(localNew)))
	}
	loc := readMaildir(t, filepath.Join(mail, "INBOX"))
	if got := subjects(loc); !slices.Equal(got, []string{"oi 1", "oi 3", "oi 4"}) {
		t.Fatalf("local INBOX after sync: %v", got)
	}
	if !bytes.Equal(lf(loc["oi 4"].Raw), lf(srv["oi 4"].Raw)) {
		t.Errorf("oi 4 pulled:\n%q\nwant\n%q", head(loc["oi 4"].Raw), head(srv["oi 4"].Raw))
	}
}
