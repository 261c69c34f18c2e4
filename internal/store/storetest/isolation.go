package storetest

import (
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// testIsolation checks that an account's IDs never reach another account's
// data: every method taking an account and a mailbox refuses a mailbox of
// another account with ErrNotFound, and changes nothing.
func testIsolation(t *testing.T, b Backend) {
	e := newEnv(t, b)
	alice := e.account()
	bob := e.account()
	ain := e.mailbox(alice.ID, "INBOX")
	bin := e.mailbox(bob.ID, "INBOX")
	au := e.append(alice.ID, ain.ID, msg("alice-secret"), store.Flags{})
	e.append(bob.ID, bin.ID, msg("bob"), store.Flags{})
	before := e.mailboxByID(alice.ID, ain.ID)
	ctx := e.ctx
	s := e.s
	nf := func(what string, err error) {
		t.Helper()
		wantErr(t, what, err, store.ErrNotFound)
	}
	// Bob uses Alice's mailbox ID.
	_, err := s.MailboxByID(ctx, bob.ID, ain.ID)
	nf("MailboxByID", err)
	_, _, err = s.SelectState(ctx, bob.ID, ain.ID)
	nf("SelectState", err)
	_, err = s.ClaimRecent(ctx, bob.ID, ain.ID)
	nf("ClaimRecent", err)
	err = s.Messages(ctx, bob.ID, ain.ID, all(), store.FetchOptions{Parsed: true}, func(m *store.Message) error {
		t.Errorf("Messages leaked %+v", m)
		return nil
	})
	nf("Messages", err)
	_, err = s.OpenMessage(ctx, bob.ID, ain.ID, au)
	nf("OpenMessage", err)
	_, err = s.SetFlags(ctx, bob.ID, ain.ID, all(), store.FlagsAdd, store.Flags{Sys: store.FlagDeleted}, 0)
	nf("SetFlags", err)
	_, err = s.Expunge(ctx, bob.ID, ain.ID, all())
	nf("Expunge", err)
	_, err = s.Copy(ctx, bob.ID, ain.ID, bin.ID, all())
	nf("Copy from another account's mailbox", err)
	_, err = s.Copy(ctx, bob.ID, bin.ID, ain.ID, all())
	nf("Copy into another account's mailbox", err)
	_, err = s.Move(ctx, bob.ID, ain.ID, bin.ID, all())
	nf("Move from another account's mailbox", err)
	_, err = s.Move(ctx, bob.ID, bin.ID, ain.ID, all())
	nf("Move into another account's mailbox", err)
	_, err = s.Changes(ctx, bob.ID, ain.ID, 0)
	nf("Changes", err)
	_, err = s.SearchText(ctx, bob.ID, ain.ID, nil, store.TextAll, "alice")
	nf("SearchText", err)
	_, err = s.Append(ctx, bob.ID, ain.ID, []store.AppendMessage{{Body: e.stage(msg("intruder"))}})
	nf("Append", err)
	// Names are per account.
	if m, err := s.Mailbox(ctx, bob.ID, "INBOX"); err != nil || m.ID != bin.ID {
		t.Errorf("bob's INBOX by name: %+v %v", m, err)
	}
	e.create(alice.ID, "AliceOnly")
	_, err = s.Mailbox(ctx, bob.ID, "AliceOnly")
	nf("Mailbox by another account's name", err)
	nf("DeleteMailbox of another account's name", s.DeleteMailbox(ctx, bob.ID, "AliceOnly"))
	nf("RenameMailbox of another account's name", s.RenameMailbox(ctx, bob.ID, "AliceOnly", "Mine"))
	errs, err := s.Deliver(ctx, e.stage(msg("d")), []store.DeliveryTarget{{Account: bob.ID, Mailbox: "AliceOnly"}})
	if err != nil || len(errs) != 1 {
		t.Fatalf("Deliver: %v %v", errs, err)
	}
	nf("Deliver to another account's mailbox name", errs[0])
	if n := len(e.names(bob.ID)); n != len(store.DefaultMailboxes)+1 {
		t.Errorf("bob has %d mailboxes", n)
	}

	// Nothing of Alice's changed.
	after := e.mailboxByID(alice.ID, ain.ID)
	if after.Messages != before.Messages || after.HighestModSeq != before.HighestModSeq || after.UIDNext != before.UIDNext {
		t.Errorf("alice's INBOX changed: %+v -> %+v", before, after)
	}
	if m := e.message(alice.ID, ain.ID, au); m.Flags.Sys != 0 {
		t.Errorf("alice's message flags changed: %+v", m.Flags)
	}
	if got := e.body(alice.ID, ain.ID, au); got != msg("alice-secret") {
		t.Errorf("alice's message: %q", got)
	}
}

func testDeleteAccount(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	keep := e.account()
	ain := e.mailbox(a.ID, "INBOX")
	kin := e.mailbox(keep.ID, "INBOX")
	st := e.stage(bigBody("shared", 100<<10))
	if _, err := e.s.Deliver(e.ctx, st, []store.DeliveryTarget{{Account: a.ID}, {Account: keep.ID}}); err != nil {
		t.Fatal(err)
	}
	e.append(a.ID, ain.ID, msg("gone"), store.Flags{})
	if err := e.s.DeleteAccount(e.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.AccountByID(e.ctx, a.ID)
	wantErr(t, "AccountByID after delete", err, store.ErrNotFound)
	_, err = e.s.MailboxByID(e.ctx, a.ID, ain.ID)
	wantErr(t, "MailboxByID after delete", err, store.ErrNotFound)
	if boxes, _ := e.s.Mailboxes(e.ctx, a.ID); len(boxes) != 0 {
		t.Errorf("deleted account still has %d mailboxes", len(boxes))
	}
	if got := e.body(keep.ID, kin.ID, 1); got != bigBody("shared", 100<<10) {
		t.Error("the other recipient's copy was damaged")
	}
	wantErr(t, "DeleteAccount twice", e.s.DeleteAccount(e.ctx, a.ID), store.ErrNotFound)
	// The address can be used again, as a new account.
	n, err := e.s.CreateAccount(e.ctx, a.Address, "h")
	if err != nil || n.ID == a.ID {
		t.Errorf("recreate: %+v %v", n, err)
	}
	if m := e.mailbox(n.ID, "INBOX"); m.Messages != 0 {
		t.Errorf("recreated account sees %d old messages", m.Messages)
	}
}
