package realclients

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/skrytka/skrytka/internal/testharness"
)

// fetchmailRun is one user's fetchmail set-up: an rc file and an MDA
// script that writes each message into its own file under out.
type fetchmailRun struct {
	bin, home, rc, out string
}

// newFetchmail writes an rc file that polls the server with the given
// protocol lines (the "poll ... proto ..." line's tail and options), and
// an MDA script. fetchmail talks to "localhost" because it checks the
// certificate's DNS names only; it upgrades with STLS/STARTTLS on its own
// when the server offers it, and trusts the server's generated
// certificate through sslcertfile.
func newFetchmail(t *testing.T, bin string, s *server, user, poll, options string) *fetchmailRun {
	t.Helper()
	home := t.TempDir()
	f := &fetchmailRun{bin: bin, home: home, rc: filepath.Join(home, "fetchmailrc"), out: filepath.Join(home, "out")}
	if err := os.Mkdir(f.out, 0o700); err != nil {
		t.Fatal(err)
	}
	mda := filepath.Join(home, "mda.sh")
	// Write under a temporary name, then rename: a reader never sees a
	// message half written.
	script := fmt.Sprintf("#!/bin/sh\nset -e\ntmp=$(mktemp %s/tmp.XXXXXX)\ncat > \"$tmp\"\nmv \"$tmp\" \"%s/msg.${tmp##*.}\"\n", f.out, f.out)
	if err := os.WriteFile(mda, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	rc := fmt.Sprintf("set no syslog\npoll localhost %s\n  user %q password %q\n  sslcertfile %q\n  mda %q\n%s\n",
		poll, user, password, s.caFile(), mda, options)
	// fetchmail refuses an rc file that others can read.
	if err := os.WriteFile(f.rc, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// run runs fetchmail once and returns its output. wantMail false expects
// exit status 1 ("no mail").
func (f *fetchmailRun) run(t *testing.T, wantMail bool) string {
	t.Helper()
	env := []string{"HOME=" + f.home, "FETCHMAILHOME=" + f.home}
	// Run as root, fetchmail keeps its lock in /var/run whatever HOME
	// says, and concurrent runs would refuse to start ("another
	// foreground fetchmail is running").
	args := []string{"-v", "-f", f.rc, "--pidfile", filepath.Join(f.home, "fetchmail.pid")}
	if wantMail {
		return runClient(t, f.home, env, nil, f.bin, args...)
	}
	out := runClient(t, f.home, env, []int{1}, f.bin, args...)
	if !strings.Contains(out, "fetchmail: normal termination, status 1") && !strings.Contains(out, "No mail for") && !strings.Contains(out, "seen)") {
		t.Fatalf("fetchmail: expected no new mail")
	}
	return out
}

// received returns the messages the MDA wrote so far, keyed by Subject.
func (f *fetchmailRun) received(t *testing.T) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(f.out)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "msg.") {
			continue // still being written
		}
		raw, err := os.ReadFile(filepath.Join(f.out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		subj := headerValue(raw, "Subject")
		if _, dup := out[subj]; dup {
			t.Fatalf("fetchmail delivered %q twice", subj)
		}
		out[subj] = raw
	}
	return out
}

// checkSame compares what fetchmail delivered with what the server
// stored, byte for byte (with LF line ends, as fetchmail hands messages
// to an MDA), once the Received field fetchmail adds is taken out.
func checkSame(t *testing.T, got map[string][]byte, want map[string]stored) {
	t.Helper()
	if !slices.Equal(subjects(got), subjects(want)) {
		t.Fatalf("fetchmail delivered %v, want %v", subjects(got), subjects(want))
	}
	for subj, sm := range want {
		ours := 0
		g := dropFields(got[subj], func(field string) bool {
			if strings.HasPrefix(field, "Received:") && strings.Contains(field, "(fetchmail-") {
				ours++
				return true
			}
			return false
		})
		if ours != 1 {
			t.Errorf("%q: %d Received fields from fetchmail, want 1", subj, ours)
		}
		w := lf(sm.Raw)
		_, gb := splitMessage(g)
		_, wb := splitMessage(w)
		if !bytes.Equal(gb, wb) {
			t.Errorf("%q: body differs (%d bytes, stored %d):\n%q\nwant\n%q", subj, len(gb), len(wb), head(gb), head(wb))
		} else if !bytes.Equal(g, w) {
			t.Errorf("%q: header differs:\n%s\nwant\n%s", subj, head(g), head(w))
		}
	}
}

// TestFetchmail downloads with fetchmail over POP3 (keep with UIDL
// tracking, and delete after download) and over IMAP (sequence numbers,
// expunge after each message) and compares what arrives with what the
// server stored.
func TestFetchmail(t *testing.T) {
	bin := needClient(t, "fetchmail", "fetchmail")
	t.Parallel()
	s := startServer(t, serverConfig{})

	// deliverThree puts three messages into user's INBOX, one of them
	// large (kept outside SQLite) and all with a line that starts with a
	// dot, and returns them as stored.
	deliverThree := func(t *testing.T, user, tag string) map[string]stored {
		t.Helper()
		for i := 1; i <= 3; i++ {
			pad := 0
			if i == 2 {
				pad = 150 << 10
			}
			s.deliver(t, user, message("sender@example.org", user, fmt.Sprintf("%s %d", tag, i), pad))
		}
		return s.mailbox(t, user, "INBOX")
	}

	t.Run("POP3KeepUIDL", func(t *testing.T) {
		const user = "pop-keep@localhost"
		s.addUser(t, user)
		want := deliverThree(t, user, "keep")
		f := newFetchmail(t, bin, s, user, "port "+portOf(s.pop3)+" proto POP3 uidl", "  keep")
		out := f.run(t, true)
		if !strings.Contains(out, "POP3> STLS") || !strings.Contains(out, "upgrade to TLS succeeded") {
			t.Errorf("fetchmail did not use STLS")
		}
		checkSame(t, f.received(t), want)
		if got := s.mailbox(t, user, "INBOX"); !slices.Equal(subjects(got), subjects(want)) {
			t.Fatalf("keep: server INBOX now %v", subjects(got))
		}
		// UIDL: the next poll finds nothing new, then exactly one new
		// message.
		f.run(t, false)
		if n := len(f.received(t)); n != 3 {
			t.Fatalf("second poll delivered again: %d messages", n)
		}
		s.deliver(t, user, message("sender@example.org", user, "keep 4", 0))
		f.run(t, true)
		got := f.received(t)
		want = s.mailbox(t, user, "INBOX")
		checkSame(t, got, want)
	})

	t.Run("POP3SDelete", func(t *testing.T) {
		const user = "pop-del@localhost"
		s.addUser(t, user)
		want := deliverThree(t, user, "del")
		// Implicit TLS on the POP3S port; no keep: DELE, then QUIT
		// expunges.
		f := newFetchmail(t, bin, s, user, "port "+portOf(s.pop3s)+" proto POP3", "  ssl")
		out := f.run(t, true)
		if !strings.Contains(out, "POP3> DELE") {
			t.Errorf("fetchmail sent no DELE")
		}
		checkSame(t, f.received(t), want)
		if got := s.mailbox(t, user, "INBOX"); len(got) != 0 {
			t.Fatalf("after download without keep the server still has %v", subjects(got))
		}
		f.run(t, false)
	})

	t.Run("IMAPDelete", func(t *testing.T) {
		const user = "imap-del@localhost"
		s.addUser(t, user)
		want := deliverThree(t, user, "imap")
		f := newFetchmail(t, bin, s, user, "port "+portOf(s.imap)+" proto IMAP", "")
		out := f.run(t, true)
		if !strings.Contains(out, "STARTTLS") {
			t.Errorf("fetchmail did not use STARTTLS")
		}
		// fetchmail works on sequence numbers: it reads message 1,
		// expunges it, and reads the new message 1 again.
		if n := len(regexp.MustCompile(`IMAP> A\d+ FETCH 1 RFC822.HEADER`).FindAllString(out, -1)); n != 3 {
			t.Errorf("fetchmail fetched message 1 %d times, want 3 (one per message, expunging in between)", n)
		}
		if n := len(regexp.MustCompile(`IMAP> A\d+ EXPUNGE`).FindAllString(out, -1)); n < 3 {
			t.Errorf("fetchmail expunged %d times, want one per message", n)
		}
		checkSame(t, f.received(t), want)
		if got := s.mailbox(t, user, "INBOX"); len(got) != 0 {
			t.Fatalf("after download without keep the server still has %v", subjects(got))
		}
		f.run(t, false)
	})

	t.Run("IMAPKeep", func(t *testing.T) {
		const user = "imap-keep@localhost"
		s.addUser(t, user)
		want := deliverThree(t, user, "imapkeep")
		f := newFetchmail(t, bin, s, user, "port "+portOf(s.imap)+" proto IMAP", "  keep")
		f.run(t, true)
		checkSame(t, f.received(t), want)
		after := s.mailbox(t, user, "INBOX")
		if !slices.Equal(subjects(after), subjects(want)) {
			t.Fatalf("keep: server INBOX now %v", subjects(after))
		}
		for subj, m := range after {
			if !m.hasFlag(imap.FlagSeen) {
				t.Errorf("%q not \\Seen after fetchmail read it: %v", subj, m.Flags)
			}
		}
		// Seen messages are not fetched again.
		f.run(t, false)
		if n := len(f.received(t)); n != 3 {
			t.Fatalf("second poll delivered again: %d messages", n)
		}
	})
}

// TestFetchmailIdle keeps fetchmail in IMAP IDLE (daemon mode in the
// foreground, polling only every 10 minutes) and checks that a delivery
// reaches it through IDLE: the server's untagged EXISTS ends the wait, and
// fetchmail fetches the new message at once.
func TestFetchmailIdle(t *testing.T) {
	bin := needClient(t, "fetchmail", "fetchmail")
	t.Parallel()
	s := startServer(t, serverConfig{})
	const user = "fetchmail-idle@localhost"
	s.addUser(t, user)
	s.deliver(t, user, message("sender@example.org", user, "idle 1", 0))
	f := newFetchmail(t, bin, s, user, "port "+portOf(s.imap)+" proto IMAP", "")

	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-v", "-N", "-d", "600", "--idle", "-f", f.rc,
		"--pidfile", filepath.Join(f.home, "fetchmail.pid"))
	cmd.Dir = f.home
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "TZ=UTC", "HOME=" + f.home, "FETCHMAILHOME=" + f.home}
	var out testharness.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		// SIGTERM: fetchmail leaves IDLE and logs out.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("fetchmail output:\n%s", tail(out.String(), 200))
		}
	})
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			select {
			case <-done:
				t.Fatalf("fetchmail exited while waiting for %s", what)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	idles := func() int { return len(regexp.MustCompile(`IMAP< \+ `).FindAllString(out.String(), -1)) }

	waitFor("the first message", func() bool { return len(f.received(t)) == 1 })
	waitFor("IDLE", func() bool { return idles() >= 1 })
	s.deliver(t, user, message("sender@example.org", user, "idle 2", 0))
	waitFor("the message delivered during IDLE", func() bool { return len(f.received(t)) == 2 })
	if !strings.Contains(out.String(), "IMAP> DONE") {
		t.Errorf("fetchmail fetched the new message without leaving IDLE")
	}
	if got := subjects(f.received(t)); !slices.Equal(got, []string{"idle 1", "idle 2"}) {
		t.Errorf("received %v", got)
	}
	// fetchmail marks the message deleted and expunges it after the MDA
	// returns; then it goes back to IDLE. An APPEND by another IMAP
	// session wakes it too.
	waitFor("the expunge and the next IDLE", func() bool { return idles() >= 2 })
	s.appendMsg(t, user, "INBOX", message(user, user, "idle 3", 0))
	waitFor("the message appended during IDLE", func() bool { return len(f.received(t)) == 3 })
	waitFor("the expunge and the next IDLE", func() bool { return idles() >= 3 })
	if got := s.mailbox(t, user, "INBOX"); len(got) != 0 {
		t.Errorf("server INBOX still has %v", subjects(got))
	}
}

