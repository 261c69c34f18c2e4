package storetest

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

func testUIDRules(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	var uids []store.UID
	for i := 0; i < 3; i++ {
		uids = append(uids, e.append(a.ID, inbox.ID, msg(fmt.Sprint("m", i)), store.Flags{}))
	}
	if !equalUIDs(uids, []store.UID{1, 2, 3}) {
		t.Fatalf("first UIDs %v, want 1 2 3", uids)
	}
	got, err := e.s.Expunge(e.ctx, a.ID, inbox.ID, store.UIDSetOf(3))
	if err != nil || !equalUIDs(got, []store.UID{3}) {
		t.Fatalf("Expunge 3: %v %v", got, err)
	}
	if u := e.append(a.ID, inbox.ID, msg("m4"), store.Flags{}); u != 4 {
		t.Errorf("UID after expunging the last is %d, want 4 (no reuse)", u)
	}
	// Expunging everything does not reset UIDNext either.
	if _, err := e.s.Expunge(e.ctx, a.ID, inbox.ID, all()); err != nil {
		t.Fatal(err)
	}
	m := e.mailboxByID(a.ID, inbox.ID)
	if m.UIDNext != 5 || m.Messages != 0 {
		t.Errorf("after expunging all: UIDNext %d Messages %d", m.UIDNext, m.Messages)
	}
	if m.UIDValidity != inbox.UIDValidity {
		t.Errorf("UIDVALIDITY changed from %d to %d", inbox.UIDValidity, m.UIDValidity)
	}
	if u := e.append(a.ID, inbox.ID, msg("m5"), store.Flags{}); u != 5 {
		t.Errorf("UID after expunging all is %d, want 5", u)
	}
	// Expunging UIDs that do not exist is not an error and removes nothing.
	got, err = e.s.Expunge(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1, 2, 99))
	if err != nil || len(got) != 0 {
		t.Errorf("Expunge of missing UIDs: %v %v", got, err)
	}
	// A deleted and recreated mailbox gets a new UIDVALIDITY.
	x := e.create(a.ID, "Again")
	e.append(a.ID, x.ID, msg("x"), store.Flags{})
	if err := e.s.DeleteMailbox(e.ctx, a.ID, "Again"); err != nil {
		t.Fatal(err)
	}
	y := e.create(a.ID, "Again")
	if y.UIDValidity == x.UIDValidity && y.UIDNext <= x.UIDNext {
		t.Errorf("recreated mailbox reuses UIDVALIDITY %d with UIDNext %d", y.UIDValidity, y.UIDNext)
	}
}

func testUIDsAcrossReopen(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	e.append(a.ID, inbox.ID, msg("1"), store.Flags{Sys: store.FlagSeen, Keywords: []string{"$Label1"}})
	u2 := e.append(a.ID, inbox.ID, msg("2"), store.Flags{})
	e.s.Expunge(e.ctx, a.ID, inbox.ID, store.UIDSetOf(u2))
	sub := e.create(a.ID, "Sub/Child")
	e.append(a.ID, sub.ID, msg("sub"), store.Flags{})
	before := e.mailboxByID(a.ID, inbox.ID)

	e.reopen()

	after := e.mailboxByID(a.ID, inbox.ID)
	if after.UIDValidity != before.UIDValidity || after.UIDNext != before.UIDNext || after.HighestModSeq != before.HighestModSeq {
		t.Errorf("mailbox changed across reopen: %+v -> %+v", before, after)
	}
	if u := e.append(a.ID, inbox.ID, msg("3"), store.Flags{}); u != 3 {
		t.Errorf("UID after reopen %d, want 3", u)
	}
	m := e.message(a.ID, inbox.ID, 1)
	if m.Flags.Sys != store.FlagSeen || len(m.Flags.Keywords) != 1 || m.Flags.Keywords[0] != "$Label1" {
		t.Errorf("flags after reopen: %+v", m.Flags)
	}
	if got := e.body(a.ID, inbox.ID, 1); got != msg("1") {
		t.Errorf("body after reopen: %q", got)
	}
	if got := e.mailbox(a.ID, "Sub/Child"); got.Messages != 1 {
		t.Errorf("Sub/Child after reopen: %+v", got)
	}
	acct, err := e.s.AccountByID(e.ctx, a.ID)
	if err != nil || acct.Address != a.Address {
		t.Errorf("account after reopen: %+v %v", acct, err)
	}
	d, err := e.s.Changes(e.ctx, a.ID, inbox.ID, before.HighestModSeq-1)
	if err != nil {
		t.Fatal(err)
	}
	if !equalUIDs(d.Vanished, []store.UID{u2}) {
		t.Errorf("tombstone lost across reopen: vanished %v", d.Vanished)
	}
}

