package realclients

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestMbsync syncs an account with several folders both ways with mbsync
// (isync) over STARTTLS and checks both sides after each step.
//
// mbsync reads capabilities from the greeting and the AUTHENTICATE OK
// only, pipelines UID FETCHes, appends with LITERAL+, asks for UID ranges
// past the last message and expunges only through CLOSE (issue 3). Debian
// 12's isync 1.4 keeps mailbox names in modified UTF-7 on the Maildir side
// (1.5 converts them), so the non-ASCII folder is "Entw&APw-rfe" locally.
func TestMbsync(t *testing.T) {
	mbsync := needClient(t, "mbsync", "isync")
	t.Parallel()
	s := startServer(t, serverConfig{})
	const user = "mbsync@localhost"
	s.addUser(t, user)

	// Server side: three messages in INBOX (one large enough to be kept
	// in a file outside SQLite), a hierarchy, a non-ASCII folder.
	for i := 1; i <= 3; i++ {
		pad := 0
		if i == 3 {
			pad = 100 << 10
		}
		s.deliver(t, user, message("sender@example.org", user, fmt.Sprintf("inbox %d", i), pad))
	}
	c := s.imapLogin(t, user)
	for _, name := range []string{"Work", "Work/Projects", "Entwürfe"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", name, err)
		}
	}
	c.Logout()
	// Enough messages in one folder that mbsync pipelines its UID
	// FETCHes (and, below, its APPENDs).
	work := []string{message(user, user, "work 1", 0)}
	for i := range 40 {
		work = append(work, message(user, user, fmt.Sprintf("work bulk %02d", i), i*512))
	}
	s.appendAll(t, user, "Work", work)
	s.appendMsg(t, user, "Work/Projects", message(user, user, "projects 1", 0), imap.FlagFlagged)
	s.appendMsg(t, user, "Entwürfe", message(user, user, "draft 1", 0), imap.FlagDraft, imap.FlagSeen)
	// A name with a space (quoted in LIST) and "&" ("&-" in modified
	// UTF-7), made with raw lines (see runRaw).
	const trouble = "Work/&AMQ-rger &- Co" // "Work/Ärger & Co"
	troubleMsg := message(user, user, "trouble 1", 0)
	lc := s.rawIMAP(t, user)
	runRaw(t, lc, fmt.Sprintf("CREATE %q", trouble))
	runRaw(t, lc, fmt.Sprintf("APPEND %q (\\Answered) {%d+}\r\n%s", trouble, len(troubleMsg), troubleMsg))
	lc.Close()

	m := newMbsync(t, mbsync, s, user)
	mail := m.mail
	sync := func(step string) { t.Helper(); m.sync(t, step) }

	// 1. First pull: every folder and message arrives, byte for byte
	// (Maildir uses LF line ends), with flags as file name suffixes.
	sync("first pull")
	for _, box := range []struct{ server, local string }{
		{"INBOX", "INBOX"}, {"Work", "Work"}, {"Work/Projects", "Work/Projects"},
		{"Entwürfe", "Entw&APw-rfe"},
	} {
		srv := s.mailbox(t, user, box.server)
		loc := readMaildir(t, filepath.Join(mail, box.local))
		if len(srv) != len(loc) {
			t.Fatalf("%s: server has %d messages, Maildir %d", box.server, len(srv), len(loc))
		}
		for subj, sm := range srv {
			lm, ok := loc[subj]
			if !ok {
				t.Fatalf("%s: %q not pulled", box.server, subj)
			}
			// mbsync marks every message it copies with an X-TUID
			// header, in both directions.
			if !bytes.Equal(lf(sm.Raw), withoutHeader(lm.Raw, "X-TUID")) {
				t.Errorf("%s: %q differs:\nserver %q\nlocal  %q", box.server, subj, head(sm.Raw), head(lm.Raw))
			}
			if want := maildirFlags(sm.Flags); lm.Flags != want {
				t.Errorf("%s: %q has local flags %q, server %v", box.server, subj, lm.Flags, sm.Flags)
			}
		}
	}
	// CopyArrivalDate: the file's mtime is the server's INTERNALDATE.
	for subj, sm := range s.mailbox(t, user, "INBOX") {
		fi, err := os.Stat(readMaildir(t, filepath.Join(mail, "INBOX"))[subj].Path)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(sm.Date) {
			t.Errorf("%q: local mtime %v, server INTERNALDATE %v", subj, fi.ModTime().UTC(), sm.Date.UTC())
		}
	}
	if f := readMaildir(t, filepath.Join(mail, "Work", "Projects"))["projects 1"].Flags; f != "F" {
		t.Errorf("projects 1: local flags %q, want F", f)
	}
	if f := readMaildir(t, filepath.Join(mail, "Entw&APw-rfe"))["draft 1"].Flags; f != "DS" {
		t.Errorf("draft 1: local flags %q, want DS", f)
	}
	// isync 1.4 keeps the modified UTF-7 name as the directory name.
	if got := readMaildir(t, filepath.Join(mail, trouble)); len(got) != 1 || got["trouble 1"].Flags != "R" ||
		!bytes.Equal(withoutHeader(got["trouble 1"].Raw, "X-TUID"), lf([]byte(troubleMsg))) {
		t.Errorf("%s: pulled %v, flags %q", trouble, subjects(got), got["trouble 1"].Flags)
	}

	// 2. Local changes pushed: a new message, a flag change, a deletion,
	// a new folder under an existing one, a dozen new messages at once.
	inbox := readMaildir(t, filepath.Join(mail, "INBOX"))
	localBulk := map[string]string{}
	for i := range 12 {
		subj := fmt.Sprintf("local bulk %02d", i)
		localBulk[subj] = message(user, user, subj, i*1024)
		writeMaildirMsg(t, filepath.Join(mail, "Work"), fmt.Sprintf("1800000100.B%d.realclients", i), string(lf([]byte(localBulk[subj]))))
	}
	localNew := message(user, user, "local new", 0)
	writeMaildirMsg(t, filepath.Join(mail, "INBOX"), "1800000000.R1.realclients", string(lf([]byte(localNew))))
	// Its arrival date, which mbsync sends as APPEND's date-time.
	arrival := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(mail, "INBOX", "new", "1800000000.R1.realclients"), arrival, arrival); err != nil {
		t.Fatal(err)
	}
	setMaildirFlags(t, inbox["inbox 1"], "FS")
	if err := os.Remove(inbox["inbox 2"].Path); err != nil {
		t.Fatal(err)
	}
	localFolder := message(user, user, "local folder", 0)
	writeMaildirMsg(t, filepath.Join(mail, "Work", "Local"), "1800000001.R2.realclients", string(lf([]byte(localFolder))))
	sync("push local changes")

	srvInbox := s.mailbox(t, user, "INBOX")
	if got := subjects(srvInbox); !slices.Equal(got, []string{"inbox 1", "inbox 3", "local new"}) {
		t.Fatalf("server INBOX after push: %v", got)
	}
	if m := srvInbox["inbox 1"]; !m.hasFlag(imap.FlagSeen) || !m.hasFlag(imap.FlagFlagged) {
		t.Errorf("inbox 1 on the server: flags %v, want \\Flagged \\Seen", m.Flags)
	}
	if d := srvInbox["local new"].Date; !d.Equal(arrival) {
		t.Errorf("local new on the server: INTERNALDATE %v, want %v", d.UTC(), arrival)
	}
	if got := withoutHeader(srvInbox["local new"].Raw, "X-TUID"); !bytes.Equal(got, []byte(localNew)) {
		t.Errorf("local new on the server:\n%q\nwant\n%q", head(got), head([]byte(localNew)))
	}
	srvWork := s.mailbox(t, user, "Work")
	if len(srvWork) != 41+len(localBulk) {
		t.Errorf("server Work has %d messages after the push, want %d", len(srvWork), 41+len(localBulk))
	}
	for subj, msg := range localBulk {
		if got := withoutHeader(srvWork[subj].Raw, "X-TUID"); !bytes.Equal(got, []byte(msg)) {
			t.Errorf("%s on the server:\n%q\nwant\n%q", subj, head(got), head([]byte(msg)))
		}
	}
	if !slices.Contains(s.mailboxNames(t, user), "Work/Local") {
		t.Fatalf("Work/Local not created on the server: %v", s.mailboxNames(t, user))
	}
	if got := s.mailbox(t, user, "Work/Local"); len(got) != 1 || !bytes.Equal(withoutHeader(got["local folder"].Raw, "X-TUID"), []byte(localFolder)) {
		t.Errorf("Work/Local on the server: %v", subjects(got))
	}

	// 3. Server changes pulled: an LMTP delivery, a flag set by another
	// IMAP session, an expunge.
	s.deliver(t, user, message("sender@example.org", user, "inbox 4", 0))
	c = s.imapLogin(t, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(srvInbox["inbox 3"].UID), &imap.StoreFlags{
		Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagAnswered},
	}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Work/Projects", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{
		Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted},
	}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	c.Logout()
	sync("pull server changes")

	loc := readMaildir(t, filepath.Join(mail, "INBOX"))
	if got := subjects(loc); !slices.Equal(got, []string{"inbox 1", "inbox 3", "inbox 4", "local new"}) {
		t.Fatalf("local INBOX after pull: %v", got)
	}
	if f := loc["inbox 3"].Flags; f != "R" {
		t.Errorf("inbox 3: local flags %q, want R (\\Answered set on the server)", f)
	}
	if f := loc["inbox 1"].Flags; f != "FS" {
		t.Errorf("inbox 1: local flags %q, want FS", f)
	}
	if want := lf(s.mailbox(t, user, "INBOX")["inbox 4"].Raw); !bytes.Equal(withoutHeader(loc["inbox 4"].Raw, "X-TUID"), want) {
		t.Errorf("inbox 4 pulled:\n%q\nwant\n%q", head(loc["inbox 4"].Raw), head(want))
	}
	if got := readMaildir(t, filepath.Join(mail, "Work", "Projects")); len(got) != 0 {
		t.Errorf("Work/Projects still has %v locally after the server's expunge", subjects(got))
	}

	// 4. Nothing changed: another sync, this time over implicit TLS,
	// moves nothing.
	before := s.mailbox(t, user, "INBOX")
	m.implicitTLS = true
	sync("no-op over IMAPS")
	after := s.mailbox(t, user, "INBOX")
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("a sync without changes changed the server's INBOX:\n%v\n%v", subjects(before), subjects(after))
	}
	if got := readMaildir(t, filepath.Join(mail, "INBOX")); !slices.Equal(subjects(got), subjects(after)) {
		t.Errorf("Maildir %v, server %v", subjects(got), subjects(after))
	}
}

