package pop3d

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
)

// Policy says what the server does with a message the client deleted (DELE)
// when the session ends with QUIT. Each policy is one atomic store operation
// over all messages deleted in the session.
type Policy string

const (
	// PolicyExpunge removes the messages (RFC 1939 behaviour). IMAP sessions
	// selected on INBOX see an EXPUNGE for each.
	PolicyExpunge Policy = "expunge"
	// PolicyTrash moves the messages to the account's \Trash mailbox. IMAP
	// sees an EXPUNGE in INBOX and new messages in Trash.
	PolicyTrash Policy = "trash"
	// PolicyArchive moves the messages to the account's \Archive mailbox.
	// IMAP sees an EXPUNGE in INBOX and new messages in Archive.
	PolicyArchive Policy = "archive"
	// PolicyKeep leaves the messages in INBOX and marks them downloaded
	// (store.FlagDownloaded), which hides them from later POP3 sessions.
	// IMAP sees no change: the flag is not an IMAP flag.
	PolicyKeep Policy = "keep"
)

// ParsePolicy validates a policy name; "" gives PolicyExpunge.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case PolicyExpunge, PolicyTrash, PolicyArchive, PolicyKeep:
		return p, nil
	case "":
		return PolicyExpunge, nil
	}
	return "", fmt.Errorf("must be \"expunge\", \"trash\", \"archive\" or \"keep\", not %q", s)
}

// Options configure a Server. Only Store is required.
type Options struct {
	// Store holds the maildrops. Required.
	Store store.Store
	// Auth checks passwords and throttles failures. nil: an Authenticator
	// over Store with its default throttling (a server process should share
	// one Authenticator between its protocols, so that throttling counts
	// failures on every port).
	Auth *auth.Authenticator
	// TLSConfig enables STLS (RFC 2595) on plain connections. nil: STLS is
	// not offered. Connections that are already *tls.Conn (the POP3S port)
	// never offer it.
	TLSConfig *tls.Config
	// Logger receives connection and error logs. nil: logs are discarded.
	Logger *slog.Logger
	// Hostname is named in the greeting. "": DefaultHostname.
	Hostname string
	// Plaintext says when USER/PASS and AUTH PLAIN are allowed without TLS.
	// "": auth.PlaintextLoopback.
	Plaintext auth.PlaintextPolicy
	// AfterDownload is what QUIT does with deleted messages, unless the
	// account overrides it (store.Account.DownloadPolicy). "" or an unknown
	// value: PolicyExpunge (an unknown value is logged).
	AfterDownload Policy
	// MarkSeenOnRetr sets \Seen on every message sent in full by RETR, so
	// that IMAP devices show it as read. The flags are set in one store
	// operation when the session ends, with QUIT or without (the transfer
	// happened either way). false: RETR changes no flag.
	MarkSeenOnRetr bool
	// Expire is the EXPIRE capability value (RFC 2449 §6.7): "NEVER" or a
	// number of days. "" or anything else: DefaultExpire ("NEVER"), which is
	// true of Skrytka: it never deletes mail on its own.
	Expire string
	// LoginDelay is the minimum time between two logins of one account
	// (RFC 2449 §6.5 LOGIN-DELAY), enforced per server process and
	// advertised in whole seconds. 0: no delay, not advertised.
	LoginDelay time.Duration
	// AuthTimeout is how long a client may wait before each command until
	// it has logged in. 0: DefaultAuthTimeout.
	AuthTimeout time.Duration
	// IdleTimeout is the inactivity autologout timer after login.
	// 0: DefaultIdleTimeout (10 minutes, the RFC 1939 §3 minimum).
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to the client. 0: DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxLineBytes is the longest command line accepted, CRLF included.
	// 0: DefaultMaxLineBytes.
	MaxLineBytes int
	// MaxBadCommands is how many bad commands (unknown, malformed, wrong
	// state, failed login) close the connection. 0: DefaultMaxBadCommands.
	MaxBadCommands int
}

// Server is a POP3 server. Create it with New.
type Server struct {
	opts   Options
	log    *slog.Logger
	expire string

	baseCtx    context.Context
	cancelBase context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool          // Shutdown or Close was called
	connsDone chan struct{} // closed when conns empties while closing

	nextID atomic.Uint64
	// panics counts panics recovered at the connection boundary; tests fail
	// if it is not zero.
	panics atomic.Int64

	// leaseRefresh is how often sessions refresh their maildrop lease
	// (leaseRefreshInterval; tests shorten it).
	leaseRefresh time.Duration

	loginMu   sync.Mutex
	lastLogin map[store.AccountID]time.Time // for LoginDelay
}

