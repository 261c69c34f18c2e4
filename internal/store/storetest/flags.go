package storetest

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func testFlags(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	for i := 0; i < 3; i++ {
		e.append(a.ID, inbox.ID, msg(fmt.Sprint("f", i)), store.Flags{})
	}
	m0 := e.mailboxByID(a.ID, inbox.ID)
	res, err := e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1, 2), store.FlagsAdd, store.Flags{Sys: store.FlagSeen | store.FlagFlagged}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Updated) != 2 || res.Updated[0].UID != 1 || res.Updated[1].UID != 2 || len(res.Modified) != 0 {
		t.Fatalf("SetFlags result %+v", res)
	}
	ms1 := res.Updated[0].ModSeq
	if ms1 <= m0.HighestModSeq || res.Updated[0].Flags.Sys != store.FlagSeen|store.FlagFlagged {
		t.Errorf("update %+v (HighestModSeq before %d)", res.Updated[0], m0.HighestModSeq)
	}
	m1 := e.mailboxByID(a.ID, inbox.ID)
	if m1.HighestModSeq != ms1 {
		t.Errorf("HighestModSeq %d, want %d", m1.HighestModSeq, ms1)
	}
	if got := e.message(a.ID, inbox.ID, 1); got.ModSeq != ms1 || got.Flags.Sys != store.FlagSeen|store.FlagFlagged {
		t.Errorf("message 1 %+v", got)
	}
	// Adding flags that are already there changes nothing and does not
	// move ModSeq.
	res, err = e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0)
	if err != nil || len(res.Updated) != 0 {
		t.Errorf("no-op SetFlags: %+v %v", res, err)
	}
	if got := e.mailboxByID(a.ID, inbox.ID); got.HighestModSeq != ms1 {
		t.Errorf("no-op SetFlags moved HighestModSeq to %d", got.HighestModSeq)
	}
	// Remove.
	res, err = e.s.SetFlags(e.ctx, a.ID, inbox.ID, all(), store.FlagsRemove, store.Flags{Sys: store.FlagFlagged}, 0)
	if err != nil || len(res.Updated) != 2 {
		t.Fatalf("remove: %+v %v", res, err)
	}
	if res.Updated[0].ModSeq <= ms1 || res.Updated[0].Flags.Sys != store.FlagSeen {
		t.Errorf("remove result %+v", res.Updated[0])
	}
	// Replace.
	res, err = e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(2, 3), store.FlagsReplace, store.Flags{Sys: store.FlagDraft, Keywords: []string{"x"}}, 0)
	if err != nil || len(res.Updated) != 2 {
		t.Fatalf("replace: %+v %v", res, err)
	}
	for _, u := range res.Updated {
		if u.Flags.Sys != store.FlagDraft || len(u.Flags.Keywords) != 1 || u.Flags.Keywords[0] != "x" {
			t.Errorf("replace result %+v", u)
		}
	}
	// Bad flags.
	_, err = e.s.SetFlags(e.ctx, a.ID, inbox.ID, all(), store.FlagsAdd, store.Flags{Keywords: []string{`\Bogus`}}, 0)
	wantErr(t, "SetFlags with a backslash keyword", err, store.ErrBadFlag)
	_, err = e.s.SetFlags(e.ctx, a.ID, inbox.ID, all(), store.FlagsAdd, store.Flags{Keywords: []string{strings.Repeat("k", store.MaxKeywordBytes+1)}}, 0)
	wantErr(t, "SetFlags with a long keyword", err, store.ErrBadFlag)
	// Missing UIDs are ignored.
	res, err = e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(50), store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0)
	if err != nil || len(res.Updated)+len(res.Modified) != 0 {
		t.Errorf("SetFlags on missing UID: %+v %v", res, err)
	}
	// FlagDownloaded survives an IMAP-style replace.
	e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{Sys: store.FlagDownloaded}, 0)
	e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsReplace, store.Flags{Sys: store.FlagAnswered}, 0)
	if got := e.message(a.ID, inbox.ID, 1); got.Flags.Sys != store.FlagAnswered|store.FlagDownloaded {
		t.Errorf("after replace, flags %b", got.Flags.Sys)
	}
}

