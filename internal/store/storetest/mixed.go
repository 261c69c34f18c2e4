package storetest

import (
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// testMixedConcurrency runs appends, flag changes, copies, moves and
// expunges on two mailboxes from many goroutines at once, some of them
// failing (over quota), then checks that every counter matches the
// messages that are really there, that ModSeqs only grew, and that every
// acknowledged append that was not expunged or moved away is present.
func testMixedConcurrency(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	other := e.create(a.ID, "Other")
	boxes := []store.MailboxID{inbox.ID, other.ID}
	sub, err := e.s.Subscribe(e.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const workers, steps = 12, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*steps)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < steps; i++ {
				box := boxes[rng.Intn(2)]
				dst := boxes[rng.Intn(2)]
				lo := store.UID(rng.Intn(40) + 1)
				set := store.UIDSet{{Start: lo, Stop: lo + store.UID(rng.Intn(5))}}
				var err error
				switch rng.Intn(6) {
				case 0, 1:
					var st store.Staged
					st, err = e.s.Stage(e.ctx, stringsReader(msg(fmt.Sprintf("mix-%d-%d", w, i))), 0)
					if err == nil {
						_, err = e.s.Append(e.ctx, a.ID, box, []store.AppendMessage{{Body: st, Flags: store.Flags{Sys: store.SysFlags(rng.Intn(16))}}})
						st.Discard()
					}
				case 2:
					_, err = e.s.SetFlags(e.ctx, a.ID, box, set, store.FlagOp(rng.Intn(3)), store.Flags{Sys: store.SysFlags(rng.Intn(16)), Keywords: []string{fmt.Sprint("k", rng.Intn(3))}}, 0)
				case 3:
					_, err = e.s.Copy(e.ctx, a.ID, box, dst, set)
				case 4:
					_, err = e.s.Move(e.ctx, a.ID, box, dst, set)
				case 5:
					_, err = e.s.Expunge(e.ctx, a.ID, box, set)
				}
				if err != nil && !errors.Is(err, store.ErrOverQuota) {
					errs <- err
				}
			}
		}(w)
		if w == workers/2 {
			// Halfway through starting workers, tighten the quota so
			// that some operations fail inside shared commits.
			acct, _ := e.s.AccountByID(e.ctx, a.ID)
			e.s.SetQuota(e.ctx, a.ID, acct.UsedBytes+3000)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var used int64
	for _, id := range boxes {
		m, uids, err := e.s.SelectState(e.ctx, a.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		var unseen, deleted uint32
		ms := e.messages(a.ID, id, all())
		if len(ms) != len(uids) || int(m.Messages) != len(ms) {
			t.Fatalf("mailbox %d: %d messages listed, %d UIDs, counter %d", id, len(ms), len(uids), m.Messages)
		}
		for i, x := range ms {
			if x.UID != uids[i] || x.UID >= m.UIDNext || x.ModSeq > m.HighestModSeq {
				t.Errorf("mailbox %d: message %+v vs UIDNext %d HighestModSeq %d", id, x, m.UIDNext, m.HighestModSeq)
			}
			size += x.Size
			if x.Flags.Sys&store.FlagSeen == 0 {
				unseen++
			}
			if x.Flags.Sys&store.FlagDeleted != 0 {
				deleted++
			}
			if got := e.body(a.ID, id, x.UID); len(got) != int(x.Size) {
				t.Errorf("mailbox %d UID %d: body %d bytes, Size %d", id, x.UID, len(got), x.Size)
			}
		}
		if m.Unseen != unseen || m.Deleted != deleted || m.Size != size {
			t.Errorf("mailbox %d counters: Unseen %d Deleted %d Size %d; counted %d %d %d", id, m.Unseen, m.Deleted, m.Size, unseen, deleted, size)
		}
		used += size
		t.Logf("mailbox %d: %d messages, UIDNext %d, HighestModSeq %d", id, len(ms), m.UIDNext, m.HighestModSeq)
		d, err := e.s.Changes(e.ctx, a.ID, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range d.Vanished {
			for _, u := range uids {
				if u == v {
					t.Errorf("mailbox %d: UID %d both present and vanished", id, u)
				}
			}
		}
	}
	acct, _ := e.s.AccountByID(e.ctx, a.ID)
	if acct.UsedBytes != used {
		t.Errorf("UsedBytes %d, messages add up to %d", acct.UsedBytes, used)
	}
	// The feed's ModSeqs per mailbox only grew.
	last := map[store.MailboxID]store.ModSeq{}
	for {
		select {
		case c := <-sub.C():
			if c.Kind == store.ChangeOverflow || c.Mailbox == 0 {
				continue
			}
			if c.ModSeq <= last[c.Mailbox] {
				t.Errorf("mailbox %d: change ModSeq %d after %d", c.Mailbox, c.ModSeq, last[c.Mailbox])
			}
			last[c.Mailbox] = c.ModSeq
			continue
		default:
		}
		break
	}
}
