package bulk

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/skrytka/skrytka/internal/store"
)

// Batch is how many messages one Append call (one transaction, one fsync)
// carries.
const Batch = 1000

// Skrytka loads the plan into st (Skrytka's embedded store, opened by the
// caller; any store.Store works). Accounts that do not exist are created
// with passwordHash. Messages are staged on every core and appended Batch
// at a time, the next batch being staged while the previous one commits.
func Skrytka(ctx context.Context, st store.Store, p *Plan, passwordHash string) error {
	done := 0
	for a := 0; a < p.Accounts; a++ {
		addr := p.Address(a)
		acct, err := st.Account(ctx, addr)
		if errors.Is(err, store.ErrNotFound) {
			acct, err = st.CreateAccount(ctx, addr, passwordHash)
		}
		if err != nil {
			return fmt.Errorf("bulk: account %s: %w", addr, err)
		}
		inbox, err := st.Mailbox(ctx, acct.ID, store.InboxName)
		if err != nil {
			return fmt.Errorf("bulk: %s INBOX: %w", addr, err)
		}
		have := int(inbox.Messages)
		if have > p.PerAccount {
			return fmt.Errorf("bulk: %s INBOX holds %d messages, more than the plan's %d (a different plan loaded this store?)", addr, have, p.PerAccount)
		}
		// One batch in flight to Append while the next is staged.
		type batch struct {
			msgs []store.AppendMessage
		}
		batches := make(chan batch, 1)
		appendErr := make(chan error, 1)
		go func() {
			var first error
			for b := range batches {
				if first == nil {
					if _, err := st.Append(ctx, acct.ID, inbox.ID, b.msgs); err != nil {
						first = fmt.Errorf("bulk: append to %s: %w", addr, err)
					} else {
						done += len(b.msgs)
						if p.Progress != nil {
							p.Progress(done, p.Total())
						}
					}
				}
				if first != nil {
					for _, m := range b.msgs {
						m.Body.Discard()
					}
				}
			}
			appendErr <- first
		}()
		var stageErr error
		for lo := have; lo < p.PerAccount && stageErr == nil; lo += Batch {
			hi := min(lo+Batch, p.PerAccount)
			msgs, err := parallel(lo, hi, func(j int) (store.AppendMessage, error) {
				body, err := st.Stage(ctx, bytes.NewReader(p.Gen.Message(p.Index(a, j))), 0)
				if err != nil {
					return store.AppendMessage{}, err
				}
				var f store.Flags
				if p.seen(j) {
					f.Sys = store.FlagSeen
				}
				return store.AppendMessage{Body: body, Flags: f, InternalDate: p.InternalDate(j)}, nil
			})
			if err != nil {
				for _, m := range msgs {
					if m.Body != nil {
						m.Body.Discard()
					}
				}
				stageErr = fmt.Errorf("bulk: stage for %s: %w", addr, err)
				break
			}
			batches <- batch{msgs}
		}
		close(batches)
		if err := errors.Join(stageErr, <-appendErr); err != nil {
			return err
		}
	}
	return nil
}