func testUnchangedSince(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	for i := 0; i < 3; i++ {
		e.append(a.ID, inbox.ID, msg(fmt.Sprint("u", i)), store.Flags{})
	}
	base := e.mailboxByID(a.ID, inbox.ID).HighestModSeq
	// Message 2 changes after base.
	e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(2), store.FlagsAdd, store.Flags{Sys: store.FlagAnswered}, 0)
	res, err := e.s.SetFlags(e.ctx, a.ID, inbox.ID, all(), store.FlagsAdd, store.Flags{Sys: store.FlagDeleted}, base)
	if err != nil {
		t.Fatal(err)
	}
	if !equalUIDs(res.Modified, []store.UID{2}) {
		t.Errorf("Modified %v, want [2]", res.Modified)
	}
	if len(res.Updated) != 2 || res.Updated[0].UID != 1 || res.Updated[1].UID != 3 {
		t.Errorf("Updated %+v", res.Updated)
	}
	if got := e.message(a.ID, inbox.ID, 2); got.Flags.Sys&store.FlagDeleted != 0 {
		t.Error("message 2 got \\Deleted despite UNCHANGEDSINCE")
	}
	// UNCHANGEDSINCE equal to the message's ModSeq passes (RFC 7162 §3.1.3).
	m2 := e.message(a.ID, inbox.ID, 2)
	res, err = e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(2), store.FlagsAdd, store.Flags{Sys: store.FlagDeleted}, m2.ModSeq)
	if err != nil || len(res.Updated) != 1 || len(res.Modified) != 0 {
		t.Errorf("UNCHANGEDSINCE = modseq: %+v %v", res, err)
	}
}

func testKeywords(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	e.append(a.ID, inbox.ID, msg("k1"), store.Flags{Keywords: []string{"$Important", "Work"}})
	e.append(a.ID, inbox.ID, msg("k2"), store.Flags{})
	// Same keyword, other case: the first spelling is kept.
	res, err := e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(2), store.FlagsAdd, store.Flags{Keywords: []string{"WORK", "work"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Updated) != 1 || len(res.Updated[0].Flags.Keywords) != 1 || res.Updated[0].Flags.Keywords[0] != "Work" {
		t.Errorf("keyword spelling: %+v", res.Updated)
	}
	// Adding a keyword in another case to a message that has it: no change.
	res, _ = e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{Keywords: []string{"work"}}, 0)
	if len(res.Updated) != 0 {
		t.Errorf("re-adding a keyword in another case changed the message: %+v", res.Updated)
	}
	// Removing is case-insensitive.
	res, _ = e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsRemove, store.Flags{Keywords: []string{"$IMPORTANT"}}, 0)
	if len(res.Updated) != 1 || len(res.Updated[0].Flags.Keywords) != 1 || res.Updated[0].Flags.Keywords[0] != "Work" {
		t.Errorf("remove keyword: %+v", res.Updated)
	}
	m := e.message(a.ID, inbox.ID, 1)
	if len(m.Flags.Keywords) != 1 || m.Flags.Keywords[0] != "Work" {
		t.Errorf("stored keywords %v", m.Flags.Keywords)
	}
	// The mailbox's keywords, first spellings, sorted case-insensitively;
	// removing a keyword from every message does not undefine it.
	kws, err := e.s.Keywords(e.ctx, a.ID, inbox.ID)
	if err != nil || fmt.Sprint(kws) != "[$Important Work]" {
		t.Errorf("Keywords = %v, %v; want [$Important Work]", kws, err)
	}
	if kws, err := e.s.Keywords(e.ctx, a.ID, e.create(a.ID, "NoKeywords").ID); err != nil || len(kws) != 0 {
		t.Errorf("Keywords of a new mailbox = %v, %v", kws, err)
	}
	other := e.account()
	_, err = e.s.Keywords(e.ctx, other.ID, inbox.ID)
	wantErr(t, "Keywords of another account's mailbox", err, store.ErrNotFound)
	for _, bad := range []string{"", "a b", "a(b", "x*", "a%", `q"`, "r]", "ü"} {
		_, err := e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{Keywords: []string{bad}}, 0)
		wantErr(t, fmt.Sprintf("keyword %q", bad), err, store.ErrBadFlag)
	}
}

