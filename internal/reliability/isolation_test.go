package reliability

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/testharness"
)

// bSecret is text only user B's mail contains.
const bSecret = "zebra-secret-of-b"

// isolationStack has users a and b; b has INBOX messages with UIDs 1..5
// and a mailbox "SecretB/Deep" with one message, a has one message.
func isolationStack(t *testing.T, o stackOpts) (*stack, store.Account, store.Account) {
	t.Helper()
	s := startStack(t, o)
	a := s.addUser(t, "a@localhost")
	b := s.addUser(t, "b@localhost")
	appendMsg(t, s.Store, a, "INBOX", "Subject: a's own\r\n\r\nhello a\r\n")
	for i := 0; i < 5; i++ {
		appendMsg(t, s.Store, b, "INBOX", "Subject: b "+bSecret+"\r\n\r\n"+bSecret+"\r\n")
	}
	if _, err := s.Store.CreateMailbox(context.Background(), b.ID, "SecretB/Deep", ""); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, s.Store, b, "SecretB/Deep", "Subject: deep\r\n\r\n"+bSecret+"\r\n")
	return s, a, b
}

// snapshot renders an account's mailboxes with their counters and
// modseqs, to check that another user's attempts changed nothing.
func snapshot(t *testing.T, st store.Store, acct store.Account) string {
	t.Helper()
	mbs, err := st.Mailboxes(context.Background(), acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range mbs {
		fmt.Fprintf(&b, "%s %d %d %d %d %d %d\n", m.Name, m.Messages, m.Unseen, m.Deleted, m.UIDNext, m.HighestModSeq, m.Size)
	}
	return b.String()
}

// TestIsolationIMAP: as a, every way of naming b's mailboxes gets the same
// answer as a name that never existed, no listing shows them, and UIDs
// that exist only in b's INBOX give nothing.
func TestIsolationIMAP(t *testing.T) {
	forBackends(t, func(t *testing.T, o stackOpts) {
		s, _, b := isolationStack(t, o)
		before := snapshot(t, s.Store, b)
		lc := testharness.Dial(t, s.IMAPAddr)
		lc.Expect("* OK")
		lc.Send(`p LOGIN a@localhost "%s"`, testPass)
		lc.ExpectUntil("p OK")
		tagged := regexp.MustCompile(`^t\d+ `)
		n := 0
		// cmd runs one command and returns all lines, the tag replaced by "T".
		cmd := func(line string) []string {
			t.Helper()
			n++
			tag := "t" + strconv.Itoa(n)
			lc.Send("%s %s", tag, line)
			lines := lc.ExpectUntil(tag + " ")
			out := make([]string, len(lines))
			for i, l := range lines {
				out[i] = tagged.ReplaceAllString(l, "T ")
			}
			return out
		}
		noLeak := func(what string, lines []string) {
			t.Helper()
			for _, l := range lines {
				if strings.Contains(l, "SecretB") || strings.Contains(l, "Deep") || strings.Contains(l, bSecret) || strings.Contains(l, "b@localhost") {
					t.Errorf("%s leaked: %q", what, l)
				}
			}
		}
		for _, l := range [][2]string{
			{`""`, `*`}, {`""`, `%`}, {`""`, `%/%`}, {`"*"`, `*`}, {`"/"`, `*`}, {`"~b@localhost/"`, `*`},
			{`"../"`, `*`}, {`""`, `../*`}, {`"#shared/"`, `*`}, {`""`, `SecretB*`}, {`""`, `*Deep`},
		} {
			noLeak("LIST "+l[0]+" "+l[1], cmd("LIST "+l[0]+" "+l[1]))
			noLeak("LSUB "+l[0]+" "+l[1], cmd("LSUB "+l[0]+" "+l[1]))
		}
		noLeak("LIST-EXTENDED", cmd(`LIST (SUBSCRIBED REMOTE) "" * RETURN (STATUS (MESSAGES) CHILDREN)`))
		noLeak("NAMESPACE", cmd("NAMESPACE"))

		// Existence oracle: b's names and never-existing names get the same
		// replies.
		for _, tmpl := range []string{
			"SELECT %s", "EXAMINE %s", "STATUS %s (MESSAGES UIDNEXT)", "DELETE %s",
			"RENAME %s Stolen", "APPEND %s {3+}\r\nhi\n", "UNSUBSCRIBE %s",
		} {
			var first []string
			for i, name := range []string{"NeverExisted/Deep", "SecretB/Deep", "../b@localhost/SecretB/Deep", "b@localhost/SecretB", "~b@localhost/SecretB", "/SecretB"} {
				if strings.HasPrefix(name, "~") {
					name = `"` + name + `"`
				}
				got := cmd(strings.Replace(tmpl, "%s", name, 1))
				noLeak(tmpl, got)
				if len(got) == 0 || strings.HasPrefix(got[len(got)-1], "T OK") && !strings.HasPrefix(tmpl, "UNSUBSCRIBE") {
					t.Errorf("%s with %s: %q (want a failure)", tmpl, name, got)
				}
				if i == 0 {
					first = got
				} else if i == 1 && strings.Join(got, "\n") != strings.Join(first, "\n") {
					t.Errorf("%s: reply for b's name %q differs from a never-existing name %q", tmpl, got, first)
				}
			}
		}
		// COPY and MOVE into b's mailboxes by name.
		cmd("SELECT INBOX")
		for _, c := range []string{"COPY 1 SecretB/Deep", "MOVE 1 SecretB/Deep", "UID COPY 1 ../b@localhost/INBOX", "COPY 1 \"~b@localhost/INBOX\""} {
			got := cmd(c)
			if !strings.HasPrefix(got[len(got)-1], "T NO") {
				t.Errorf("%s: %q", c, got)
			}
		}
		// UID tricks: b's INBOX has UIDs 1..5, a's only 1.
		for _, c := range []string{
			"UID FETCH 1:* (UID BODY.PEEK[])", "UID FETCH 2:5 (BODY.PEEK[])", "UID FETCH 4294967295 (BODY.PEEK[])",
			"FETCH 1:* (BODY.PEEK[])", "UID SEARCH TEXT " + bSecret, "SEARCH BODY " + bSecret, "UID SEARCH UID 2:5",
			"UID STORE 2:5 +FLAGS (\\Deleted)", "UID EXPUNGE 2:5", "UID COPY 2:5 Trash", "UID MOVE 2:5 Trash",
		} {
			got := cmd(c)
			noLeak(c, got)
			fetches := 0
			for _, l := range got {
				if strings.HasPrefix(l, "* ") && strings.Contains(l, " FETCH ") {
					fetches++
				}
				if strings.HasPrefix(l, "* SEARCH ") || strings.HasPrefix(l, "* ESEARCH") {
					t.Errorf("%s found something: %q", c, l)
				}
			}
			if fetches > 1 {
				t.Errorf("%s: %d FETCH responses for a mailbox with one message: %q", c, fetches, got)
			}
		}
		cmd("LOGOUT")
		if after := snapshot(t, s.Store, b); after != before {
			t.Errorf("b's mailboxes changed:\nbefore\n%s\nafter\n%s", before, after)
		}
	})
}

// TestIsolationPOP3: a's maildrop holds only a's message, and b's
// messages cannot be reached by number.
func TestIsolationPOP3(t *testing.T) {
	forBackends(t, func(t *testing.T, o stackOpts) {
		s, _, b := isolationStack(t, o)
		before := snapshot(t, s.Store, b)
		w, err := pop3Login(s.POP3Addr, "a@localhost", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.send("STAT\r\n")
		if l, _ := w.line(); !strings.HasPrefix(l, "+OK 1 ") {
			t.Errorf("STAT %q, want one message", l)
		}
		for _, c := range []string{"RETR 1", "RETR 2", "RETR 5", "TOP 3 10", "LIST 2", "UIDL 2", "DELE 2"} {
			w.send(c + "\r\n")
			l, _ := w.line()
			if strings.HasPrefix(l, "+OK") && (c == "RETR 1") {
				body, _ := w.multiline()
				if strings.Contains(strings.Join(body, "\n"), bSecret) {
					t.Errorf("%s returned b's mail", c)
				}
				continue
			}
			if strings.HasPrefix(l, "+OK") {
				t.Errorf("%s: %q", c, l)
			}
		}
		w.send("QUIT\r\n")
		w.line()
		// A USER name pointing elsewhere cannot log in with a's password.
		for _, u := range []string{"a@localhost/../b@localhost", "b@localhost\x00a@localhost", "*", "b@localhost%a@localhost"} {
			w, err := pop3Login(s.POP3Addr, u, 5*time.Second)
			if err == nil {
				w.Close()
				t.Errorf("login as %q with a's password succeeded", u)
			}
		}
		if after := snapshot(t, s.Store, b); after != before {
			t.Errorf("b's mailboxes changed")
		}
	})
}

// TestIsolationSMTP: outsiders and a alike can deliver to b but only into
// b's INBOX: sub-address tags and path tricks never pick b's folders or
// reach another account.
func TestIsolationSMTP(t *testing.T) {
	forBackends(t, func(t *testing.T, o stackOpts) {
		s, a, b := isolationStack(t, o)
		w, err := dialWire(s.SMTPAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.reply()
		w.smtpCmd("EHLO x.example.org")
		w.smtpCmd("MAIL FROM:<x@example.org>")
		for _, r := range []string{"a+SecretB@localhost", "a+../../b@localhost", "a+b@localhost"} {
			if code, l, _ := w.smtpCmd("RCPT TO:<" + r + ">"); code != 250 {
				t.Errorf("RCPT %s: %q", r, l)
			}
		}
		if code, _, _ := w.smtpCmd("DATA"); code != 354 {
			t.Fatal("DATA refused")
		}
		w.send("Subject: tagged\r\n\r\nfor a only\r\n.\r\n")
		if code, l, _ := w.reply(); code != 250 {
			t.Fatalf("delivery: %q", l)
		}
		ctx := context.Background()
		mbB, _ := s.Store.Mailbox(ctx, b.ID, "SecretB/Deep")
		inB, _ := s.Store.Mailbox(ctx, b.ID, "INBOX")
		if mbB.Messages != 1 || inB.Messages != 5 {
			t.Errorf("b's mailboxes got mail addressed to a: SecretB/Deep %d, INBOX %d", mbB.Messages, inB.Messages)
		}
		inA, _ := s.Store.Mailbox(ctx, a.ID, "INBOX")
		if inA.Messages != 2 {
			t.Errorf("a's INBOX has %d messages, want 2", inA.Messages)
		}
	})
}

// TestIsolationStoreSweep plays an attacker who knows a's account ID and
// tries every mailbox ID and UID the store has handed out: everything not
// a's is ErrNotFound, and a's change feed carries nothing of b's.
func TestIsolationStoreSweep(t *testing.T) {
	forBackends(t, func(t *testing.T, o stackOpts) {
		s, a, b := isolationStack(t, o)
		ctx := context.Background()
		st := s.Store
		sub, err := st.Subscribe(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		own := map[store.MailboxID]bool{}
		aboxes, _ := st.Mailboxes(ctx, a.ID)
		for _, m := range aboxes {
			own[m.ID] = true
		}
		bboxes, _ := st.Mailboxes(ctx, b.ID)
		maxID := store.MailboxID(0)
		for _, m := range append(aboxes, bboxes...) {
			maxID = max(maxID, m.ID)
		}
		all := store.UIDSet{{Start: 1, Stop: 1<<32 - 1}}
		nf := func(what string, id store.MailboxID, err error) {
			t.Helper()
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s(a, mailbox %d): %v, want ErrNotFound", what, id, err)
			}
		}
		ain, _ := st.Mailbox(ctx, a.ID, "INBOX")
		for id := store.MailboxID(-1); id <= maxID+3; id++ {
			if own[id] {
				continue
			}
			_, err := st.MailboxByID(ctx, a.ID, id)
			nf("MailboxByID", id, err)
			_, _, err = st.SelectState(ctx, a.ID, id)
			nf("SelectState", id, err)
			err = st.Messages(ctx, a.ID, id, all, store.FetchOptions{Parsed: true}, func(m *store.Message) error {
				t.Errorf("Messages leaked UID %d of mailbox %d", m.UID, id)
				return nil
			})
			nf("Messages", id, err)
			for uid := store.UID(1); uid <= 6; uid++ {
				r, err := st.OpenMessage(ctx, a.ID, id, uid)
				if err == nil {
					r.Close()
				}
				nf("OpenMessage", id, err)
			}
			_, err = st.Changes(ctx, a.ID, id, 0)
			nf("Changes", id, err)
			_, err = st.SearchText(ctx, a.ID, id, nil, store.TextAll, bSecret)
			nf("SearchText", id, err)
			_, err = st.SetFlags(ctx, a.ID, id, all, store.FlagsAdd, store.Flags{Sys: store.FlagDeleted}, 0)
			nf("SetFlags", id, err)
			_, err = st.Expunge(ctx, a.ID, id, all)
			nf("Expunge", id, err)
			_, err = st.Copy(ctx, a.ID, id, ain.ID, all)
			nf("Copy from", id, err)
			_, err = st.Copy(ctx, a.ID, ain.ID, id, all)
			nf("Copy into", id, err)
			_, err = st.Move(ctx, a.ID, id, ain.ID, all)
			nf("Move from", id, err)
			_, err = st.Move(ctx, a.ID, ain.ID, id, all)
			nf("Move into", id, err)
			_, err = st.ClaimRecent(ctx, a.ID, id)
			nf("ClaimRecent", id, err)
			staged, err := st.Stage(ctx, strings.NewReader("Subject: intruder\r\n\r\nx\r\n"), 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Append(ctx, a.ID, id, []store.AppendMessage{{Body: staged}})
			staged.Discard()
			nf("Append", id, err)
		}
		for _, name := range []string{"SecretB", "SecretB/Deep"} {
			_, err := st.Mailbox(ctx, a.ID, name)
			nf("Mailbox "+name, 0, err)
			nf("DeleteMailbox "+name, 0, st.DeleteMailbox(ctx, a.ID, name))
			nf("RenameMailbox "+name, 0, st.RenameMailbox(ctx, a.ID, name, "Mine"))
		}
		// Activity in b's account must not reach a's subscription.
		appendMsg(t, st, b, "INBOX", "Subject: later\r\n\r\n"+bSecret+"\r\n")
		st.SetFlags(ctx, b.ID, bboxes[0].ID, all, store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0)
		select {
		case c := <-sub.C():
			t.Errorf("a's subscription got b's change %+v", c)
		case <-time.After(300 * time.Millisecond):
		}
		inB, _ := st.Mailbox(ctx, b.ID, "INBOX")
		if inB.Messages != 6 {
			t.Errorf("b's INBOX has %d messages, want 6", inB.Messages)
		}
	})
}
