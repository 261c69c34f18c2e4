package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

func (e *env) names(acct store.AccountID) map[string]store.Mailbox {
	e.t.Helper()
	boxes, err := e.s.Mailboxes(e.ctx, acct)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make(map[string]store.Mailbox, len(boxes))
	for _, m := range boxes {
		out[m.Name] = m
	}
	return out
}

func testCreateMailbox(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	m := e.create(a.ID, "A/B/C")
	if m.Name != "A/B/C" || m.NoSelect || m.UIDNext != 1 || m.UIDValidity == 0 || m.Account != a.ID {
		t.Errorf("created %+v", m)
	}
	names := e.names(a.ID)
	for _, n := range []string{"A", "A/B", "A/B/C"} {
		if _, ok := names[n]; !ok {
			t.Errorf("%q missing after creating A/B/C", n)
		}
	}
	_, err := e.s.CreateMailbox(e.ctx, a.ID, "A/B", store.SpecialNone)
	wantErr(t, "CreateMailbox existing", err, store.ErrExists)
	_, err = e.s.CreateMailbox(e.ctx, a.ID, "inbox", store.SpecialNone)
	wantErr(t, "CreateMailbox inbox", err, store.ErrExists)
	// INBOX children are spelled with INBOX.
	c := e.create(a.ID, "inbox/Child")
	if c.Name != "INBOX/Child" {
		t.Errorf("inbox/Child created as %q", c.Name)
	}
	// Special use: one mailbox per attribute.
	_, err = e.s.CreateMailbox(e.ctx, a.ID, "MySent", store.SpecialSent)
	wantErr(t, "second \\Sent", err, store.ErrSpecialUse)
	_, err = e.s.CreateMailbox(e.ctx, a.ID, "Weird", store.SpecialUse(`\Bogus`))
	wantErr(t, "unknown special use", err, store.ErrSpecialUse)
	f, err := e.s.CreateMailbox(e.ctx, a.ID, "Flagged", store.SpecialFlagged)
	if err != nil || f.SpecialUse != store.SpecialFlagged {
		t.Errorf("create \\Flagged: %+v %v", f, err)
	}
	// Distinct mailboxes get distinct UIDVALIDITY or at least distinct IDs.
	x := e.create(a.ID, "X")
	y := e.create(a.ID, "Y")
	if x.ID == y.ID {
		t.Error("two mailboxes share an ID")
	}
	// Unicode names round-trip.
	u := e.create(a.ID, "Entwürfe/日本")
	if got := e.mailbox(a.ID, "Entwürfe/日本"); got.ID != u.ID {
		t.Errorf("unicode name lookup %+v", got)
	}
	_, err = e.s.Mailbox(e.ctx, a.ID, "Nope")
	wantErr(t, "Mailbox(missing)", err, store.ErrNotFound)
}

func testMailboxNames(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	bad := []string{"", "/", "/A", "A//B", "A\x00B", "A\rB", "A\nB", "\xff\xfe",
		strings.Repeat("x", store.MaxMailboxNameBytes+1),
		strings.Repeat("d/", store.MaxMailboxDepth) + "d"}
	for _, n := range bad {
		_, err := e.s.CreateMailbox(e.ctx, a.ID, n, store.SpecialNone)
		wantErr(t, fmt.Sprintf("CreateMailbox(%q)", n), err, store.ErrInvalidName)
	}
	okNames := []string{"With Space", "Dots.In.Name", "A/B", strings.Repeat("d/", store.MaxMailboxDepth-1) + "d", "&-ampersand", "Ünïcødé"}
	for _, n := range okNames {
		if _, err := e.s.CreateMailbox(e.ctx, a.ID, n, store.SpecialNone); err != nil {
			t.Errorf("CreateMailbox(%q): %v", n, err)
		}
	}
}