// maildirFlags maps IMAP system flags to Maildir info letters, in ASCII
// order.
func maildirFlags(flags []string) string {
	letters := ""
	for _, f := range []struct {
		flag   imap.Flag
		letter string
	}{{imap.FlagDraft, "D"}, {imap.FlagFlagged, "F"}, {imap.FlagAnswered, "R"}, {imap.FlagSeen, "S"}, {imap.FlagDeleted, "T"}} {
		if slices.ContainsFunc(flags, func(g string) bool { return imap.Flag(g) == f.flag }) {
			letters += f.letter
		}
	}
	return letters
}

// subjects lists the keys of a map of messages, sorted.
func subjects[M any](m map[string]M) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// head is the start of a message, for failure output.
func head(b []byte) []byte {
	if len(b) > 600 {
		return b[:600]
	}
	return b
}

// mbsyncRun is one account's mbsync set-up: a Maildir under home/mail
// with every folder of the server in one channel (Create, Remove and
// Expunge both ways, arrival dates copied), over STARTTLS or implicit TLS
// trusting the server's generated certificate.
type mbsyncRun struct {
	bin, home, mail, rc string
	s                   *server
	user                string
	implicitTLS         bool // use the IMAPS port
}

func newMbsync(t *testing.T, bin string, s *server, user string) *mbsyncRun {
	t.Helper()
	home := t.TempDir()
	m := &mbsyncRun{bin: bin, home: home, mail: filepath.Join(home, "mail"), rc: filepath.Join(home, "mbsyncrc"), s: s, user: user}
	if err := os.MkdirAll(m.mail, 0o700); err != nil {
		t.Fatal(err)
	}
	return m
}

// sync runs `mbsync -a` once and returns its output.
func (m *mbsyncRun) sync(t *testing.T, step string) string {
	t.Helper()
	port, tlsType := portOf(m.s.imap), "STARTTLS"
	if m.implicitTLS {
		port, tlsType = portOf(m.s.imaps), "IMAPS"
	}
	cfg := fmt.Sprintf(`IMAPAccount skrytka
Host localhost
Port %s
User %s
Pass %s
SSLType %s
CertificateFile %s

IMAPStore remote
Account skrytka

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Remove Both
Expunge Both
SyncState *
CopyArrivalDate yes
`, port, m.user, password, tlsType, m.s.caFile(), m.mail, m.mail)
	if err := os.WriteFile(m.rc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("mbsync: %s", step)
	out := runClient(t, m.home, []string{"HOME=" + m.home}, nil, m.bin, "-V", "-c", m.rc, "-a")
	if !strings.Contains(out, "Connection is now encrypted") {
		t.Errorf("mbsync did not use TLS")
	}
	return out
}
