package realclients

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// curlRun runs curl with the server's generated certificate trusted and
// returns what it wrote to standard output (the transfer), logging the
// verbose trace on failure. okCodes lists exit statuses that are not a
// failure.
func curlRun(t *testing.T, bin string, s *server, okCodes []int, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	outFile := filepath.Join(dir, "out")
	args = append([]string{"-sS", "-v", "--max-time", "30", "--cacert", s.caFile(), "-o", outFile}, args...)
	runClient(t, dir, []string{"HOME=" + dir}, okCodes, bin, args...)
	out, err := os.ReadFile(outFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// TestCurl drives the server with curl: IMAP (LIST "" * with an unquoted
// "*", a non-peek UID FETCH BODY[] that sets \Seen, FETCH by sequence
// number, APPEND), POP3 (LIST, RETR, UIDL) and SMTP submission with AUTH,
// over STARTTLS/STLS and implicit TLS.
func TestCurl(t *testing.T) {
	bin := needClient(t, "curl", "curl")
	t.Parallel()
	s := startServer(t, serverConfig{})
	cred := func(user string) string { return user + ":" + password }

	t.Run("IMAP", func(t *testing.T) {
		const user = "curl-imap@localhost"
		s.addUser(t, user)
		s.deliver(t, user, message("sender@example.org", user, "curl 1", 0))
		s.deliver(t, user, message("sender@example.org", user, "curl 2", 90<<10))
		c := s.imapLogin(t, user)
		for _, name := range []string{"Work", "Work/Projects", "Entwürfe"} {
			if err := c.Create(name, nil).Wait(); err != nil {
				t.Fatal(err)
			}
		}
		c.Logout()
		before := s.mailbox(t, user, "INBOX")

		// LIST "" * (curl sends the "*" unquoted); curl prints the
		// untagged responses.
		list := string(curlRun(t, bin, s, nil, "--user", cred(user), "imap://127.0.0.1:"+portOf(s.imap)+"/"))
		for _, want := range []string{`"/" INBOX`, `"/" Work/Projects`, `"/" Entw&APw-rfe`, `\Sent) "/" Sent`} {
			if !strings.Contains(list, want) {
				t.Errorf("LIST output lacks %q:\n%s", want, list)
			}
		}

		// UID FETCH n BODY[] over STARTTLS: the exact stored bytes, and
		// the message becomes \Seen (RFC 9051 §6.4.5).
		m2 := before["curl 2"]
		got := curlRun(t, bin, s, nil, "--ssl-reqd", "--user", cred(user),
			fmt.Sprintf("imap://localhost:%s/INBOX;UID=%d", portOf(s.imap), m2.UID))
		if !bytes.Equal(got, m2.Raw) {
			t.Errorf("UID FETCH BODY[]: %d bytes, stored %d:\n%q", len(got), len(m2.Raw), head(got))
		}
		after := s.mailbox(t, user, "INBOX")
		if !after["curl 2"].hasFlag(imap.FlagSeen) {
			t.Errorf("curl 2 not \\Seen after a non-peek BODY[] fetch: %v", after["curl 2"].Flags)
		}
		if after["curl 1"].hasFlag(imap.FlagSeen) {
			t.Errorf("curl 1 \\Seen without being fetched: %v", after["curl 1"].Flags)
		}

		// FETCH by sequence number over implicit TLS.
		got = curlRun(t, bin, s, nil, "--user", cred(user),
			fmt.Sprintf("imaps://localhost:%s/INBOX;MAILINDEX=1", portOf(s.imaps)))
		if !bytes.Equal(got, before["curl 1"].Raw) {
			t.Errorf("FETCH 1 BODY[]: %d bytes, stored %d:\n%q", len(got), len(before["curl 1"].Raw), head(got))
		}
		if !s.mailbox(t, user, "INBOX")["curl 1"].hasFlag(imap.FlagSeen) {
			t.Errorf("curl 1 not \\Seen after FETCH 1 BODY[]")
		}

		// SEARCH (a query in the URL) answers with sequence numbers.
		search := string(curlRun(t, bin, s, nil, "--user", cred(user),
			"imap://127.0.0.1:"+portOf(s.imap)+"/INBOX?SUBJECT%20%22curl%202%22"))
		if strings.TrimSpace(search) != "* SEARCH 2" {
			t.Errorf("SEARCH SUBJECT \"curl 2\": %q", search)
		}

		// Sections and partial fetches of a multipart message, compared
		// with the bytes of the parts as written.
		const part1, part2mime, part2 = "Grüße, part one", "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n", "AAECAwQF"
		mp := "From: <" + user + ">\r\nSubject: curl parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + part1 + "\r\n--b1\r\n" + part2mime + part2 + "\r\n--b1--\r\n"
		s.appendMsg(t, user, "Work/Projects", mp)
		mpUID := s.mailbox(t, user, "Work/Projects")["curl parts"].UID
		_, mpText := splitMessage([]byte(mp))
		for _, tc := range []struct{ url, want string }{
			{"SECTION=1", part1},
			{"SECTION=2", part2},
			{"SECTION=2.MIME", part2mime},
			{"SECTION=HEADER", string(mp[:strings.Index(mp, "\r\n\r\n")+4])},
			{"SECTION=TEXT;PARTIAL=0.5", string(mpText[:5])},
			{"SECTION=1;PARTIAL=7.100", part1[7:]},
		} {
			got := curlRun(t, bin, s, nil, "--user", cred(user),
				fmt.Sprintf("imap://127.0.0.1:%s/Work%%2FProjects;UID=%d;%s", portOf(s.imap), mpUID, tc.url))
			if string(got) != tc.want {
				t.Errorf("%s: %q, want %q", tc.url, got, tc.want)
			}
		}
		if m := s.mailbox(t, user, "Work/Projects")["curl parts"]; !m.hasFlag(imap.FlagSeen) {
			t.Errorf("curl parts not \\Seen after non-peek BODY[section] fetches: %v", m.Flags)
		}

		// APPEND (curl's upload) into a folder.
		up := message(user, user, "curl upload", 0)
		file := filepath.Join(t.TempDir(), "up.eml")
		if err := os.WriteFile(file, []byte(up), 0o600); err != nil {
			t.Fatal(err)
		}
		curlRun(t, bin, s, nil, "--user", cred(user), "-T", file, "imap://127.0.0.1:"+portOf(s.imap)+"/Work")
		if got := s.mailbox(t, user, "Work"); !bytes.Equal(got["curl upload"].Raw, []byte(up)) {
			t.Errorf("APPEND by curl: Work has %v; stored %q", subjects(got), head(got["curl upload"].Raw))
		}
	})

	t.Run("POP3", func(t *testing.T) {
		const user = "curl-pop@localhost"
		s.addUser(t, user)
		for i := 1; i <= 3; i++ {
			s.deliver(t, user, message("sender@example.org", user, fmt.Sprintf("pop %d", i), (i-1)*70<<10))
		}
		want := s.mailbox(t, user, "INBOX")
		byUID := slices.SortedFunc(func(yield func(stored) bool) {
			for _, m := range want {
				if !yield(m) {
					return
				}
			}
		}, func(a, b stored) int { return int(a.UID) - int(b.UID) })

		// LIST over STLS: the sizes are those of the stored (CRLF)
		// messages, which is what RETR sends.
		list := string(curlRun(t, bin, s, nil, "--ssl-reqd", "--user", cred(user), "pop3://localhost:"+portOf(s.pop3)+"/"))
		var wantList strings.Builder
		for i, m := range byUID {
			fmt.Fprintf(&wantList, "%d %d\r\n", i+1, len(m.Raw))
		}
		if list != wantList.String() {
			t.Errorf("POP3 LIST:\n%q\nwant\n%q", list, wantList.String())
		}

		// RETR each, plain and over POP3S: byte-identical after curl
		// undoes the dot-stuffing.
		for i, m := range byUID {
			url := fmt.Sprintf("pop3://127.0.0.1:%s/%d", portOf(s.pop3), i+1)
			if i == 1 {
				url = fmt.Sprintf("pop3s://localhost:%s/%d", portOf(s.pop3s), i+1)
			}
			got := curlRun(t, bin, s, nil, "--user", cred(user), url)
			if !bytes.Equal(got, m.Raw) {
				t.Errorf("RETR %d: %d bytes, stored %d:\n%q", i+1, len(got), len(m.Raw), head(got))
			}
		}

		// UIDL: one distinct id per message.
		uidl := string(curlRun(t, bin, s, nil, "--user", cred(user), "-X", "UIDL", "pop3://127.0.0.1:"+portOf(s.pop3)+"/"))
		ids := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(uidl), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				t.Fatalf("UIDL line %q in\n%s", line, uidl)
			}
			if n, err := strconv.Atoi(f[0]); err != nil || n < 1 || n > 3 {
				t.Fatalf("UIDL line %q", line)
			}
			ids[f[1]] = true
		}
		if len(ids) != 3 {
			t.Errorf("UIDL: %d distinct ids, want 3:\n%s", len(ids), uidl)
		}
		// curl never DELEs: everything is still there.
		if got := s.mailbox(t, user, "INBOX"); len(got) != 3 {
			t.Errorf("INBOX after curl's POP3 reads: %v", subjects(got))
		}
	})

	t.Run("Submission", func(t *testing.T) {
		const from, rcpt = "curl-from@localhost", "curl-rcpt@localhost"
		s.addUser(t, from)
		s.addUser(t, rcpt)
		dir := t.TempDir()
		send := func(t *testing.T, url, subject string, ok []int, extra ...string) string {
			t.Helper()
			msg := message(from, rcpt, subject, 0)
			file := filepath.Join(dir, strings.ReplaceAll(subject, " ", "_")+".eml")
			if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"--mail-from", from, "--mail-rcpt", rcpt, "-T", file, url}, extra...)
			curlRun(t, bin, s, ok, args...)
			return msg
		}
		// Submission with STARTTLS, and over implicit TLS.
		sent := map[string]string{
			"sub starttls": send(t, "smtp://localhost:"+portOf(s.sub), "sub starttls", nil, "--ssl-reqd", "--user", cred(from)),
			"sub implicit": send(t, "smtps://localhost:"+portOf(s.subs), "sub implicit", nil, "--user", cred(from)),
		}
		// A wrong password is refused (curl exit 67, login denied), and
		// so is mail without AUTH (exit 55: the server refused a
		// command); neither arrives.
		send(t, "smtp://localhost:"+portOf(s.sub), "sub badpass", []int{67}, "--ssl-reqd", "--user", from+":wrong-password")
		send(t, "smtp://localhost:"+portOf(s.sub), "sub noauth", []int{55}, "--ssl-reqd")

		// Local recipients get the mail right after 250; allow the
		// delivery a moment in case it is queued.
		var got map[string]stored
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			got = s.mailbox(t, rcpt, "INBOX")
			if len(got) >= 2 || time.Now().After(deadline) {
				break
			}
		}
		if !slices.Equal(subjects(got), []string{"sub implicit", "sub starttls"}) {
			t.Fatalf("recipient's INBOX: %v", subjects(got))
		}
		for subj, msg := range sent {
			_, gb := splitMessage(got[subj].Raw)
			_, wb := splitMessage([]byte(msg))
			if !bytes.Equal(gb, wb) {
				t.Errorf("%q: body differs:\n%q\nwant\n%q", subj, head(gb), head(wb))
			}
			// The server only puts trace fields on top.
			if !bytes.HasSuffix(got[subj].Raw, []byte(msg)) {
				t.Errorf("%q: the submitted message is not the end of what arrived:\n%q", subj, head(got[subj].Raw))
			}
		}
	})
}
