package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/skrytka/skrytka/bench/corpus"
)

// AppendMailbox is the mailbox workload 8 appends into, in each client's
// own account. It is created at the start and deleted at the end, so the
// stores stay as loaded.
const AppendMailbox = "BenchAppend"

// AppendParams configure workload 8.
type AppendParams struct {
	Clients  int           // concurrent clients (10); client k appends as user k
	Duration time.Duration // how long each client appends
	Seed     uint64
}

// Append runs workload 8 (issue 3's "APPEND throughput"): each of
// p.Clients clients logs in as its own user, creates AppendMailbox and
// APPENDs 4 KB text messages into it, one command after the other, for
// p.Duration. Only the APPEND commands are timed. Checks, per client: the
// mailbox holds exactly as many messages as APPENDs were answered OK
// (STATUS), and the first and last appended messages read back
// byte-identical (by their APPENDUID, or by position if the server has no
// UIDPLUS). The mailbox is deleted afterwards.
func Append(ctx context.Context, t *Target, p AppendParams) (*Result, error) {
	res := &Result{Workload: "8-append", Server: t.Name,
		Params: fmt.Sprintf("4 KB text, %d clients, own mailbox each, %s", p.Clients, p.Duration)}
	gen := &corpus.Generator{Seed: p.Seed, Profile: corpus.Fixed4K}
	var next atomic.Int64
	next.Store(time.Now().UnixNano() % 1e9) // fresh messages each run
	var lat Latencies
	var checked atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
	}
	// Every client is logged in with its mailbox created before the clock
	// starts.
	clients := make([]*imapclient.Client, p.Clients)
	for k := range clients {
		c, err := t.imapLogin(t.User(k+1), nil)
		if err == nil {
			err = freshMailbox(c, AppendMailbox)
		}
		if err != nil {
			for _, c := range clients[:k] {
				imapClose(c)
			}
			if c != nil {
				imapClose(c)
			}
			return nil, err
		}
		clients[k] = c
	}
	deadline := time.Now().Add(p.Duration)
	start := time.Now()
	type appended struct {
		idx int
		uid imap.UID
	}
	firsts := make([]appended, p.Clients)
	lasts := make([]appended, p.Clients)
	oks := make([]int, p.Clients)
	for k, c := range clients {
		wg.Add(1)
		go func(k int, c *imapclient.Client) {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := int(next.Add(1))
				msg := gen.Message(i)
				t0 := time.Now()
				uid, err := appendOne(c, AppendMailbox, msg)
				if err != nil {
					fail(fmt.Errorf("client %d: APPEND: %w", k+1, err))
					return
				}
				lat.Add(time.Since(t0))
				if oks[k] == 0 {
					firsts[k] = appended{i, uid}
				}
				lasts[k] = appended{i, uid}
				oks[k]++
			}
		}(k, c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	defer func() {
		for _, c := range clients {
			c.Delete(AppendMailbox).Wait()
			imapClose(c)
		}
	}()
	if firstErr != nil {
		return nil, firstErr
	}
	total := 0
	for k, c := range clients {
		user := t.User(k + 1)
		total += oks[k]
		st, err := c.Status(AppendMailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return nil, fmt.Errorf("%s: STATUS %s: %w", user, AppendMailbox, err)
		}
		if st.NumMessages == nil || int(*st.NumMessages) != oks[k] {
			got := -1
			if st.NumMessages != nil {
				got = int(*st.NumMessages)
			}
			return nil, checkf("%s: %s holds %d messages, but %d APPENDs were answered OK", user, AppendMailbox, got, oks[k])
		}
		if oks[k] == 0 {
			continue
		}
		if _, err := c.Select(AppendMailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return nil, fmt.Errorf("%s: EXAMINE %s: %w", user, AppendMailbox, err)
		}
		for _, a := range []struct {
			m   appended
			seq uint32
		}{{firsts[k], 1}, {lasts[k], uint32(oks[k])}} {
			var set imap.NumSet = imap.SeqSetNum(a.seq)
			if a.m.uid != 0 {
				set = imap.UIDSetNum(a.m.uid)
			}
			raw, err := fetchBody(c, set)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", user, err)
			}
			if want := gen.Message(a.m.idx); !bytes.Equal(raw, want) {
				return nil, checkf("%s: appended message %v reads back different (%d bytes, sent %d)", user, set, len(raw), len(want))
			}
			checked.Add(1)
		}
		if err := c.Unselect().Wait(); err != nil {
			return nil, fmt.Errorf("%s: UNSELECT: %w", user, err)
		}
	}
	res.add("msgs/s", float64(total)/elapsed.Seconds(), true)
	res.add("p99 ms", lat.Quantile(0.99), false)
	res.Checked = total + int(checked.Load())
	return res, nil
}

// freshMailbox deletes name if it exists (left over from an interrupted
// run) and creates it empty.
func freshMailbox(c *imapclient.Client, name string) error {
	err := c.Delete(name).Wait()
	var ie *imap.Error
	if err != nil && !errors.As(err, &ie) {
		return fmt.Errorf("DELETE %s: %w", name, err)
	}
	if err := c.Create(name, nil).Wait(); err != nil {
		return fmt.Errorf("CREATE %s: %w", name, err)
	}
	return nil
}

// appendOne APPENDs msg to mailbox and returns its UID (0 if the server
// sent no APPENDUID).
func appendOne(c *imapclient.Client, mailbox string, msg []byte) (imap.UID, error) {
	cmd := c.Append(mailbox, int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	ad, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	if ad == nil {
		return 0, nil
	}
	return ad.UID, nil
}