func testCounters(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	other := e.create(a.ID, "Other")
	check := func(what string, id store.MailboxID, msgs, unseen, deleted uint32) {
		t.Helper()
		m := e.mailboxByID(a.ID, id)
		var size int64
		for _, x := range e.messages(a.ID, id, all()) {
			size += x.Size
		}
		if m.Messages != msgs || m.Unseen != unseen || m.Deleted != deleted || m.Size != size {
			t.Errorf("%s: Messages %d Unseen %d Deleted %d Size %d; want %d %d %d %d", what, m.Messages, m.Unseen, m.Deleted, m.Size, msgs, unseen, deleted, size)
		}
	}
	checkUsed := func(what string) {
		t.Helper()
		var want int64
		for _, id := range []store.MailboxID{inbox.ID, other.ID} {
			want += e.mailboxByID(a.ID, id).Size
		}
		acct, _ := e.s.AccountByID(e.ctx, a.ID)
		if acct.UsedBytes != want {
			t.Errorf("%s: UsedBytes %d, want %d", what, acct.UsedBytes, want)
		}
	}
	e.append(a.ID, inbox.ID, msg("c1"), store.Flags{})
	e.append(a.ID, inbox.ID, msg("c2"), store.Flags{Sys: store.FlagSeen})
	e.append(a.ID, inbox.ID, bigBody("c3", 200<<10), store.Flags{Sys: store.FlagDeleted})
	check("after appends", inbox.ID, 3, 2, 1)
	checkUsed("after appends")
	e.s.SetFlags(e.ctx, a.ID, inbox.ID, all(), store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0)
	check("after +Seen", inbox.ID, 3, 0, 1)
	e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1), store.FlagsReplace, store.Flags{Sys: store.FlagDeleted}, 0)
	check("after replace", inbox.ID, 3, 1, 2)
	e.s.Copy(e.ctx, a.ID, inbox.ID, other.ID, store.UIDSetOf(1, 3))
	check("copy source", inbox.ID, 3, 1, 2)
	check("copy destination", other.ID, 2, 1, 2)
	checkUsed("after copy")
	e.s.Move(e.ctx, a.ID, inbox.ID, other.ID, store.UIDSetOf(2))
	check("move source", inbox.ID, 2, 1, 2)
	check("move destination", other.ID, 3, 1, 2)
	checkUsed("after move")
	e.s.Expunge(e.ctx, a.ID, other.ID, store.UIDSetOf(1, 2))
	check("after expunge", other.ID, 1, 0, 0)
	checkUsed("after expunge")
	if err := e.s.DeleteMailbox(e.ctx, a.ID, "Other"); err != nil {
		t.Fatal(err)
	}
	var want int64
	want = e.mailboxByID(a.ID, inbox.ID).Size
	acct, _ := e.s.AccountByID(e.ctx, a.ID)
	if acct.UsedBytes != want {
		t.Errorf("after deleting a mailbox UsedBytes %d, want %d", acct.UsedBytes, want)
	}
}

func testChanges(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	for i := 0; i < 4; i++ {
		e.append(a.ID, inbox.ID, msg(fmt.Sprint("ch", i)), store.Flags{})
	}
	base := e.mailboxByID(a.ID, inbox.ID).HighestModSeq
	d, err := e.s.Changes(e.ctx, a.ID, inbox.ID, base)
	if err != nil || len(d.Messages) != 0 || len(d.Vanished) != 0 || d.Mailbox.HighestModSeq != base {
		t.Fatalf("no changes: %+v %v", d, err)
	}
	e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(3), store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0)
	e.s.Expunge(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1, 4))
	e.append(a.ID, inbox.ID, msg("ch5"), store.Flags{})
	d, err = e.s.Changes(e.ctx, a.ID, inbox.ID, base)
	if err != nil {
		t.Fatal(err)
	}
	var got []store.UID
	for _, m := range d.Messages {
		got = append(got, m.UID)
		if m.ModSeq <= base {
			t.Errorf("change %d has ModSeq %d <= %d", m.UID, m.ModSeq, base)
		}
	}
	if !equalUIDs(got, []store.UID{3, 5}) || !equalUIDs(d.Vanished, []store.UID{1, 4}) {
		t.Errorf("changes since %d: messages %v vanished %v", base, got, d.Vanished)
	}
	if d.Messages[0].Flags.Sys != store.FlagSeen {
		t.Errorf("changed message flags %+v", d.Messages[0].Flags)
	}
	if d.Mailbox.Messages != 3 || d.Mailbox.HighestModSeq <= base {
		t.Errorf("delta mailbox %+v", d.Mailbox)
	}
	d, err = e.s.Changes(e.ctx, a.ID, inbox.ID, 0)
	if err != nil || len(d.Messages) != 3 || len(d.Vanished) != 2 {
		t.Errorf("changes since 0: %d messages, vanished %v, %v", len(d.Messages), d.Vanished, err)
	}
	// Every ModSeq is distinct per change and grows.
	d, _ = e.s.Changes(e.ctx, a.ID, inbox.ID, d.Mailbox.HighestModSeq)
	if len(d.Messages)+len(d.Vanished) != 0 {
		t.Errorf("changes since HighestModSeq: %+v", d)
	}
}

