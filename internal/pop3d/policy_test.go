package pop3d

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// mailboxBySpecialUse finds the account's mailbox with use.
func (e *env) mailboxBySpecialUse(use store.SpecialUse) store.Mailbox {
	e.t.Helper()
	boxes, err := e.st.Mailboxes(context.Background(), e.acct.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mb := range boxes {
		if mb.SpecialUse == use {
			return mb
		}
	}
	e.t.Fatalf("no %s mailbox", use)
	return store.Mailbox{}
}

func (e *env) mailboxUIDs(mbox store.MailboxID) []store.UID {
	e.t.Helper()
	_, uids, err := e.st.SelectState(context.Background(), e.acct.ID, mbox)
	if err != nil {
		e.t.Fatal(err)
	}
	return uids
}

// subscribe returns the account's change feed.
func (e *env) subscribe() store.Subscription {
	e.t.Helper()
	sub, err := e.st.Subscribe(context.Background(), e.acct.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(sub.Close)
	return sub
}

// nextChange waits for a change of kind in mbox.
func nextChange(t *testing.T, sub store.Subscription, kind store.ChangeKind, mbox store.MailboxID) store.Change {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ch := <-sub.C():
			if ch.Kind == kind && ch.Mailbox == mbox {
				return ch
			}
		case <-timeout:
			t.Fatalf("no change of kind %d in mailbox %d", kind, mbox)
		}
	}
}

// downloadAndDelete logs in, retrieves message 1, deletes messages 1 and 2
// and quits.
func (e *env) downloadAndDelete() {
	e.t.Helper()
	c := e.login()
	c.cmd("RETR 1").expectPrefix("+OK")
	c.multiline()
	c.cmd("DELE 1").expectPrefix("+OK")
	c.cmd("DELE 2").expectPrefix("+OK")
	c.cmd("QUIT").expect("+OK pop.example.org POP3 server signing off (2 messages deleted)")
	c.expectClosed()
}

func TestPolicyExpunge(t *testing.T) {
	e := newEnv(t, nil) // the default
	u1 := deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	u2 := deliver(t, e.st, e.acct, e.inbox.ID, msg2)
	u3 := deliver(t, e.st, e.acct, e.inbox.ID, msg3)
	sub := e.subscribe()
	e.downloadAndDelete()
	// One atomic expunge of both, as an IMAP session sees it.
	ch := nextChange(t, sub, store.ChangeExpunge, e.inbox.ID)
	if len(ch.UIDs) != 2 || ch.UIDs[0] != u1 || ch.UIDs[1] != u2 {
		t.Fatalf("expunge change %+v, want UIDs %d %d", ch, u1, u2)
	}
	if got := e.inboxUIDs(); len(got) != 1 || got[0] != u3 {
		t.Fatalf("INBOX after QUIT: %v", got)
	}
	if n := len(e.mailboxUIDs(e.mailboxBySpecialUse(store.SpecialTrash).ID)); n != 0 {
		t.Fatalf("Trash has %d messages", n)
	}
}

func testPolicyMove(t *testing.T, policy Policy, use store.SpecialUse, viaAccount bool) {
	e := newEnv(t, func(o *Options) {
		if !viaAccount {
			o.AfterDownload = policy
		}
	})
	if viaAccount {
		if err := e.st.SetDownloadPolicy(context.Background(), e.acct.ID, string(policy)); err != nil {
			t.Fatal(err)
		}
	}
	u1 := deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	u2 := deliver(t, e.st, e.acct, e.inbox.ID, msg2)
	u3 := deliver(t, e.st, e.acct, e.inbox.ID, msg3)
	dst := e.mailboxBySpecialUse(use)
	sub := e.subscribe()
	e.downloadAndDelete()
	var expunged, appended []store.UID
	timeout := time.After(10 * time.Second)
	for expunged == nil || appended == nil {
		select {
		case ch := <-sub.C():
			switch {
			case ch.Kind == store.ChangeExpunge && ch.Mailbox == e.inbox.ID:
				expunged = ch.UIDs
			case ch.Kind == store.ChangeAppend && ch.Mailbox == dst.ID:
				appended = ch.UIDs
			}
		case <-timeout:
			t.Fatalf("changes seen: expunged %v, appended %v", expunged, appended)
		}
	}
	if len(expunged) != 2 || expunged[0] != u1 || expunged[1] != u2 || len(appended) != 2 {
		t.Fatalf("expunged %v in INBOX, appended %v in %s", expunged, appended, use)
	}
	if got := e.inboxUIDs(); len(got) != 1 || got[0] != u3 {
		t.Fatalf("INBOX after QUIT: %v", got)
	}
	moved := e.mailboxUIDs(dst.ID)
	if len(moved) != 2 {
		t.Fatalf("%s has %d messages, want 2", use, len(moved))
	}
}

