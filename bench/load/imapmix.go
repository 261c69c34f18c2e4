package load

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/skrytka/skrytka/bench/corpus"
)

// MixParams configure workload 3.
type MixParams struct {
	Clients  int           // concurrent clients (50), client k logs in as user k
	Duration time.Duration // 30 s
	// Preloaded is how many corpus messages each user's INBOX holds; every
	// session checks that SELECT reports exactly this many.
	Preloaded int
	Seed      uint64
	// IdleFor is how long each session stays in IDLE (200 ms).
	IdleFor time.Duration
}

// IMAPMix runs workload 3: each client repeats a mail client's session
// (LOGIN, SELECT, UID FETCH flags and envelopes of the newest 20, FETCH
// three whole messages, STORE a flag and take it back, APPEND, STORE
// \Deleted + EXPUNGE of what it appended, IDLE, LOGOUT) until the time is
// up. Every command is one operation; the result is operations/s and the
// 99th percentile latency. Bodies are checked against the corpus hashes,
// counts against Preloaded, and the appended message against what was sent.
func IMAPMix(ctx context.Context, t *Target, p MixParams) (*Result, error) {
	res := &Result{Workload: "3-imap-mix", Server: t.Name,
		Params: fmt.Sprintf("%d clients, %s, %d msgs/user", p.Clients, p.Duration, p.Preloaded)}
	if p.IdleFor == 0 {
		p.IdleFor = 200 * time.Millisecond
	}
	var lat Latencies
	var checked atomic.Int64
	deadline := time.Now().Add(p.Duration)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	start := time.Now()
	for k := 1; k <= p.Clients; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(k), uint64(time.Now().UnixNano())))
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				if err := mixSession(t, t.User(k), p, rng, &lat, &checked, n); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("client %d: %w", k, err) })
					cancel()
					return
				}
			}
		}(k)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return nil, firstErr
	}
	res.add("ops/s", float64(lat.Count())/elapsed.Seconds(), true)
	res.add("p99 ms", lat.Quantile(0.99), false)
	res.Checked = int(checked.Load())
	return res, nil
}

func mixSession(t *Target, user string, p MixParams, rng *rand.Rand, lat *Latencies, checked *atomic.Int64, n int) error {
	op := func(f func() error) error {
		t0 := time.Now()
		err := f()
		lat.Add(time.Since(t0))
		return err
	}
	var c *imapclient.Client
	if err := op(func() (err error) { c, err = t.imapLogin(user, nil); return err }); err != nil {
		return err
	}
	defer imapClose(c)
	var sel *imap.SelectData
	if err := op(func() (err error) { sel, err = c.Select("INBOX", nil).Wait(); return err }); err != nil {
		return fmt.Errorf("SELECT: %w", err)
	}
	if int(sel.NumMessages) != p.Preloaded {
		return checkf("%s: SELECT says %d messages, want %d", user, sel.NumMessages, p.Preloaded)
	}
	total := sel.NumMessages
	if total == 0 {
		return checkf("%s: empty INBOX", user)
	}
	// Newest 20: flags, envelope, size.
	lo := uint32(1)
	if total > 20 {
		lo = total - 19
	}
	var envs []*imapclient.FetchMessageBuffer
	if err := op(func() (err error) {
		envs, err = c.Fetch(imap.SeqSet{imap.SeqRange{Start: lo, Stop: total}}, &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true}).Collect()
		return err
	}); err != nil {
		return fmt.Errorf("FETCH envelopes: %w", err)
	}
	if len(envs) != int(total-lo+1) {
		return checkf("%s: FETCH %d:%d returned %d messages", user, lo, total, len(envs))
	}
	for _, m := range envs {
		if m.Envelope == nil || m.UID == 0 || m.RFC822Size <= 0 {
			return checkf("%s: FETCH of message %d lacks envelope, UID or size", user, m.SeqNum)
		}
	}
	checked.Add(int64(len(envs)))
	// Three whole messages.
	for j := 0; j < 3; j++ {
		seq := uint32(rng.IntN(int(total))) + 1
		var raw []byte
		if err := op(func() (err error) { raw, err = fetchBody(c, imap.SeqSetNum(seq)); return err }); err != nil {
			return err
		}
		if _, err := corpus.Verify(raw); err != nil {
			return checkf("%s: message %d: %v", user, seq, err)
		}
		checked.Add(1)
	}
	// A flag set and taken back.
	seq := imap.SeqSetNum(uint32(rng.IntN(int(total))) + 1)
	for _, o := range []imap.StoreFlagsOp{imap.StoreFlagsAdd, imap.StoreFlagsDel} {
		if err := op(func() error {
			return c.Store(seq, &imap.StoreFlags{Op: o, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
		}); err != nil {
			return fmt.Errorf("STORE: %w", err)
		}
	}
	// APPEND, check, then delete it again so the mailbox stays as loaded.
	gen := &corpus.Generator{Seed: 77, Profile: corpus.Fixed4K}
	msg := gen.Message(n)
	var ad *imap.AppendData
	if err := op(func() error {
		cmd := c.Append("INBOX", int64(len(msg)), nil)
		if _, err := cmd.Write(msg); err != nil {
			cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		var err error
		ad, err = cmd.Wait()
		return err
	}); err != nil {
		return fmt.Errorf("APPEND: %w", err)
	}
	// The new message shows up as EXISTS with the next command.
	if err := op(func() error { return c.Noop().Wait() }); err != nil {
		return fmt.Errorf("NOOP: %w", err)
	}
	mb := c.Mailbox()
	if mb == nil || mb.NumMessages != total+1 {
		got := uint32(0)
		if mb != nil {
			got = mb.NumMessages
		}
		return checkf("%s: after APPEND the mailbox has %d messages, want %d", user, got, total+1)
	}
	var set imap.NumSet = imap.SeqSetNum(total + 1)
	if ad != nil && ad.UID != 0 {
		set = imap.UIDSetNum(ad.UID)
	}
	var raw []byte
	if err := op(func() (err error) { raw, err = fetchBody(c, set); return err }); err != nil {
		return err
	}
	if !bytes.Equal(raw, msg) {
		return checkf("%s: appended message reads back different (%d bytes, sent %d)", user, len(raw), len(msg))
	}
	checked.Add(1)
	if err := op(func() error {
		return c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	}); err != nil {
		return fmt.Errorf("STORE \\Deleted: %w", err)
	}
	var gone []uint32
	if err := op(func() (err error) {
		if u, ok := set.(imap.UIDSet); ok && c.Caps().Has(imap.CapUIDPlus) {
			gone, err = c.UIDExpunge(u).Collect()
		} else {
			gone, err = c.Expunge().Collect()
		}
		return err
	}); err != nil {
		return fmt.Errorf("EXPUNGE: %w", err)
	}
	if len(gone) != 1 || gone[0] != total+1 {
		return checkf("%s: EXPUNGE removed %v, want [%d]", user, gone, total+1)
	}
	// IDLE a little, as a client waiting for mail does.
	if c.Caps().Has(imap.CapIdle) {
		var idle *imapclient.IdleCommand
		if err := op(func() (err error) { idle, err = c.Idle(); return err }); err != nil {
			return fmt.Errorf("IDLE: %w", err)
		}
		time.Sleep(p.IdleFor)
		if err := op(func() error {
			if err := idle.Close(); err != nil {
				return err
			}
			return idle.Wait()
		}); err != nil {
			return fmt.Errorf("IDLE DONE: %w", err)
		}
	}
	return op(func() error { return c.Logout().Wait() })
}