// validExpire reports whether s is an RFC 2449 §6.7 EXPIRE value: NEVER
// or a number of days.
func validExpire(s string) bool {
	if s == "NEVER" {
		return true
	}
	_, ok := parseMsgNumber(s)
	return ok
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("pop3d: server closed")

// New returns a server with opts, with zero fields replaced by defaults.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Auth == nil {
		opts.Auth = &auth.Authenticator{Store: opts.Store}
	}
	if opts.Hostname == "" {
		opts.Hostname = DefaultHostname
	}
	if opts.Plaintext == "" {
		opts.Plaintext = auth.PlaintextLoopback
	}
	if p, err := ParsePolicy(string(opts.AfterDownload)); err != nil {
		opts.Logger.Error("pop3: invalid after-download policy, using expunge", "err", err)
		opts.AfterDownload = PolicyExpunge
	} else {
		opts.AfterDownload = p
	}
	if !validExpire(opts.Expire) {
		if opts.Expire != "" {
			opts.Logger.Error("pop3: invalid EXPIRE value, using NEVER", "expire", opts.Expire)
		}
		opts.Expire = DefaultExpire
	}
	if opts.AuthTimeout <= 0 {
		opts.AuthTimeout = DefaultAuthTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if opts.MaxBadCommands <= 0 {
		opts.MaxBadCommands = DefaultMaxBadCommands
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:       opts,
		log:        opts.Logger.With("proto", "pop3"),
		expire:     opts.Expire,
		baseCtx:    ctx,
		cancelBase: cancel,
		listeners:  make(map[net.Listener]struct{}),
		conns:      make(map[*conn]struct{}),
		lastLogin:  make(map[store.AccountID]time.Time),

		leaseRefresh: leaseRefreshInterval,
	}
}

// Serve accepts connections on ln and serves each in its own goroutine. It
// returns ErrServerClosed after Shutdown or Close, or the listener's error.
// For POP3S, pass a listener from tls.NewListener.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "dur", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

// isTemporary reports accept errors worth retrying (too many open files,
// connection aborted before accept).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) newConn(nc net.Conn) *conn {
	id := strconv.FormatUint(s.nextID.Add(1), 10)
	return newConn(s, nc, id)
}

// removeConn forgets a finished connection.
func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.closing && len(s.conns) == 0 && s.connsDone != nil {
		close(s.connsDone)
		s.connsDone = nil
	}
	s.mu.Unlock()
}

// beginClose stops the listeners and returns the connections open now and
// a channel closed once none is left.
func (s *Server) beginClose() ([]*conn, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	done := make(chan struct{})
	if len(s.conns) == 0 {
		close(done)
	} else {
		if s.connsDone != nil {
			// A second Shutdown: share the first one's channel.
			return cs, s.connsDone
		}
		s.connsDone = done
	}
	return cs, done
}

// Shutdown stops accepting, tells clients waiting for a command that the
// server is going away (-ERR [SYS/TEMP], without UPDATE: nothing is
// deleted), lets commands in flight finish, and waits until every
// connection has ended or ctx is done; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	cs, done := s.beginClose()
	for _, c := range cs {
		c.interrupt()
	}
	select {
	case <-done:
		s.cancelBase()
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once. Sessions end
// without UPDATE; their locks are released.
func (s *Server) Close() error {
	cs, _ := s.beginClose()
	s.cancelBase()
	for _, c := range cs {
		c.netConn().Close()
	}
	return nil
}

// loginAllowed reports whether acct may log in now under LoginDelay.
func (s *Server) loginAllowed(acct store.AccountID, now time.Time) bool {
	d := s.opts.LoginDelay
	if d <= 0 {
		return true
	}
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	last, ok := s.lastLogin[acct]
	return !ok || now.Sub(last) >= d
}

// recordLogin notes a successful login for LoginDelay. The map forgets
// logins older than the delay once it grows.
func (s *Server) recordLogin(acct store.AccountID, now time.Time) {
	d := s.opts.LoginDelay
	if d <= 0 {
		return
	}
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	if len(s.lastLogin) >= 4096 {
		for id, t := range s.lastLogin {
			if now.Sub(t) >= d {
				delete(s.lastLogin, id)
			}
		}
	}
	s.lastLogin[acct] = now
}