func testMessagesStreaming(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	const n = 1100
	msgs := make([]store.AppendMessage, n)
	for i := range msgs {
		msgs[i] = store.AppendMessage{Body: e.stage(msg(fmt.Sprint("s", i)))}
	}
	if _, err := e.s.Append(e.ctx, a.ID, inbox.ID, msgs); err != nil {
		t.Fatal(err)
	}
	count := 0
	var last store.UID
	err := e.s.Messages(e.ctx, a.ID, inbox.ID, all(), store.FetchOptions{}, func(m *store.Message) error {
		count++
		if m.UID <= last {
			t.Fatalf("UID %d after %d", m.UID, last)
		}
		last = m.UID
		if m.Parsed != nil {
			t.Fatal("Parsed filled without FetchOptions.Parsed")
		}
		if m.Mailbox != inbox.ID || m.ID == 0 || m.Size == 0 {
			t.Fatalf("message %+v", m)
		}
		return nil
	})
	if err != nil || count != n {
		t.Fatalf("Messages visited %d of %d: %v", count, n, err)
	}
	// Sets: unsorted, overlapping ranges, UIDs past the end.
	set := store.UIDSet{{Start: 1000, Stop: 5000}, {Start: 3, Stop: 5}, {Start: 4, Stop: 7}, {Start: 1, Stop: 1}}
	var got []store.UID
	err = e.s.Messages(e.ctx, a.ID, inbox.ID, set, store.FetchOptions{Parsed: true}, func(m *store.Message) error {
		got = append(got, m.UID)
		if m.Parsed == nil {
			t.Fatal("Parsed missing")
		}
		if m.UID == 1 && m.Parsed.Envelope.Subject != "s0" {
			t.Errorf("parsed subject %q", m.Parsed.Envelope.Subject)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1+5+101 || got[0] != 1 || got[1] != 3 || got[5] != 7 || got[6] != 1000 || got[len(got)-1] != 1100 {
		t.Errorf("set visit: %d UIDs, first %v", len(got), got[:8])
	}
	// The callback's error stops the walk and is returned.
	stop := fmt.Errorf("stop")
	count = 0
	err = e.s.Messages(e.ctx, a.ID, inbox.ID, all(), store.FetchOptions{}, func(m *store.Message) error {
		count++
		if count == 10 {
			return stop
		}
		return nil
	})
	if err != stop || count != 10 {
		t.Errorf("callback error: %v after %d", err, count)
	}
	// The callback may call the store (no deadlock on held connections).
	count = 0
	err = e.s.Messages(e.ctx, a.ID, inbox.ID, store.UIDSet{{Start: 1, Stop: 600}}, store.FetchOptions{}, func(m *store.Message) error {
		count++
		if m.UID%100 == 0 {
			r, err := e.s.OpenMessage(e.ctx, a.ID, inbox.ID, m.UID)
			if err != nil {
				return err
			}
			r.Close()
			if _, err := e.s.SetFlags(e.ctx, a.ID, inbox.ID, store.UIDSetOf(m.UID), store.FlagsAdd, store.Flags{Sys: store.FlagSeen}, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || count != 600 {
		t.Errorf("nested store calls: %v after %d", err, count)
	}
}

func testClaimRecent(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	e.append(a.ID, inbox.ID, msg("r1"), store.Flags{})
	e.append(a.ID, inbox.ID, msg("r2"), store.Flags{})
	first, err := e.s.ClaimRecent(e.ctx, a.ID, inbox.ID)
	if err != nil || first != 1 {
		t.Errorf("first claim %d %v, want 1", first, err)
	}
	second, err := e.s.ClaimRecent(e.ctx, a.ID, inbox.ID)
	if err != nil || second != 3 {
		t.Errorf("second claim %d %v, want 3", second, err)
	}
	e.append(a.ID, inbox.ID, msg("r3"), store.Flags{})
	if m := e.mailboxByID(a.ID, inbox.ID); m.RecentUID != 3 {
		t.Errorf("RecentUID %d, want 3", m.RecentUID)
	}
	third, _ := e.s.ClaimRecent(e.ctx, a.ID, inbox.ID)
	if third != 3 {
		t.Errorf("third claim %d, want 3", third)
	}
}
