package store

import "sync"

// DefaultFeedQueue is the number of changes a Hub queues per subscriber
// before it drops them and delivers a ChangeOverflow instead.
const DefaultFeedQueue = 128

// Hub is an in-process change feed: it fans committed changes out to the
// subscribers of each account. Both backends use it; the embedded backend
// publishes from its writer after each commit, the PostgreSQL backend from
// its LISTEN/NOTIFY listener.
//
// Invariants:
//   - Publish never blocks on a slow subscriber: each subscriber has a
//     bounded queue; when it is full the queued changes are dropped and one
//     ChangeOverflow takes their place, telling the session to resync from
//     the store by ModSeq.
//   - A subscriber sees the changes of its account in the order Publish was
//     called (callers publish in commit order).
//   - Changes are shared between subscribers: receivers must not modify a
//     Change's UIDs slice.
type Hub struct {
	mu     sync.Mutex
	queue  int
	subs   map[AccountID]map[*hubSub]struct{}
	closed bool
}

// NewHub returns a hub whose subscribers queue up to queue changes
// (0: DefaultFeedQueue).
func NewHub(queue int) *Hub {
	if queue <= 0 {
		queue = DefaultFeedQueue
	}
	return &Hub{queue: queue, subs: make(map[AccountID]map[*hubSub]struct{})}
}

type hubSub struct {
	hub    *Hub
	acct   AccountID
	ch     chan Change
	closed bool // guarded by hub.mu; ch is closed exactly once
}

func (s *hubSub) C() <-chan Change { return s.ch }

// Close unsubscribes and closes C. It is safe to call more than once.
//
// Everything here is guarded by the hub's mutex alone. (A sync.Once per
// subscriber, taken inside and outside that mutex, deadlocked a session
// closing its subscription while the store closed the hub.)
func (s *hubSub) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if m := h.subs[s.acct]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.acct)
		}
	}
	close(s.ch)
}

// Subscribe registers a subscriber for acct's changes from now on. After
// the hub is closed it returns ErrClosed.
func (h *Hub) Subscribe(acct AccountID) (Subscription, error) {
	s := &hubSub{hub: h, acct: acct, ch: make(chan Change, h.queue)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	m := h.subs[acct]
	if m == nil {
		m = make(map[*hubSub]struct{})
		h.subs[acct] = m
	}
	m[s] = struct{}{}
	return s, nil
}

// Publish delivers changes, in order, to the subscribers of each change's
// account. Call it only after the changes have committed.
func (h *Hub) Publish(changes ...Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range changes {
		for s := range h.subs[c.Account] {
			s.send(c)
		}
	}
}

// send queues c or, when the queue is full, replaces the queue's content
// with a single ChangeOverflow. Called with h.mu held, so no other sender
// races with the drain.
func (s *hubSub) send(c Change) {
	select {
	case s.ch <- c:
		return
	default:
	}
	for drained := false; !drained; {
		select {
		case <-s.ch:
		default:
			drained = true
		}
	}
	// The queue now has room: the receiver only takes from it.
	s.ch <- Change{Kind: ChangeOverflow, Account: s.acct}
}

// Subscribers returns how many subscribers acct has (for tests and metrics).
func (h *Hub) Subscribers(acct AccountID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[acct])
}

// Close closes every subscription; later Subscribe calls fail with
// ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for acct, m := range h.subs {
		for s := range m {
			if !s.closed {
				s.closed = true
				close(s.ch)
			}
		}
		delete(h.subs, acct)
	}
}
