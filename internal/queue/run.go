package queue

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/outbound"
	"github.com/skrytka/skrytka/internal/store"
)

// backoff is the wait before attempt n+1 after n failed attempts: quick
// retries first (greylisting usually clears within minutes), then at most
// every 4 hours.
func backoff(n int) time.Duration {
	steps := []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}
	if n-1 < len(steps) && n >= 1 {
		return steps[n-1]
	}
	return 4 * time.Hour
}

// errExpired marks recipients given up after MaxAge (RFC 3463 4.4.7).
var errExpired = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 7},
	Message: "Delivery time expired; last error: "}

// RunOnce makes one attempt for every due entry.
func (q *Queue) RunOnce(ctx context.Context) error {
	q.passMu.Lock()
	defer q.passMu.Unlock()
	type due struct {
		uid       store.UID
		env       envelope
		off, size int64
	}
	now := q.opts.Now()
	var todo []due
	err := q.each(ctx, func(uid store.UID, env envelope, off, size int64) error {
		if !env.Next.After(now) {
			todo = append(todo, due{uid, env, off, size})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Entries go out in parallel (up to Concurrency at once), so that one
	// slow or unreachable destination does not hold up the others; within
	// the pass, connections stay open for the next message to the same
	// server.
	batch := q.sender.NewBatch()
	defer batch.Close()
	sem := make(chan struct{}, q.opts.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, d := range todo {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := q.process(ctx, batch, d.uid, d.env, d.off, d.size); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// process makes one delivery attempt for an entry and records the outcome:
// delivered recipients are done, permanent failures and expired ones get a
// DSN, the rest wait for the next attempt.
func (q *Queue) process(ctx context.Context, batch *outbound.Batch, uid store.UID, env envelope, off, size int64) error {
	inbox, err := q.st.Mailbox(ctx, q.acct, store.InboxName)
	if err != nil {
		return err
	}
	r, err := q.st.OpenMessage(ctx, q.acct, inbox.ID, uid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	results := batch.Deliver(ctx, outbound.Message{From: env.From, Rcpts: env.To,
		Body: io.NewSectionReader(r, off, size), Size: size})
	now := q.opts.Now()
	expired := now.Sub(env.Arrival) >= q.opts.MaxAge
	var pending []string
	var failed, deferred []outbound.Result
	for _, res := range results {
		switch {
		case res.Err == nil:
			q.log.Info("delivered", "from", env.From, "rcpt", res.Rcpt, "host", res.Host, "attempt", env.Attempts+1)
		case !res.Temporary:
			q.log.Info("delivery failed", "from", env.From, "rcpt", res.Rcpt, "host", res.Host, "err", res.Err)
			failed = append(failed, res)
		case expired:
			q.log.Info("delivery expired", "from", env.From, "rcpt", res.Rcpt, "err", res.Err)
			e := *errExpired
			e.Message += oneLine(res.Err.Error())
			res.Err = &e
			failed = append(failed, res)
		default:
			q.log.Info("delivery deferred", "from", env.From, "rcpt", res.Rcpt, "err", res.Err)
			pending = append(pending, res.Rcpt)
			deferred = append(deferred, res)
		}
	}
	if len(failed) > 0 {
		if err := q.notify(ctx, env, io.NewSectionReader(r, off, size), failed, false, now); err != nil {
			// The failure is recorded in the log; the message itself
			// cannot be delivered, so it does not stay queued for this.
			q.log.Error("DSN not stored", "from", env.From, "err", err)
		}
	}
	if len(deferred) > 0 && !env.Warned && q.opts.DelayWarning > 0 && now.Sub(env.Arrival) >= q.opts.DelayWarning {
		if err := q.notify(ctx, env, io.NewSectionReader(r, off, size), deferred, true, now); err != nil {
			q.log.Error("delay DSN not stored", "from", env.From, "err", err)
		}
		env.Warned = true
	}
	if len(pending) > 0 {
		env.To = pending
		env.Attempts++
		env.Next = now.Add(backoff(env.Attempts))
		return q.replace(ctx, uid, env, off, size)
	}
	_, err = q.st.Expunge(ctx, q.acct, inbox.ID, store.UIDSetOf(uid))
	return err
}

// notify sends a DSN for failed (or, with delayed, still pending)
// recipients to the envelope sender: into their INBOX when they are ours,
// else through the queue with the null reverse-path. A message with the
// null sender never causes a DSN (RFC 5321 §4.5.5).
func (q *Queue) notify(ctx context.Context, env envelope, msg io.Reader, results []outbound.Result, delayed bool, now time.Time) error {
	if env.From == "" {
		return nil
	}
	dsn := outbound.DSN{ReportingMTA: q.opts.Hostname, Sender: env.From, Arrival: env.Arrival,
		Header: headerSection(msg), Results: results, Delayed: delayed}.Build(now)
	acct, err := q.localAccount(ctx, env.From)
	if errors.Is(err, store.ErrNotFound) {
		return q.add(ctx, envelope{To: []string{env.From}, Arrival: now, Next: now}, bytes.NewReader(dsn), 0)
	}
	if err != nil {
		return err
	}
	staged, err := q.st.Stage(ctx, io.MultiReader(strings.NewReader("Return-Path: <>\r\n"), bytes.NewReader(dsn)), 0)
	if err != nil {
		return err
	}
	defer staged.Discard()
	errs, err := q.st.Deliver(ctx, staged, []store.DeliveryTarget{{Account: acct}})
	if err == nil && len(errs) == 1 {
		err = errs[0]
	}
	return err
}

// localAccount finds the account of a sender address (exactly, or without
// a "+tag").
func (q *Queue) localAccount(ctx context.Context, addr string) (store.AccountID, error) {
	a, err := q.st.Account(ctx, addr)
	if errors.Is(err, store.ErrNotFound) {
		at := strings.LastIndexByte(addr, '@')
		if i := strings.IndexByte(addr, '+'); i > 0 && at > i {
			a, err = q.st.Account(ctx, addr[:i]+addr[at:])
		}
	}
	if err != nil {
		return 0, err
	}
	return a.ID, nil
}

// headerSection returns the message's header (for the DSN), at most 64 KiB.
func headerSection(r io.Reader) []byte {
	br := bufio.NewReader(io.LimitReader(r, maxEnvelopeBytes))
	var out bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 || err != nil {
			break
		}
		out.Write(line)
	}
	return out.Bytes()
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
