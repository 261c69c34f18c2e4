// Package imapd is Skrytka's IMAP server: IMAP4rev2 (RFC 9051) and
// IMAP4rev1 (RFC 3501) with the extensions listed in capability.go, over
// the store.Store interface.
//
// It owns its wire layer: the command parser (parse.go) with hard limits on
// line length, literal sizes and nesting, the response writer (write.go)
// that streams bodies and flushes once per response batch, and the
// per-connection state machine (conn.go). Each command or command family
// lives in its own file.
//
// It must not depend on a storage backend, database/sql or any driver: the
// store is reached only through store.Store. Rendering of ENVELOPE,
// BODYSTRUCTURE and strings comes from package imapwire.
//
// Invariants:
//   - One goroutine owns a connection and its session state; commands run
//     one at a time. IDLE starts one helper goroutine to read DONE and joins
//     it before returning.
//   - Nothing is written to a client while a store call is in progress or a
//     lock is held: store results are copied out first.
//   - Sequence numbers belong to the session (tracker.go); the store only
//     sees UIDs. Changes from other sessions arrive as hints on a
//     store.Subscription and are re-read from the store (Changes).
//   - EXPUNGE (or VANISHED) is never sent during FETCH, STORE or SEARCH
//     (RFC 9051 §7.5.1).
package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
)

// Options configures a Server. Zero values mean the documented default.
type Options struct {
	// Store holds the mail. Required.
	Store store.Store
	// Auth checks passwords. Required for LOGIN and AUTHENTICATE; nil makes
	// every login fail.
	Auth *auth.Authenticator
	// TLSConfig enables STARTTLS. nil: STARTTLS is not offered. A listener
	// for implicit TLS (port 993) is wrapped by the caller with tls.NewListener;
	// the server recognises such connections as *tls.Conn.
	TLSConfig *tls.Config
	// Logger receives logs. nil: slog.Default().
	Logger *slog.Logger
	// Hostname is shown in the greeting. "": "localhost".
	Hostname string
	// Plaintext says when LOGIN and AUTHENTICATE PLAIN may be used without
	// TLS. "": auth.PlaintextLoopback. When not allowed, LOGINDISABLED is
	// advertised and no AUTH= mechanism is offered.
	Plaintext auth.PlaintextPolicy
	// AppendLimit caps one APPEND message in octets (APPENDLIMIT, RFC 7889).
	// 0: DefaultAppendLimit.
	AppendLimit int64
	// MaxLineBytes caps a command line without literals. 0: DefaultMaxLineBytes.
	MaxLineBytes int
	// MaxLiteralBytes caps one literal outside APPEND. 0: DefaultMaxLiteralBytes.
	MaxLiteralBytes int64
	// MaxCommandLiteralBytes caps the literals of one command outside
	// APPEND. 0: DefaultMaxCommandLiteralBytes.
	MaxCommandLiteralBytes int64
	// MaxNesting caps list nesting in a command. 0: DefaultMaxNesting.
	MaxNesting int
	// MaxBadCommands closes the connection after that many consecutive BAD
	// replies. 0: DefaultMaxBadCommands.
	MaxBadCommands int
	// PreAuthTimeout is the wait for a command before login.
	// 0: DefaultPreAuthTimeout.
	PreAuthTimeout time.Duration
	// IdleTimeout is the wait for a command or for DONE once logged in.
	// 0: DefaultIdleTimeout (RFC 9051 §5.4: at least 30 minutes).
	IdleTimeout time.Duration
	// CommandTimeout is the time to finish a command line once begun.
	// 0: DefaultCommandTimeout.
	CommandTimeout time.Duration
	// LiteralTimeout is the time to receive one literal.
	// 0: DefaultLiteralTimeout.
	LiteralTimeout time.Duration
	// WriteTimeout is the time one write to the client may take.
	// 0: DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Trace logs every protocol line at debug level on the connection's
	// logger, with credentials redacted and literal contents (message
	// bodies) left out. false: no trace.
	Trace bool
	// LoginDelay is slept after a failed login. 0: one second; negative: none
	// (tests).
	LoginDelay time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Plaintext == "" {
		o.Plaintext = auth.PlaintextLoopback
	}
	if o.AppendLimit <= 0 {
		o.AppendLimit = DefaultAppendLimit
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.MaxLiteralBytes <= 0 {
		o.MaxLiteralBytes = DefaultMaxLiteralBytes
	}
	if o.MaxCommandLiteralBytes <= 0 {
		o.MaxCommandLiteralBytes = DefaultMaxCommandLiteralBytes
	}
	if o.MaxNesting <= 0 {
		o.MaxNesting = DefaultMaxNesting
	}
	if o.MaxBadCommands <= 0 {
		o.MaxBadCommands = DefaultMaxBadCommands
	}
	if o.PreAuthTimeout <= 0 {
		o.PreAuthTimeout = DefaultPreAuthTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.LiteralTimeout <= 0 {
		o.LiteralTimeout = DefaultLiteralTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.LoginDelay == 0 {
		o.LoginDelay = time.Second
	}
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("imapd: server closed")

// Server is an IMAP server. Create it with New.
type Server struct {
	opts Options
	log  *slog.Logger

	baseCtx context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	connWG    sync.WaitGroup

	nextCID atomic.Uint64
	// panics counts panics recovered at the connection boundary (tests
	// fail when it is not zero).
	panics atomic.Int64
}

// New returns a server; it does not listen until Serve.
func New(opts Options) *Server {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:      opts,
		log:       opts.Logger.With("proto", "imap"),
		baseCtx:   ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
}

// Serve accepts connections on ln until Shutdown or Close, and returns
// ErrServerClosed then. Temporary accept errors are retried with backoff.
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

	var delay time.Duration
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
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTemporaryAccept(err)) {
				delay = backoff(delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.connWG.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			c.serve()
		}()
	}
}

// errTemporaryAccept returns err itself when it is one of the resource
// errors (too many open files and the like) worth retrying, else nil.
func errTemporaryAccept(err error) error {
	type temporary interface{ Temporary() bool }
	var t temporary
	if errors.As(err, &t) && t.Temporary() {
		return err
	}
	return nil
}

func backoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	d *= 2
	if d > time.Second {
		d = time.Second
	}
	return d
}

// Shutdown stops accepting, sends "* BYE" to idle clients and to each
// client when its current command finishes, and waits for all connections
// to end or ctx to be done (then it closes the rest).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.requestShutdown()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes listeners and connections at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	return nil
}
