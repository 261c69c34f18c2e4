package pop3d

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// message is one entry of the maildrop snapshot. Its POP3 number is its
// index in session.msgs plus one.
type message struct {
	uid       store.UID
	id        store.MessageID
	size      int64
	deleted   bool // DELE in this session
	retrieved bool // sent in full by RETR (for MarkSeenOnRetr)
}

// session is the store-facing side of a logged-in connection: the locked
// maildrop, its snapshot and the UPDATE step.
type session struct {
	st       store.Store
	acct     store.Account
	inbox    store.MailboxID
	lease    store.Lease
	policy   Policy
	markSeen bool
	log      *slog.Logger

	msgs []message

	lost        atomic.Bool // the lease was lost (another node took it)
	stopRefresh chan struct{}
	refreshWG   sync.WaitGroup
	ended       bool
}

// uidl renders the unique-id listing of a message (RFC 1939 §7): the
// store's MessageID, which is never reused, as 16 hex digits. It does not
// depend on flags, mailbox UIDVALIDITY or the session.
func uidl(id store.MessageID) string {
	return fmt.Sprintf("%016x", uint64(id))
}

// accountPolicy is the policy for acct: its own override if valid, else the
// server's.
func accountPolicy(acct store.Account, def Policy, log *slog.Logger) Policy {
	if acct.DownloadPolicy == "" {
		return def
	}
	p, err := ParsePolicy(strings.ToLower(acct.DownloadPolicy))
	if err != nil {
		log.Warn("invalid account download policy, using the server's", "err", err)
		return def
	}
	return p
}

// openSession locks the account's maildrop and takes the snapshot
// (RFC 1939 §4: the maildrop is locked at the transition to TRANSACTION).
// It returns store.ErrLocked if another session holds the lock.
func openSession(ctx context.Context, st store.Store, acct store.Account, holder string, policy Policy, markSeen bool, refresh time.Duration, log *slog.Logger) (*session, error) {
	lease, err := st.LockMaildrop(ctx, acct.ID, holder)
	if err != nil {
		return nil, err
	}
	s := &session{st: st, acct: acct, lease: lease, policy: policy, markSeen: markSeen, log: log}
	if err := s.snapshot(ctx); err != nil {
		lease.Release()
		return nil, err
	}
	s.stopRefresh = make(chan struct{})
	s.refreshWG.Add(1)
	go s.refresh(refresh)
	return s, nil
}

// snapshot reads INBOX's messages once. Messages that arrive later are not
// seen by this session; under PolicyKeep, messages an earlier session
// downloaded are hidden.
func (s *session) snapshot(ctx context.Context) error {
	mb, err := s.st.Mailbox(ctx, s.acct.ID, store.InboxName)
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	s.inbox = mb.ID
	_, uids, err := s.st.SelectState(ctx, s.acct.ID, mb.ID)
	if err != nil {
		return fmt.Errorf("select inbox: %w", err)
	}
	if len(uids) == 0 {
		return nil
	}
	s.msgs = make([]message, 0, len(uids))
	hide := s.policy == PolicyKeep
	// UIDs above the last one of the snapshot arrived after it.
	set := store.UIDSet{{Start: uids[0], Stop: uids[len(uids)-1]}}
	err = s.st.Messages(ctx, s.acct.ID, mb.ID, set, store.FetchOptions{}, func(m *store.Message) error {
		if hide && m.Flags.Sys&store.FlagDownloaded != 0 {
			return nil
		}
		s.msgs = append(s.msgs, message{uid: m.UID, id: m.ID, size: m.Size})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list inbox: %w", err)
	}
	return nil
}

// refresh keeps the lease alive until end.
func (s *session) refresh(every time.Duration) {
	defer s.refreshWG.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopRefresh:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			err := s.lease.Refresh(ctx)
			cancel()
			if errors.Is(err, store.ErrLocked) {
				s.log.Warn("maildrop lease lost")
				s.lost.Store(true)
				return
			}
			if err != nil {
				s.log.Warn("refreshing maildrop lease", "err", err)
			}
		}
	}
}