func testAppendAtomic(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	date := time.Date(2020, 3, 4, 5, 6, 7, 0, time.FixedZone("", -7*3600))
	msgs := []store.AppendMessage{
		{Body: e.stage(msg("a")), Flags: store.Flags{Sys: store.FlagSeen}, InternalDate: date},
		{Body: e.stage(msg("b")), Flags: store.Flags{Keywords: []string{"Work"}}},
		{Body: e.stage(msg("c"))},
	}
	res, err := e.s.Append(e.ctx, a.ID, inbox.ID, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if !equalUIDs(res.UIDs, []store.UID{1, 2, 3}) || res.UIDValidity != inbox.UIDValidity || res.ModSeq == 0 {
		t.Errorf("AppendResult %+v", res)
	}
	ms := e.messages(a.ID, inbox.ID, all())
	if len(ms) != 3 {
		t.Fatalf("%d messages", len(ms))
	}
	if !ms[0].InternalDate.Equal(date) {
		t.Errorf("internal date %v, want %v", ms[0].InternalDate, date)
	}
	if _, off := ms[0].InternalDate.Zone(); off != -7*3600 {
		t.Errorf("internal date zone offset %d, want %d", off, -7*3600)
	}
	if time.Since(ms[1].InternalDate) > time.Hour {
		t.Errorf("zero internal date became %v, want now", ms[1].InternalDate)
	}
	for _, m := range ms {
		if m.ModSeq != res.ModSeq {
			t.Errorf("message %d modseq %d, AppendResult %d", m.UID, m.ModSeq, res.ModSeq)
		}
	}
	// All or nothing: the second message makes the account go over quota.
	if err := e.s.SetQuota(e.ctx, a.ID, e.mailboxByID(a.ID, inbox.ID).Size+int64(len(msg("d")))+10); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Append(e.ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: e.stage(msg("d"))}, {Body: e.stage(msg("e"))}})
	wantErr(t, "Append over quota", err, store.ErrOverQuota)
	if n := len(e.uids(a.ID, inbox.ID)); n != 3 {
		t.Errorf("failed Append left %d messages, want 3", n)
	}
	if m := e.mailboxByID(a.ID, inbox.ID); m.UIDNext != 4 {
		t.Logf("UIDNext after failed append: %d", m.UIDNext)
	}
	// A bad keyword fails the whole append.
	e.s.SetQuota(e.ctx, a.ID, 0)
	_, err = e.s.Append(e.ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: e.stage(msg("f"))}, {Body: e.stage(msg("g")), Flags: store.Flags{Keywords: []string{"bad word"}}}})
	wantErr(t, "Append with a bad keyword", err, store.ErrBadFlag)
	if n := len(e.uids(a.ID, inbox.ID)); n != 3 {
		t.Errorf("failed Append left %d messages, want 3", n)
	}
	// Appending to a \Noselect placeholder.
	e.create(a.ID, "P/C")
	if err := e.s.DeleteMailbox(e.ctx, a.ID, "P"); err != nil {
		t.Fatal(err)
	}
	p := e.mailbox(a.ID, "P")
	_, err = e.s.Append(e.ctx, a.ID, p.ID, []store.AppendMessage{{Body: e.stage(msg("h"))}})
	wantErr(t, "Append to \\Noselect", err, store.ErrNoSelect)
}

func testConcurrentAppenders(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	const writers, each = 50, 6
	var mu sync.Mutex
	seen := make(map[store.UID]string)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				body := msg(fmt.Sprintf("w%d-%d", w, i))
				st, err := e.s.Stage(e.ctx, stringsReader(body), 0)
				if err != nil {
					errs <- err
					return
				}
				res, err := e.s.Append(e.ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: st}})
				st.Discard()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := seen[res.UIDs[0]]; dup {
					errs <- fmt.Errorf("UID %d given to %q and %q", res.UIDs[0], prev, body)
				}
				seen[res.UIDs[0]] = body
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	uids := e.uids(a.ID, inbox.ID)
	if len(uids) != writers*each || len(seen) != writers*each {
		t.Fatalf("%d messages stored, %d acknowledged, want %d", len(uids), len(seen), writers*each)
	}
	for i, u := range uids {
		if u != store.UID(i+1) {
			t.Fatalf("UIDs not dense: position %d has %d", i, u)
		}
		if got := e.body(a.ID, inbox.ID, u); got != seen[u] {
			t.Fatalf("UID %d holds %q, acknowledged for %q", u, got, seen[u])
		}
	}
	m := e.mailboxByID(a.ID, inbox.ID)
	if m.UIDNext != store.UID(writers*each+1) || m.Messages != writers*each {
		t.Errorf("mailbox %+v", m)
	}
}