func testRenameMailbox(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	src := e.create(a.ID, "Old/Kid/Grandkid")
	e.append(a.ID, src.ID, msg("r1"), store.Flags{})
	old := e.mailbox(a.ID, "Old")
	e.create(a.ID, "Older") // shares a prefix but is not a child
	if err := e.s.RenameMailbox(e.ctx, a.ID, "Old", "New/Place"); err != nil {
		t.Fatal(err)
	}
	names := e.names(a.ID)
	for _, n := range []string{"New", "New/Place", "New/Place/Kid", "New/Place/Kid/Grandkid", "Older"} {
		if _, ok := names[n]; !ok {
			t.Errorf("%q missing after rename", n)
		}
	}
	for _, n := range []string{"Old", "Old/Kid", "Old/Kid/Grandkid"} {
		if _, ok := names[n]; ok {
			t.Errorf("%q still there after rename", n)
		}
	}
	moved := names["New/Place/Kid/Grandkid"]
	if moved.ID != src.ID || moved.UIDValidity != src.UIDValidity || moved.Messages != 1 {
		t.Errorf("renamed child %+v, was %+v", moved, src)
	}
	if names["New/Place"].ID != old.ID {
		t.Error("renamed mailbox got a new ID")
	}
	if got := e.body(a.ID, moved.ID, 1); got != msg("r1") {
		t.Errorf("message after rename: %q", got)
	}
	wantErr(t, "rename missing", e.s.RenameMailbox(e.ctx, a.ID, "Nope", "X"), store.ErrNotFound)
	wantErr(t, "rename onto existing", e.s.RenameMailbox(e.ctx, a.ID, "Older", "New/Place"), store.ErrExists)
	wantErr(t, "rename into own child", e.s.RenameMailbox(e.ctx, a.ID, "New", "New/Place/Sub"), store.ErrCannotRename)
	wantErr(t, "rename onto INBOX", e.s.RenameMailbox(e.ctx, a.ID, "Older", "inbox"), store.ErrExists)
	// Renamed special-use mailboxes keep their attribute.
	if err := e.s.RenameMailbox(e.ctx, a.ID, "Sent", "Sent Items"); err != nil {
		t.Fatal(err)
	}
	if m := e.mailbox(a.ID, "Sent Items"); m.SpecialUse != store.SpecialSent {
		t.Errorf("renamed Sent has use %q", m.SpecialUse)
	}
	// Non-ASCII names with children (byte and character lengths differ).
	e.create(a.ID, "Entwürfe/Ünter/Kïnd")
	if err := e.s.RenameMailbox(e.ctx, a.ID, "Entwürfe", "Brouillons é"); err != nil {
		t.Fatal(err)
	}
	names = e.names(a.ID)
	for _, n := range []string{"Brouillons é", "Brouillons é/Ünter", "Brouillons é/Ünter/Kïnd"} {
		if _, ok := names[n]; !ok {
			t.Errorf("%q missing after a non-ASCII rename; have %v", n, names)
		}
	}
	// The old name can be created again, as a new mailbox.
	n := e.create(a.ID, "Old")
	if n.ID == old.ID {
		t.Error("recreated mailbox has the renamed one's ID")
	}
}

func testRenameInbox(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	e.create(a.ID, "INBOX/Kid")
	e.append(a.ID, inbox.ID, msg("i1"), store.Flags{Sys: store.FlagSeen})
	e.append(a.ID, inbox.ID, msg("i2"), store.Flags{Keywords: []string{"kw"}})
	if err := e.s.RenameMailbox(e.ctx, a.ID, "INBOX", "Old Mail"); err != nil {
		t.Fatal(err)
	}
	in := e.mailbox(a.ID, "INBOX")
	if in.ID != inbox.ID || in.Messages != 0 || in.UIDValidity != inbox.UIDValidity || in.UIDNext < 3 {
		t.Errorf("INBOX after rename %+v", in)
	}
	old := e.mailbox(a.ID, "Old Mail")
	if old.Messages != 2 || old.ID == inbox.ID {
		t.Errorf("Old Mail %+v", old)
	}
	ms := e.messages(a.ID, old.ID, all())
	if len(ms) != 2 || e.body(a.ID, old.ID, ms[0].UID) != msg("i1") || ms[0].Flags.Sys != store.FlagSeen || len(ms[1].Flags.Keywords) != 1 {
		t.Errorf("moved messages %+v", ms)
	}
	if _, err := e.s.Mailbox(e.ctx, a.ID, "INBOX/Kid"); err != nil {
		t.Errorf("INBOX's child was renamed too: %v", err)
	}
	// New mail still goes to INBOX with fresh UIDs.
	if u := e.append(a.ID, inbox.ID, msg("i3"), store.Flags{}); u < 3 {
		t.Errorf("UID after INBOX rename %d reuses an old one", u)
	}
}

