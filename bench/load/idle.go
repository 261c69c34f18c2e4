package load

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/skrytka/skrytka/bench/corpus"
)

// IdleParams configure workload 6.
type IdleParams struct {
	Conns int    // idle connections (5,000 in the full run)
	User  string // all of them share this account's INBOX
	// Parallel is how many logins are in flight while connecting. Zero
	// means 1: Skrytka's per-account login throttle queues concurrent
	// attempts on one account as if they might all fail (1 s, 2 s, 4 s ...
	// up to a 1 min cap, then refuses), so parallel logins to the shared
	// account fail there. Logging in is not what this workload measures.
	Parallel int
	// Settle is the pause before memory is read (2 s).
	Settle time.Duration
	Seed   uint64
}

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit, so that
// thousands of client connections fit.
func RaiseFileLimit() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}

// Idle runs workload 6: p.Conns connections log in to one account, SELECT
// INBOX and IDLE. The server's memory (sum over its process tree) is read
// before and after; the difference divided by Conns is the cost of one idle
// connection. Then one message is delivered over LMTP (or SMTP if the
// server has no LMTP) and the time until every connection has seen it as
// EXISTS is measured. Checks: every connection reports exactly one more
// message.
func Idle(ctx context.Context, t *Target, p IdleParams) (*Result, error) {
	res := &Result{Workload: "6-idle", Server: t.Name,
		Params: fmt.Sprintf("%d IDLE connections on one mailbox", p.Conns)}
	if p.Parallel == 0 {
		p.Parallel = 1
	}
	if p.Settle == 0 {
		p.Settle = 2 * time.Second
	}
	RaiseFileLimit()
	before, err := TreeMem(t.PIDs)
	if err != nil {
		return nil, fmt.Errorf("server memory: %w", err)
	}
	type idler struct {
		c    *imapclient.Client
		idle *imapclient.IdleCommand
		base uint32
	}
	idlers := make([]*idler, p.Conns)
	var seenAt = make([]atomic.Int64, p.Conns) // unix nanos of the EXISTS
	var seen atomic.Int64
	allSeen := make(chan struct{})
	var base atomic.Uint32
	defer func() {
		var wg sync.WaitGroup
		for _, id := range idlers {
			if id == nil {
				continue
			}
			wg.Add(1)
			go func(id *idler) {
				defer wg.Done()
				if id.idle != nil {
					id.idle.Close()
				}
				id.c.Close()
			}(id)
		}
		wg.Wait()
	}()
	sem := make(chan struct{}, p.Parallel)
	var wg sync.WaitGroup
	errc := make(chan error, p.Conns)
	for k := 0; k < p.Conns; k++ {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			defer func() { <-sem }()
			var fired atomic.Bool
			h := &imapclient.UnilateralDataHandler{
				Mailbox: func(d *imapclient.UnilateralDataMailbox) {
					b := base.Load()
					if d.NumMessages != nil && b != 0 && *d.NumMessages > b && fired.CompareAndSwap(false, true) {
						seenAt[k].Store(time.Now().UnixNano())
						if seen.Add(1) == int64(p.Conns) {
							close(allSeen)
						}
					}
				},
			}
			c, err := t.imapLogin(p.User, &imapclient.Options{UnilateralDataHandler: h})
			if err != nil {
				errc <- err
				return
			}
			sel, err := c.Select("INBOX", nil).Wait()
			if err != nil {
				c.Close()
				errc <- fmt.Errorf("SELECT: %w", err)
				return
			}
			base.CompareAndSwap(0, sel.NumMessages)
			if sel.NumMessages != base.Load() {
				c.Close()
				errc <- checkf("connection %d sees %d messages, others %d", k, sel.NumMessages, base.Load())
				return
			}
			idle, err := c.Idle()
			if err != nil {
				c.Close()
				errc <- fmt.Errorf("IDLE: %w", err)
				return
			}
			idlers[k] = &idler{c: c, idle: idle, base: sel.NumMessages}
		}(k)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		return nil, err
	}
	if base.Load() == 0 {
		return nil, checkf("%s: INBOX must hold at least one message before the idle test", p.User)
	}
	time.Sleep(p.Settle)
	after, err := TreeMem(t.PIDs)
	if err != nil {
		return nil, fmt.Errorf("server memory: %w", err)
	}
	res.add("PSS KiB/conn", float64(after.PSS-before.PSS)/float64(p.Conns), false)
	res.add("RSS KiB/conn", float64(after.RSS-before.RSS)/float64(p.Conns), false)
	res.Note = fmt.Sprintf("server processes %d -> %d", before.Procs, after.Procs)

	gen := &corpus.Generator{Seed: p.Seed, Profile: corpus.Fixed4K}
	lmtp := t.LMTP != 0
	s, err := t.openMail(lmtp)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	err = s.send("bench@sender.example", []string{p.User}, gen.Message(int(t0.UnixNano()%1e9)))
	s.close()
	if err != nil {
		return nil, fmt.Errorf("delivery to the idlers: %w", err)
	}
	select {
	case <-allSeen:
	case <-time.After(2 * time.Minute):
		return nil, checkf("only %d of %d IDLE connections saw the new message within 2 minutes", seen.Load(), p.Conns)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var last int64
	for k := range seenAt {
		if v := seenAt[k].Load(); v > last {
			last = v
		}
	}
	res.add("EXISTS to all ms", ms(time.Duration(last-t0.UnixNano())), false)
	res.Checked = p.Conns
	return res, nil
}
