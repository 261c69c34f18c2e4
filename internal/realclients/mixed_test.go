package realclients

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestMixedClients has three devices on one mailbox, as the README
// promises: a laptop syncing with mbsync, a phone-like reader on IMAP
// (curl, whose non-peek fetch marks a message read) and an old desktop on
// POP3 (s-nail, which deletes one). Each sees the others' changes.
func TestMixedClients(t *testing.T) {
	mbsync := needClient(t, "mbsync", "isync")
	curl := needClient(t, "curl", "curl")
	snail := needClient(t, "s-nail", "s-nail")
	t.Parallel()
	s := startServer(t, serverConfig{})
	const user = "mixed@localhost"
	s.addUser(t, user)
	for i := 1; i <= 4; i++ {
		s.deliver(t, user, message("sender@example.org", user, fmt.Sprintf("mix %d", i), 0))
	}
	m := newMbsync(t, mbsync, s, user)
	inbox := filepath.Join(m.mail, "INBOX")
	m.sync(t, "laptop: first pull")
	if got := subjects(readMaildir(t, inbox)); !slices.Equal(got, []string{"mix 1", "mix 2", "mix 3", "mix 4"}) {
		t.Fatalf("laptop after the first pull: %v", got)
	}

	// The phone reads mix 1; the desktop downloads over POP3 and
	// deletes mix 2.
	srv := s.mailbox(t, user, "INBOX")
	curlRun(t, curl, s, nil, "--user", user+":"+password,
		fmt.Sprintf("imap://127.0.0.1:%s/INBOX;UID=%d", portOf(s.imap), srv["mix 1"].UID))
	home := t.TempDir()
	runClient(t, home, []string{"HOME=" + home}, nil, snail, "-#", "-:/", "-Sv15-compat",
		"-Spassword="+password, "-Y", fmt.Sprintf("file pop3://%s@127.0.0.1:%s", url.QueryEscape(user), portOf(s.pop3)),
		"-Y", "delete 2", "-Y", "quit")

	// The laptop sees both.
	m.sync(t, "laptop: pull the others' changes")
	loc := readMaildir(t, inbox)
	if got := subjects(loc); !slices.Equal(got, []string{"mix 1", "mix 3", "mix 4"}) {
		t.Fatalf("laptop after the POP3 deletion: %v", got)
	}
	if f := loc["mix 1"].Flags; f != "S" {
		t.Errorf("laptop: mix 1 flags %q, want S (read on the phone)", f)
	}

	// The laptop flags mix 3 and deletes mix 4; the others see it.
	setMaildirFlags(t, loc["mix 3"], "F")
	if err := os.Remove(loc["mix 4"].Path); err != nil {
		t.Fatal(err)
	}
	m.sync(t, "laptop: push")
	srv = s.mailbox(t, user, "INBOX")
	if got := subjects(srv); !slices.Equal(got, []string{"mix 1", "mix 3"}) {
		t.Fatalf("server after the laptop's push: %v", got)
	}
	if !srv["mix 3"].hasFlag(imap.FlagFlagged) {
		t.Errorf("mix 3 on the server: %v, want \\Flagged", srv["mix 3"].Flags)
	}
	list := string(curlRun(t, curl, s, nil, "--user", user+":"+password, "pop3://127.0.0.1:"+portOf(s.pop3)+"/"))
	want := fmt.Sprintf("1 %d\r\n2 %d\r\n", len(srv["mix 1"].Raw), len(srv["mix 3"].Raw))
	if list != want {
		t.Errorf("POP3 LIST after the laptop's push:\n%q\nwant\n%q", list, want)
	}
	if !strings.Contains(string(curlRun(t, curl, s, nil, "--user", user+":"+password, "pop3://127.0.0.1:"+portOf(s.pop3)+"/2")), "Subject: mix 3") {
		t.Errorf("POP3 message 2 is not mix 3")
	}
}