// counts returns the number and total size of the messages not deleted.
func (s *session) counts() (n int, size int64) {
	for i := range s.msgs {
		if !s.msgs[i].deleted {
			n++
			size += s.msgs[i].size
		}
	}
	return n, size
}

// update is RFC 1939 §6 UPDATE: it applies the session's deletions under
// the policy, as one store operation, and sets \Seen on retrieved messages
// if asked. It returns how many messages were deleted.
func (s *session) update(ctx context.Context) (int, error) {
	if s.lost.Load() {
		return 0, store.ErrLocked
	}
	if err := s.applySeen(ctx, true); err != nil {
		return 0, err
	}
	var del []store.UID
	for _, m := range s.msgs {
		if m.deleted {
			del = append(del, m.uid)
		}
	}
	if len(del) == 0 {
		return 0, nil
	}
	set := store.UIDSetOf(del...)
	switch s.policy {
	case PolicyTrash, PolicyArchive:
		use := store.SpecialTrash
		if s.policy == PolicyArchive {
			use = store.SpecialArchive
		}
		dst, err := s.specialMailbox(ctx, use)
		if err != nil {
			return 0, err
		}
		if _, err := s.st.Move(ctx, s.acct.ID, s.inbox, dst, set); err != nil {
			return 0, fmt.Errorf("move to %s: %w", use, err)
		}
	case PolicyKeep:
		add := store.Flags{Sys: store.FlagDownloaded}
		if _, err := s.st.SetFlags(ctx, s.acct.ID, s.inbox, set, store.FlagsAdd, add, 0); err != nil {
			return 0, fmt.Errorf("mark downloaded: %w", err)
		}
	default:
		if _, err := s.st.Expunge(ctx, s.acct.ID, s.inbox, set); err != nil {
			return 0, fmt.Errorf("expunge: %w", err)
		}
	}
	return len(del), nil
}

// applySeen sets \Seen on the messages RETR sent in full (MarkSeenOnRetr)
// and forgets them. At UPDATE (quitting), messages about to be expunged
// are skipped.
func (s *session) applySeen(ctx context.Context, quitting bool) error {
	if !s.markSeen {
		return nil
	}
	var uids []store.UID
	for i := range s.msgs {
		m := &s.msgs[i]
		if m.retrieved && !(quitting && m.deleted && s.policy == PolicyExpunge) {
			uids = append(uids, m.uid)
		}
		m.retrieved = false
	}
	if len(uids) == 0 {
		return nil
	}
	seen := store.Flags{Sys: store.FlagSeen}
	if _, err := s.st.SetFlags(ctx, s.acct.ID, s.inbox, store.UIDSetOf(uids...), store.FlagsAdd, seen, 0); err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	return nil
}

// specialMailbox finds the account's mailbox with the special use; if
// there is none (the user deleted it), it uses or creates the default one.
func (s *session) specialMailbox(ctx context.Context, use store.SpecialUse) (store.MailboxID, error) {
	boxes, err := s.st.Mailboxes(ctx, s.acct.ID)
	if err != nil {
		return 0, fmt.Errorf("list mailboxes: %w", err)
	}
	for _, mb := range boxes {
		if mb.SpecialUse == use && !mb.NoSelect {
			return mb.ID, nil
		}
	}
	name := "Trash"
	if use == store.SpecialArchive {
		name = "Archive"
	}
	for _, d := range store.DefaultMailboxes {
		if d.Use == use {
			name = d.Name
		}
	}
	mb, err := s.st.CreateMailbox(ctx, s.acct.ID, name, use)
	if errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrSpecialUse) {
		mb, err = s.st.Mailbox(ctx, s.acct.ID, name)
	}
	if err != nil {
		return 0, fmt.Errorf("mailbox for %s: %w", use, err)
	}
	return mb.ID, nil
}

// end finishes the session: without QUIT it applies only \Seen marks,
// then it releases the lock. It is safe to call twice.
func (s *session) end(ctx context.Context) error {
	if s.ended {
		return nil
	}
	s.ended = true
	close(s.stopRefresh)
	s.refreshWG.Wait()
	var errs []error
	if !s.lost.Load() {
		errs = append(errs, s.applySeen(ctx, false))
	}
	errs = append(errs, s.lease.Release())
	return errors.Join(errs...)
}