func testCopy(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	dst := e.create(a.ID, "Dst")
	e.append(a.ID, dst.ID, msg("existing"), store.Flags{})
	for i := 0; i < 4; i++ {
		e.append(a.ID, inbox.ID, msg(fmt.Sprint("c", i)), store.Flags{Sys: store.FlagFlagged, Keywords: []string{"K1"}})
	}
	e.s.Expunge(e.ctx, a.ID, inbox.ID, store.UIDSetOf(2))
	res, err := e.s.Copy(e.ctx, a.ID, inbox.ID, dst.ID, store.UIDSet{{Start: 1, Stop: 3}, {Start: 4, Stop: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if res.UIDValidity != dst.UIDValidity || !equalUIDs(res.SrcUIDs, []store.UID{1, 3, 4}) || !equalUIDs(res.DstUIDs, []store.UID{2, 3, 4}) {
		t.Errorf("CopyResult %+v", res)
	}
	for i, su := range res.SrcUIDs {
		du := res.DstUIDs[i]
		if e.body(a.ID, inbox.ID, su) != e.body(a.ID, dst.ID, du) {
			t.Errorf("copy %d->%d: bodies differ", su, du)
		}
		m := e.message(a.ID, dst.ID, du)
		if m.Flags.Sys != store.FlagFlagged || len(m.Flags.Keywords) != 1 || m.Flags.Keywords[0] != "K1" {
			t.Errorf("copied flags %+v", m.Flags)
		}
	}
	if n := len(e.uids(a.ID, inbox.ID)); n != 3 {
		t.Errorf("source has %d after copy, want 3", n)
	}
	// Copying into the same mailbox is allowed and gives new UIDs.
	res, err = e.s.Copy(e.ctx, a.ID, inbox.ID, inbox.ID, store.UIDSetOf(1))
	if err != nil || !equalUIDs(res.DstUIDs, []store.UID{5}) {
		t.Errorf("copy into the same mailbox: %+v %v", res, err)
	}
	// Nothing to copy.
	res, err = e.s.Copy(e.ctx, a.ID, inbox.ID, dst.ID, store.UIDSetOf(99))
	if err != nil || len(res.DstUIDs) != 0 {
		t.Errorf("copy of missing UIDs: %+v %v", res, err)
	}
	// Expunging the source keeps the copy readable (shared body).
	e.s.Expunge(e.ctx, a.ID, inbox.ID, all())
	if got := e.body(a.ID, dst.ID, 2); got != msg("c0") {
		t.Errorf("copy after source expunge: %q", got)
	}
	_, err = e.s.Copy(e.ctx, a.ID, inbox.ID, dst.ID+1000, store.UIDSetOf(1))
	wantErr(t, "Copy to a missing mailbox", err, store.ErrNotFound)
}

func testMove(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	dst := e.create(a.ID, "Dst")
	for i := 0; i < 3; i++ {
		e.append(a.ID, inbox.ID, msg(fmt.Sprint("mv", i)), store.Flags{Sys: store.FlagSeen})
	}
	before := e.mailboxByID(a.ID, inbox.ID)
	acctBefore, _ := e.s.AccountByID(e.ctx, a.ID)
	res, err := e.s.Move(e.ctx, a.ID, inbox.ID, dst.ID, store.UIDSetOf(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if !equalUIDs(res.SrcUIDs, []store.UID{1, 3}) || !equalUIDs(res.DstUIDs, []store.UID{1, 2}) || res.UIDValidity != dst.UIDValidity {
		t.Errorf("move result %+v", res)
	}
	if u := e.uids(a.ID, inbox.ID); !equalUIDs(u, []store.UID{2}) {
		t.Errorf("source after move %v", u)
	}
	if e.body(a.ID, dst.ID, 2) != msg("mv2") {
		t.Error("moved body differs")
	}
	d, err := e.s.Changes(e.ctx, a.ID, inbox.ID, before.HighestModSeq)
	if err != nil {
		t.Fatal(err)
	}
	if !equalUIDs(d.Vanished, []store.UID{1, 3}) || d.Mailbox.HighestModSeq <= before.HighestModSeq {
		t.Errorf("source changes after move: %+v", d)
	}
	acct, _ := e.s.AccountByID(e.ctx, a.ID)
	if acct.UsedBytes != acctBefore.UsedBytes {
		t.Errorf("move changed UsedBytes %d -> %d", acctBefore.UsedBytes, acct.UsedBytes)
	}
	dm := e.mailboxByID(a.ID, dst.ID)
	if dm.Messages != 2 || dm.Unseen != 0 || dm.UIDNext != 3 {
		t.Errorf("destination after move %+v", dm)
	}
}

type sortUIDs []store.UID

func (s sortUIDs) sorted() []store.UID {
	out := append([]store.UID(nil), s...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
