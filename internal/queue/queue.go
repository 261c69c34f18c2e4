// Package queue is the durable outbound mail queue: messages from our users
// to other domains wait here until internal/outbound has delivered them,
// with retries and backoff for temporary failures, and delivery status
// notifications (RFC 3464) to the sender: "delayed" once after
// DelayWarning (default 4 hours), "failed" for permanent failures and for
// messages still undeliverable after MaxAge (default 5 days).
//
// Storage: the queue lives in the store through the ordinary store.Store
// interface, so it is durable (fsync before Enqueue returns) and survives
// restarts on every backend without a change to the store contract. Its
// entries are messages in the INBOX of a system account, SystemAddress,
// which has no usable password (no one can log in to it). Each entry is
// the message to send preceded by an envelope block of header fields:
//
//	X-Skrytka-Queue-From: <sender>
//	X-Skrytka-Queue-To: <recipient>        (one per recipient still pending)
//	X-Skrytka-Queue-Arrival: <unix seconds>
//	X-Skrytka-Queue-Attempts: <n>
//	X-Skrytka-Queue-Next: <unix seconds>   (not before this time)
//	X-Skrytka-Queue-Warned: 1              (a "delayed" DSN went out)
//	X-Skrytka-Queue-ID: <n>                (the entry's ID, once replaced)
//
// An entry is never changed in place: after an attempt that leaves
// recipients pending, the updated entry is appended and the old one then
// expunged. A crash between the two leaves both, and the recipients then
// get the message twice: the queue delivers at least once, never less.
//
// IDs. An entry's ID is the UID of its first message in the queue
// mailbox; a replacement carries it in X-Skrytka-Queue-ID, so the ID that
// "queue list" shows stays valid for "queue drop" and "queue retry" across
// attempts (UIDs are never reused, so IDs are unique). Replacing and
// dropping hold entryMu, and a replacement is written only while the
// entry it replaces still exists, so a drop during a delivery attempt is
// not undone by that attempt's replacement. entryMu is per process: on
// PostgreSQL with several nodes, a drop on one node while another is
// attempting the entry can still lose to that attempt's replacement
// (the entry then stays, and a second drop removes it).
// A native queue table in each backend can replace this layout later
// behind the same Queue API.
//
// It depends on store (the interface only), outbound and mailparse-free
// header handling; it knows nothing of SMTP sessions.
package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skrytka/skrytka/internal/outbound"
	"github.com/skrytka/skrytka/internal/store"
)

// SystemAddress is the account that holds the queue. The .invalid TLD
// (RFC 2606) can never be a real mail domain.
const SystemAddress = "outbound-queue@skrytka.invalid"

// Defaults used when an Options field is zero.
const (
	DefaultMaxAge   = 5 * 24 * time.Hour
	DefaultInterval = time.Minute
	// DefaultDelayWarning is when the sender hears that delivery is slow.
	DefaultDelayWarning = 4 * time.Hour
	// DefaultConcurrency bounds parallel delivery attempts.
	DefaultConcurrency = 8
	// maxEnvelopeBytes bounds the envelope block read from an entry.
	maxEnvelopeBytes = 64 << 10
)

const (
	hdrFrom     = "X-Skrytka-Queue-From"
	hdrTo       = "X-Skrytka-Queue-To"
	hdrArrival  = "X-Skrytka-Queue-Arrival"
	hdrAttempts = "X-Skrytka-Queue-Attempts"
	hdrNext     = "X-Skrytka-Queue-Next"
	hdrWarned   = "X-Skrytka-Queue-Warned"
	hdrID       = "X-Skrytka-Queue-ID"
)

// Options configure a Queue.
type Options struct {
	// Hostname names us in DSNs. Default "localhost".
	Hostname string
	// MaxAge is how long a message is retried before it bounces.
	// Default DefaultMaxAge (RFC 5321 §4.5.4.1: at least 4-5 days).
	MaxAge time.Duration
	// DelayWarning: a message still undelivered this long after arrival
	// gets one "delayed" DSN to its sender (RFC 3464 action "delayed").
	// Default DefaultDelayWarning; negative: never.
	DelayWarning time.Duration
	// Interval is how often Run looks for due entries. Default DefaultInterval.
	Interval time.Duration
	// Concurrency is how many entries are attempted at once.
	// Default DefaultConcurrency.
	Concurrency int
	// Logger: nil means slog.Default().
	Logger *slog.Logger
	// Now replaces the clock in tests. nil: time.Now.
	Now func() time.Time
}

// Queue is the outbound queue. Methods are safe for concurrent use;
// processing runs one pass at a time.
type Queue struct {
	st     store.Store
	sender *outbound.Sender
	opts   Options
	log    *slog.Logger
	acct   store.AccountID
	wake   chan struct{}
	passMu sync.Mutex
	// entryMu serialises replacing entries with dropping them (see IDs
	// in the package notes).
	entryMu sync.Mutex
}