// TestFetchmailPOP3Policies downloads with fetchmail from a server whose
// POP3 after-download policy is "trash", with mark_seen_on_retr, and from
// an account whose own policy is "keep" (issue 4), and checks what IMAP
// sees afterwards.
func TestFetchmailPOP3Policies(t *testing.T) {
	bin := needClient(t, "fetchmail", "fetchmail")
	t.Parallel()
	s := startServer(t, serverConfig{POP3: "after_download = \"trash\"\nmark_seen_on_retr = true"})
	deliver := func(t *testing.T, user, tag string) map[string]stored {
		t.Helper()
		for i := 1; i <= 2; i++ {
			s.deliver(t, user, message("sender@example.org", user, fmt.Sprintf("%s %d", tag, i), 0))
		}
		return s.mailbox(t, user, "INBOX")
	}

	// fetchmail reads with "TOP n 99999999" instead of RETR whenever it
	// can, so that servers do not mark messages read (with keep, only
	// when it tracks UIDLs itself); mark_seen_on_retr counts RETR only,
	// as Dovecot's POP3 server does, so they stay unseen.
	t.Run("ClientKeepUsesTOP", func(t *testing.T) {
		const user = "policy-top@localhost"
		s.addUser(t, user)
		want := deliver(t, user, "top")
		f := newFetchmail(t, bin, s, user, "port "+portOf(s.pop3)+" proto POP3 uidl", "  keep")
		out := f.run(t, true)
		if !strings.Contains(out, "POP3> TOP 1 ") || strings.Contains(out, "POP3> RETR") {
			t.Errorf("fetchmail with keep is expected to read with TOP, not RETR")
		}
		checkSame(t, f.received(t), want)
		for subj, m := range s.mailbox(t, user, "INBOX") {
			if m.hasFlag(imap.FlagSeen) {
				t.Errorf("%q \\Seen after TOP: %v", subj, m.Flags)
			}
		}
	})

	t.Run("Trash", func(t *testing.T) {
		const user = "policy-trash@localhost"
		s.addUser(t, user)
		want := deliver(t, user, "trash")
		f := newFetchmail(t, bin, s, user, "port "+portOf(s.pop3)+" proto POP3", "")
		f.run(t, true)
		checkSame(t, f.received(t), want)
		if got := s.mailbox(t, user, "INBOX"); len(got) != 0 {
			t.Errorf("INBOX after DELE with the trash policy: %v", subjects(got))
		}
		trash := s.mailbox(t, user, "Trash")
		if !slices.Equal(subjects(trash), subjects(want)) {
			t.Fatalf("Trash: %v, want %v", subjects(trash), subjects(want))
		}
		for subj, m := range want {
			if !bytes.Equal(trash[subj].Raw, m.Raw) {
				t.Errorf("%q changed on its way to Trash", subj)
			}
		}
	})

	t.Run("AccountKeep", func(t *testing.T) {
		const user = "policy-keep@localhost"
		s.addUser(t, user)
		s.setPolicy(t, user, "keep")
		want := deliver(t, user, "kept")
		// fetchall makes fetchmail use RETR.
		f := newFetchmail(t, bin, s, user, "port "+portOf(s.pop3)+" proto POP3", "  fetchall")
		out := f.run(t, true)
		if !strings.Contains(out, "POP3> RETR 1") || !strings.Contains(out, "POP3> DELE") {
			t.Errorf("fetchmail sent no RETR or no DELE")
		}
		checkSame(t, f.received(t), want)
		// IMAP still sees them, read (mark_seen_on_retr); POP3 does not
		// any more.
		got := s.mailbox(t, user, "INBOX")
		if !slices.Equal(subjects(got), subjects(want)) {
			t.Errorf("INBOX with the keep policy: %v, want %v", subjects(got), subjects(want))
		}
		for subj, m := range got {
			if !m.hasFlag(imap.FlagSeen) {
				t.Errorf("%q not \\Seen after RETR with mark_seen_on_retr: %v", subj, m.Flags)
			}
		}
		f.run(t, false)
		if n := len(f.received(t)); n != 2 {
			t.Errorf("the second download got kept messages again: %d", n)
		}
	})
}