func TestPolicyTrash(t *testing.T)   { testPolicyMove(t, PolicyTrash, store.SpecialTrash, false) }
func TestPolicyArchive(t *testing.T) { testPolicyMove(t, PolicyArchive, store.SpecialArchive, false) }

// TestPolicyAccountOverride: the account's DownloadPolicy beats the
// server's default.
func TestPolicyAccountOverride(t *testing.T) {
	testPolicyMove(t, PolicyArchive, store.SpecialArchive, true)
}

// TestPolicyTrashRecreated: with the \Trash mailbox deleted, "trash"
// creates it again rather than losing or keeping the messages.
func TestPolicyTrashRecreated(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AfterDownload = PolicyTrash })
	trash := e.mailboxBySpecialUse(store.SpecialTrash)
	if err := e.st.DeleteMailbox(context.Background(), e.acct.ID, trash.Name); err != nil {
		t.Fatal(err)
	}
	deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	deliver(t, e.st, e.acct, e.inbox.ID, msg2)
	e.downloadAndDelete()
	if n := len(e.mailboxUIDs(e.mailboxBySpecialUse(store.SpecialTrash).ID)); n != 2 {
		t.Fatalf("new Trash has %d messages", n)
	}
}

// TestPolicyKeep: deleted messages stay in INBOX (IMAP sees no change) but
// later POP3 sessions do not list them.
func TestPolicyKeep(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AfterDownload = PolicyKeep })
	u1 := deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	u2 := deliver(t, e.st, e.acct, e.inbox.ID, msg2)
	deliver(t, e.st, e.acct, e.inbox.ID, msg3)
	e.downloadAndDelete()
	if n := len(e.inboxUIDs()); n != 3 {
		t.Fatalf("INBOX has %d messages under keep, want 3", n)
	}
	for _, u := range []store.UID{u1, u2} {
		if f := e.messageFlags(e.inbox.ID, u); f&store.FlagDownloaded == 0 || f&store.FlagDeleted != 0 {
			t.Fatalf("message %d flags %b: want downloaded, not deleted", u, f)
		}
	}
	c := e.login()
	c.cmd("STAT").expect("+OK 1 " + strconv.Itoa(len(crlf(msg3))))
	c.cmd("RETR 1").expectPrefix("+OK")
	if got := unstuff(c.multiline()); got != crlf(msg3) {
		t.Fatalf("RETR 1 in the next session = %q, want msg3", got)
	}
}

// TestMarkSeenOnRetr: RETR (not TOP) sets \Seen, at QUIT and also when the
// connection drops.
func TestMarkSeenOnRetr(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MarkSeenOnRetr = true })
	u1 := deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	u2 := deliver(t, e.st, e.acct, e.inbox.ID, msg2)
	u3 := deliver(t, e.st, e.acct, e.inbox.ID, msg3)
	c := e.login()
	c.cmd("RETR 1").expectPrefix("+OK")
	c.multiline()
	c.cmd("TOP 2 5").expectPrefix("+OK")
	c.multiline()
	c.cmd("QUIT").expectPrefix("+OK")
	c.expectClosed()
	if f := e.messageFlags(e.inbox.ID, u1); f&store.FlagSeen == 0 {
		t.Fatal("RETR did not set \\Seen")
	}
	if f := e.messageFlags(e.inbox.ID, u2); f&store.FlagSeen != 0 {
		t.Fatal("TOP set \\Seen")
	}

	c = e.login()
	c.cmd("RETR 3").expectPrefix("+OK")
	c.multiline()
	c.cmd("DELE 3").expectPrefix("+OK")
	c.nc.Close()
	waitFor(t, "\\Seen after a drop", func() bool { return e.messageFlags(e.inbox.ID, u3)&store.FlagSeen != 0 })
	if n := len(e.inboxUIDs()); n != 3 {
		t.Fatalf("drop deleted messages: %d left", n)
	}
}

// TestMarkSeenOff: without the option, RETR leaves flags alone.
func TestMarkSeenOff(t *testing.T) {
	e := newEnv(t, nil)
	u1 := deliver(t, e.st, e.acct, e.inbox.ID, msg1)
	c := e.login()
	c.cmd("RETR 1").expectPrefix("+OK")
	c.multiline()
	c.cmd("QUIT").expectPrefix("+OK")
	c.expectClosed()
	if f := e.messageFlags(e.inbox.ID, u1); f != 0 {
		t.Fatalf("flags %b after RETR without MarkSeenOnRetr", f)
	}
}