// Open returns the queue kept in st, creating its system account on first
// use.
func Open(ctx context.Context, st store.Store, sender *outbound.Sender, opts Options) (*Queue, error) {
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.DelayWarning == 0 {
		opts.DelayWarning = DefaultDelayWarning
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	acct, err := st.Account(ctx, SystemAddress)
	if errors.Is(err, store.ErrNotFound) {
		// "!" is no password hash: nobody can log in to this account.
		acct, err = st.CreateAccount(ctx, SystemAddress, "!")
		if errors.Is(err, store.ErrExists) {
			acct, err = st.Account(ctx, SystemAddress)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("queue account: %w", err)
	}
	return &Queue{st: st, sender: sender, opts: opts, log: opts.Logger.With("proto", "queue"),
		acct: acct.ID, wake: make(chan struct{}, 1)}, nil
}

// Entry is one queued message as List reports it.
type Entry struct {
	ID       store.UID // stable over the entry's life (see IDs in the package notes)
	From     string
	To       []string // recipients still pending
	Arrival  time.Time
	Attempts int
	Next     time.Time
	Size     int64 // of the message, without the envelope block
}

// Enqueue stores a message for rcpts (all remote). It returns once the
// entry is durable; the caller may then acknowledge the message.
func (q *Queue) Enqueue(ctx context.Context, from string, rcpts []string, msg io.Reader, maxBytes int64) error {
	if len(rcpts) == 0 {
		return errors.New("queue: no recipients")
	}
	now := q.opts.Now()
	env := envelope{From: from, To: rcpts, Arrival: now, Next: now}
	if err := q.add(ctx, env, msg, maxBytes); err != nil {
		return err
	}
	q.Wake()
	return nil
}

func (q *Queue) add(ctx context.Context, env envelope, msg io.Reader, maxBytes int64) error {
	block := env.marshal()
	if maxBytes > 0 {
		maxBytes += int64(len(block))
	}
	staged, err := q.st.Stage(ctx, io.MultiReader(strings.NewReader(block), msg), maxBytes)
	if err != nil {
		return fmt.Errorf("queue: stage: %w", err)
	}
	defer staged.Discard()
	inbox, err := q.st.Mailbox(ctx, q.acct, store.InboxName)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	_, err = q.st.Append(ctx, q.acct, inbox.ID, []store.AppendMessage{{Body: staged, InternalDate: env.Arrival}})
	if err != nil {
		return fmt.Errorf("queue: append: %w", err)
	}
	return nil
}

// Wake makes Run look at the queue now.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run processes due entries until ctx ends: every Interval, and at once
// after Enqueue, Retry or Wake.
func (q *Queue) Run(ctx context.Context) {
	t := time.NewTicker(q.opts.Interval)
	defer t.Stop()
	for {
		if err := q.RunOnce(ctx); err != nil && ctx.Err() == nil {
			q.log.Error("queue pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-q.wake:
		}
	}
}

// List returns every entry, oldest first. It holds entryMu so that no
// entry shows twice, old and replacement, in one list (unless a crash
// left both, see above).
func (q *Queue) List(ctx context.Context) ([]Entry, error) {
	q.entryMu.Lock()
	defer q.entryMu.Unlock()
	var out []Entry
	err := q.each(ctx, func(uid store.UID, env envelope, _ int64, size int64) error {
		out = append(out, Entry{ID: env.id(uid), From: env.From, To: env.To, Arrival: env.Arrival,
			Attempts: env.Attempts, Next: env.Next, Size: size})
		return nil
	})
	return out, err
}

// Drop removes an entry without delivering it (and without a DSN).
func (q *Queue) Drop(ctx context.Context, id store.UID) error {
	q.entryMu.Lock()
	defer q.entryMu.Unlock()
	inbox, err := q.st.Mailbox(ctx, q.acct, store.InboxName)
	if err != nil {
		return err
	}
	// Normally one message; two after a crash between a replacement's
	// append and its expunge.
	var uids []store.UID
	err = q.each(ctx, func(uid store.UID, env envelope, _, _ int64) error {
		if env.id(uid) == id {
			uids = append(uids, uid)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return store.ErrNotFound
	}
	gone, err := q.st.Expunge(ctx, q.acct, inbox.ID, store.UIDSetOf(uids...))
	if err == nil && len(gone) == 0 {
		return store.ErrNotFound // delivered meanwhile
	}
	return err
}

// Retry makes an entry due now.
func (q *Queue) Retry(ctx context.Context, id store.UID) error {
	found := false
	err := q.each(ctx, func(uid store.UID, env envelope, off, size int64) error {
		if env.id(uid) != id {
			return nil
		}
		found = true
		env.Next = q.opts.Now()
		return q.replace(ctx, uid, env, off, size)
	})
	if err == nil && !found {
		return store.ErrNotFound
	}
	q.Wake()
	return err
}

// each calls fn for every entry with its envelope and the offset and size
// of the message after the envelope block.
func (q *Queue) each(ctx context.Context, fn func(uid store.UID, env envelope, off, size int64) error) error {
	inbox, err := q.st.Mailbox(ctx, q.acct, store.InboxName)
	if err != nil {
		return err
	}
	_, uids, err := q.st.SelectState(ctx, q.acct, inbox.ID)
	if err != nil {
		return err
	}
	for _, uid := range uids {
		r, err := q.st.OpenMessage(ctx, q.acct, inbox.ID, uid)
		if errors.Is(err, store.ErrNotFound) {
			continue // expunged meanwhile
		}
		if err != nil {
			return err
		}
		env, off, perr := parseEnvelope(io.NewSectionReader(r, 0, min(r.Size(), maxEnvelopeBytes)))
		size := r.Size()
		r.Close()
		if perr != nil {
			q.log.Error("unreadable queue entry left in place", "uid", uid, "err", perr)
			continue
		}
		if err := fn(uid, env, off, size-off); err != nil {
			return err
		}
	}
	return nil
}

// replace appends env with the entry's message and then expunges the old
// entry (see the package notes on crashes in between). An entry dropped
// meanwhile stays dropped.
func (q *Queue) replace(ctx context.Context, uid store.UID, env envelope, off, size int64) error {
	q.entryMu.Lock()
	defer q.entryMu.Unlock()
	inbox, err := q.st.Mailbox(ctx, q.acct, store.InboxName)
	if err != nil {
		return err
	}
	r, err := q.st.OpenMessage(ctx, q.acct, inbox.ID, uid)
	if errors.Is(err, store.ErrNotFound) {
		return nil // dropped (or replaced by another node) meanwhile
	}
	if err != nil {
		return err
	}
	env.ID = env.id(uid)
	err = q.add(ctx, env, io.NewSectionReader(r, off, size), 0)
	r.Close()
	if err != nil {
		return err
	}
	_, err = q.st.Expunge(ctx, q.acct, inbox.ID, store.UIDSetOf(uid))
	return err
}

// envelope is an entry's delivery state.
type envelope struct {
	From     string
	To       []string
	Arrival  time.Time
	Attempts int
	Next     time.Time
	Warned   bool      // a "delayed" DSN has been sent
	ID       store.UID // 0: the entry's own UID is its ID
}

// id is the ID of the entry stored under uid with envelope e.
func (e envelope) id(uid store.UID) store.UID {
	if e.ID != 0 {
		return e.ID
	}
	return uid
}

func (e envelope) marshal() string {
	var b strings.Builder
	b.WriteString(hdrFrom + ": <" + clean(e.From) + ">\r\n")
	for _, t := range e.To {
		b.WriteString(hdrTo + ": <" + clean(t) + ">\r\n")
	}
	b.WriteString(hdrArrival + ": " + strconv.FormatInt(e.Arrival.Unix(), 10) + "\r\n")
	b.WriteString(hdrAttempts + ": " + strconv.Itoa(e.Attempts) + "\r\n")
	b.WriteString(hdrNext + ": " + strconv.FormatInt(e.Next.Unix(), 10) + "\r\n")
	if e.Warned {
		b.WriteString(hdrWarned + ": 1\r\n")
	}
	if e.ID != 0 {
		b.WriteString(hdrID + ": " + strconv.FormatUint(uint64(e.ID), 10) + "\r\n")
	}
	return b.String()
}

// parseEnvelope reads the envelope block at the start of an entry and
// returns it with the block's length.
func parseEnvelope(r io.Reader) (envelope, int64, error) {
	var env envelope
	br := bufio.NewReader(r)
	var off int64
	seen := map[string]bool{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return env, 0, fmt.Errorf("envelope block not terminated")
		}
		name, value, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ": ")
		if !ok || !strings.HasPrefix(name, "X-Skrytka-Queue-") {
			break
		}
		off += int64(len(line))
		seen[name] = true
		switch name {
		case hdrFrom:
			env.From = strings.TrimSuffix(strings.TrimPrefix(value, "<"), ">")
		case hdrTo:
			env.To = append(env.To, strings.TrimSuffix(strings.TrimPrefix(value, "<"), ">"))
		case hdrArrival, hdrNext:
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return env, 0, fmt.Errorf("bad %s", name)
			}
			if name == hdrArrival {
				env.Arrival = time.Unix(n, 0)
			} else {
				env.Next = time.Unix(n, 0)
			}
		case hdrWarned:
			env.Warned = value == "1"
		case hdrID:
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil || n == 0 {
				return env, 0, fmt.Errorf("bad %s", name)
			}
			env.ID = store.UID(n)
		case hdrAttempts:
			n, err := strconv.Atoi(value)
			if err != nil {
				return env, 0, fmt.Errorf("bad %s", name)
			}
			env.Attempts = n
		}
	}
	if !seen[hdrFrom] || len(env.To) == 0 || !seen[hdrArrival] || !seen[hdrNext] {
		return env, 0, fmt.Errorf("incomplete envelope block")
	}
	return env, off, nil
}

// clean keeps a value on one line. Addresses reach the queue checked by
// smtpd (no control characters), so this only guards the block's syntax;
// angle brackets inside a quoted local part survive, since parsing strips
// just the outer pair.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