func testDeleteMailbox(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	wantErr(t, "delete INBOX", e.s.DeleteMailbox(e.ctx, a.ID, "inbox"), store.ErrInboxSpecial)
	wantErr(t, "delete missing", e.s.DeleteMailbox(e.ctx, a.ID, "Nope"), store.ErrNotFound)
	p := e.create(a.ID, "P")
	e.create(a.ID, "P/C")
	e.append(a.ID, p.ID, msg("p1"), store.Flags{})
	if err := e.s.DeleteMailbox(e.ctx, a.ID, "P"); err != nil {
		t.Fatal(err)
	}
	pm := e.mailbox(a.ID, "P")
	if !pm.NoSelect || pm.Messages != 0 {
		t.Errorf("deleted parent %+v, want \\Noselect and empty", pm)
	}
	if _, _, err := e.s.SelectState(e.ctx, a.ID, pm.ID); err == nil {
		t.Error("SelectState of a \\Noselect placeholder succeeded")
	}
	wantErr(t, "delete placeholder with children", e.s.DeleteMailbox(e.ctx, a.ID, "P"), store.ErrHasChildren)
	if err := e.s.DeleteMailbox(e.ctx, a.ID, "P/C"); err != nil {
		t.Fatal(err)
	}
	// A placeholder without children can go.
	if err := e.s.DeleteMailbox(e.ctx, a.ID, "P"); err != nil {
		t.Errorf("delete childless placeholder: %v", err)
	}
	if _, err := e.s.Mailbox(e.ctx, a.ID, "P"); err == nil {
		t.Error("P still exists")
	}
	// Creating over a placeholder makes it real again, without reusing UIDs.
	q := e.create(a.ID, "Q")
	e.create(a.ID, "Q/R")
	e.append(a.ID, q.ID, msg("q1"), store.Flags{})
	e.s.DeleteMailbox(e.ctx, a.ID, "Q")
	q2 := e.create(a.ID, "Q")
	if q2.NoSelect {
		t.Error("create over placeholder left it \\Noselect")
	}
	if q2.UIDValidity == q.UIDValidity {
		if u := e.append(a.ID, q2.ID, msg("q2"), store.Flags{}); u <= 1 {
			t.Errorf("UID %d reused under the same UIDVALIDITY", u)
		}
	}
	// Deleting a leaf with messages removes them.
	l := e.create(a.ID, "Leaf")
	e.append(a.ID, l.ID, msg("l"), store.Flags{})
	if err := e.s.DeleteMailbox(e.ctx, a.ID, "Leaf"); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.OpenMessage(e.ctx, a.ID, l.ID, 1)
	wantErr(t, "open message of deleted mailbox", err, store.ErrNotFound)
	_, err = e.s.MailboxByID(e.ctx, a.ID, l.ID)
	wantErr(t, "MailboxByID of deleted", err, store.ErrNotFound)
}

func testSubscriptions(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	base, err := e.s.Subscriptions(e.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	has := func(list []string, n string) bool {
		for _, x := range list {
			if x == n {
				return true
			}
		}
		return false
	}
	if err := e.s.SetSubscribed(e.ctx, a.ID, "Does/Not/Exist", true); err != nil {
		t.Fatalf("subscribe to a missing name: %v", err)
	}
	if err := e.s.SetSubscribed(e.ctx, a.ID, "Does/Not/Exist", true); err != nil {
		t.Fatalf("subscribe twice: %v", err)
	}
	if err := e.s.SetSubscribed(e.ctx, a.ID, "inbox/x", true); err != nil {
		t.Fatal(err)
	}
	list, _ := e.s.Subscriptions(e.ctx, a.ID)
	if !has(list, "Does/Not/Exist") || !has(list, "INBOX/x") || len(list) != len(base)+2 {
		t.Errorf("subscriptions %v (before %v)", list, base)
	}
	for i := 1; i < len(list); i++ {
		if list[i-1] >= list[i] {
			t.Errorf("subscriptions not sorted: %v", list)
		}
	}
	if _, err := e.s.Mailbox(e.ctx, a.ID, "Does/Not/Exist"); err == nil {
		t.Error("subscribing created the mailbox")
	}
	if err := e.s.SetSubscribed(e.ctx, a.ID, "Does/Not/Exist", false); err != nil {
		t.Fatal(err)
	}
	if err := e.s.SetSubscribed(e.ctx, a.ID, "Never", false); err != nil {
		t.Errorf("unsubscribe of an unsubscribed name: %v", err)
	}
	list, _ = e.s.Subscriptions(e.ctx, a.ID)
	if has(list, "Does/Not/Exist") || len(list) != len(base)+1 {
		t.Errorf("after unsubscribe %v", list)
	}
	// Another account's subscriptions are separate.
	o := e.account()
	ol, _ := e.s.Subscriptions(e.ctx, o.ID)
	if has(ol, "INBOX/x") {
		t.Error("subscription leaked to another account")
	}
}
