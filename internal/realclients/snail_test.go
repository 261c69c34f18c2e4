package realclients

import (
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestSNail drives s-nail (a mailx) in batch mode (-#): reading, copying
// and deleting over IMAP with STARTTLS, reading and deleting over POP3
// with STLS, and sending through submission with STARTTLS and AUTH PLAIN.
func TestSNail(t *testing.T) {
	bin := needClient(t, "s-nail", "s-nail")
	t.Parallel()
	s := startServer(t, serverConfig{})

	// snail runs s-nail with the v15 URL syntax, the server's
	// certificate as the only trusted one, and commands as -Y lines.
	snail := func(t *testing.T, stdin string, args ...string) string {
		t.Helper()
		home := t.TempDir()
		base := []string{"-#", "-:/", "-Sv15-compat", "-Sttycharset=utf-8",
			"-Stls-ca-file=" + s.caFile(), "-Stls-ca-no-defaults", "-Spassword=" + password}
		return runClientInput(t, home, []string{"HOME=" + home}, stdin, nil, bin, append(base, args...)...)
	}
	acct := func(user, scheme, addr string) string {
		return fmt.Sprintf("%s://%s@localhost:%s", scheme, url.QueryEscape(user), portOf(addr))
	}

	t.Run("IMAP", func(t *testing.T) {
		const user = "snail-imap@localhost"
		s.addUser(t, user)
		for i := 1; i <= 3; i++ {
			s.deliver(t, user, message("sender@example.org", user, fmt.Sprintf("snail %d", i), 0))
		}
		c := s.imapLogin(t, user)
		if err := c.Create("Work", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		c.Logout()
		before := s.mailbox(t, user, "INBOX")
		box := acct(user, "imap", s.imap)
		out := snail(t, "", "-Simap-use-starttls", "-Y", "file "+box+"/INBOX", "-Y", "headers",
			"-Y", "print 1", "-Y", "copy 2 "+box+"/Work", "-Y", "delete 3", "-Y", "quit")
		for _, want := range []string{"snail 1", "snail 2", "snail 3", "Body of snail 1.", "Grüße aus Köln"} {
			if !strings.Contains(out, want) {
				t.Errorf("s-nail output lacks %q", want)
			}
		}
		after := s.mailbox(t, user, "INBOX")
		if got := subjects(after); !slices.Equal(got, []string{"snail 1", "snail 2"}) {
			t.Fatalf("INBOX after s-nail deleted snail 3: %v", got)
		}
		if !after["snail 1"].hasFlag(imap.FlagSeen) {
			t.Errorf("snail 1 not \\Seen after s-nail printed it: %v", after["snail 1"].Flags)
		}
		work := s.mailbox(t, user, "Work")
		if !bytes.Equal(work["snail 2"].Raw, before["snail 2"].Raw) {
			t.Errorf("Work after s-nail's copy: %v\n%q", subjects(work), head(work["snail 2"].Raw))
		}
	})

	t.Run("POP3", func(t *testing.T) {
		const user = "snail-pop@localhost"
		s.addUser(t, user)
		for i := 1; i <= 2; i++ {
			s.deliver(t, user, message("sender@example.org", user, fmt.Sprintf("snail pop %d", i), 0))
		}
		out := snail(t, "", "-Spop3-use-starttls", "-Y", "file "+acct(user, "pop3", s.pop3),
			"-Y", "print 1", "-Y", "delete 2", "-Y", "quit")
		if !strings.Contains(out, "Body of snail pop 1.") || !strings.Contains(out, ".a line that starts with a dot") {
			t.Errorf("s-nail did not print snail pop 1 (dot-stuffing undone)")
		}
		if got := subjects(s.mailbox(t, user, "INBOX")); !slices.Equal(got, []string{"snail pop 1"}) {
			t.Fatalf("INBOX after s-nail's POP3 DELE of message 2: %v", got)
		}
	})

	t.Run("Submission", func(t *testing.T) {
		const from, rcpt = "snail-from@localhost", "snail-rcpt@localhost"
		s.addUser(t, from)
		s.addUser(t, rcpt)
		snail(t, "Grüße via s-nail\n", "-Smta="+acct(from, "smtp", s.sub), "-Ssmtp-use-starttls",
			"-Ssmtp-auth=plain", "-Sfrom="+from, "-s", "snail sent", rcpt)
		var got map[string]stored
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			got = s.mailbox(t, rcpt, "INBOX")
			if len(got) > 0 || time.Now().After(deadline) {
				break
			}
		}
		m, ok := got["snail sent"]
		if !ok {
			t.Fatalf("recipient's INBOX: %v", subjects(got))
		}
		// s-nail sends 8-bit text as quoted-printable.
		_, body := splitMessage(m.Raw)
		text, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil || string(text) != "Grüße via s-nail\r\n" {
			t.Errorf("body %q (%v), want the text sent:\n%s", text, err, m.Raw)
		}
		if f := headerValue(m.Raw, "From"); !strings.Contains(f, from) {
			t.Errorf("From: %q", f)
		}
	})
}
