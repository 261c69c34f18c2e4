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
	// Steps are the connection counts measured, in increasing order
	// (issue 8: 5,000; issue 3: 2,000). Connections are opened up to the
	// first step, measured, then more are opened up to the next step and
	// measured again, and so on; each step gives one result.
	Steps []int
	User  string // all of them share this account's INBOX
	// Parallel is how many logins are in flight while connecting (zero
	// means 1). Logging in is not what this workload measures, but it
	// decides how long opening thousands of connections takes.
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

// idleStep is the delivery being waited for: every open connection must
// see EXISTS reach target.
type idleStep struct {
	n      int32 // step number, 1-based
	target uint32
	want   int64
	seen   atomic.Int64
	last   atomic.Int64 // unix nanos of the latest EXISTS seen
	done   chan struct{}
}

// Idle runs workload 6: connections log in to one account, SELECT INBOX
// and IDLE, up to each of p.Steps in turn. At each step the server's
// memory (PSS and RSS summed over its process tree) is read; the growth
// since before the first connection, divided by the number of
// connections, is the cost of one idle connection. Then one message is
// delivered over LMTP (or SMTP if the server has no LMTP) and the time
// until every open connection has seen it as EXISTS is measured. Checks:
// every connection sees the same message count at SELECT and then the
// new message. One result per step, named 6-idle-N; it also reports the
// time spent opening the step's connections so far ("open all s").
func Idle(ctx context.Context, t *Target, p IdleParams) ([]*Result, error) {
	if p.Parallel <= 0 {
		p.Parallel = 1
	}
	if p.Settle == 0 {
		p.Settle = 2 * time.Second
	}
	for k, n := range p.Steps {
		if n <= 0 || (k > 0 && n <= p.Steps[k-1]) {
			return nil, fmt.Errorf("idle: steps %v must be positive and increasing", p.Steps)
		}
	}
	if len(p.Steps) == 0 {
		return nil, fmt.Errorf("idle: no steps")
	}
	RaiseFileLimit()
	before, err := TreeMem(t.PIDs)
	if err != nil {
		return nil, fmt.Errorf("server memory: %w", err)
	}
	type idler struct {
		c    *imapclient.Client
		idle *imapclient.IdleCommand
	}
	total := p.Steps[len(p.Steps)-1]
	idlers := make([]*idler, total)
	var cur atomic.Pointer[idleStep]
	var count atomic.Uint32 // messages every connection should see at SELECT
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
	gen := &corpus.Generator{Seed: p.Seed, Profile: corpus.Fixed4K}
	var out []*Result
	opened := 0
	var openAll time.Duration
	for sn, step := range p.Steps {
		res := &Result{Workload: fmt.Sprintf("6-idle-%d", step), Server: t.Name,
			Params: fmt.Sprintf("%d IDLE connections on one mailbox, %d logins in flight", step, p.Parallel)}
		t0 := time.Now()
		sem := make(chan struct{}, p.Parallel)
		var wg sync.WaitGroup
		errc := make(chan error, step-opened)
		for k := opened; k < step; k++ {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				defer func() { <-sem }()
				var fired atomic.Int32 // last step whose EXISTS this connection saw
				h := &imapclient.UnilateralDataHandler{
					Mailbox: func(d *imapclient.UnilateralDataMailbox) {
						st := cur.Load()
						if d.NumMessages == nil || st == nil || *d.NumMessages < st.target {
							return
						}
						if old := fired.Load(); old < st.n && fired.CompareAndSwap(old, st.n) {
							st.last.Store(time.Now().UnixNano())
							if st.seen.Add(1) == st.want {
								close(st.done)
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
				count.CompareAndSwap(0, sel.NumMessages)
				if sel.NumMessages != count.Load() {
					c.Close()
					errc <- checkf("connection %d sees %d messages, others %d", k, sel.NumMessages, count.Load())
					return
				}
				if st := cur.Load(); st != nil {
					fired.Store(st.n) // it saw the last step's message at SELECT
				}
				idle, err := c.Idle()
				if err != nil {
					c.Close()
					errc <- fmt.Errorf("IDLE: %w", err)
					return
				}
				idlers[k] = &idler{c: c, idle: idle}
			}(k)
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		opened = step
		openAll += time.Since(t0)
		if count.Load() == 0 {
			return nil, checkf("%s: INBOX must hold at least one message before the idle test", p.User)
		}
		time.Sleep(p.Settle)
		after, err := TreeMem(t.PIDs)
		if err != nil {
			return nil, fmt.Errorf("server memory: %w", err)
		}
		res.add("PSS KiB/conn", float64(after.PSS-before.PSS)/float64(step), false)
		res.add("RSS KiB/conn", float64(after.RSS-before.RSS)/float64(step), false)
		res.Note = fmt.Sprintf("server processes %d -> %d", before.Procs, after.Procs)

		st := &idleStep{n: int32(sn + 1), target: count.Load() + 1, want: int64(step), done: make(chan struct{})}
		cur.Store(st)
		s, err := t.openMail(t.LMTP != 0)
		if err != nil {
			return nil, err
		}
		d0 := time.Now()
		err = s.send("bench@sender.example", []string{p.User}, gen.Message(int(d0.UnixNano()%1e9)))
		s.close()
		if err != nil {
			return nil, fmt.Errorf("delivery to the idlers: %w", err)
		}
		select {
		case <-st.done:
		case <-time.After(2 * time.Minute):
			return nil, checkf("only %d of %d IDLE connections saw the new message within 2 minutes", st.seen.Load(), step)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		count.Store(st.target)
		res.add("EXISTS to all ms", ms(time.Duration(st.last.Load()-d0.UnixNano())), false)
		res.add("open all s", openAll.Seconds(), false)
		res.Checked = step
		out = append(out, res)
	}
	return out, nil
}
