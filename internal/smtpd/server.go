// Package smtpd receives mail into the store: SMTP as the MX of our
// domains (RFC 5321), LMTP behind another MTA (RFC 2033), and — on the
// submission ports — mail from our own authenticated users (RFC 6409).
// The wire protocol is emersion/go-smtp; this package supplies its Backend
// and Session, recipient resolution (sub-addressing, aliases, catch-all),
// the trace headers, the SPF/DKIM/DMARC annotation (package mailauth) and
// the delivery into store.Store.
//
// It must not depend on a store backend, on database/sql or on cmd: it
// sees only the store.Store interface, auth, listen and mailauth.
//
// Implementation notes and invariants:
//   - Never an open relay: on the MX and LMTP listeners every recipient
//     must be in Options.Domains and resolve to an existing account, or
//     RCPT is refused (554 5.7.1 relay denied, 550 5.1.1 unknown user).
//   - A success reply (250) is sent only after store.Deliver returned nil
//     for that recipient, i.e. after the body and its mailbox entries are
//     durable. Any store fault becomes 451 4.3.0 (the sender retries);
//     when one SMTP transaction fails for some recipients but not others,
//     the whole transaction gets 451: a duplicate on retry is better than
//     a silent loss, and on retry the failing recipient is refused at RCPT
//     time with its own code (LMTP reports each recipient separately).
//   - Each message is staged once (streamed, never held whole in memory)
//     and delivered to every local recipient in one Deliver call: one
//     body, many mailbox entries.
//   - Limits are enforced while reading: message size (SIZE, DATA and
//     BDAT), line length, recipients, errors per session, per-read and
//     whole-session timeouts, connection caps (package listen).
//   - One goroutine (go-smtp's) owns each connection. go-smtp runs Data in
//     a second goroutine for BDAT and LMTP and joins it before the reply;
//     the session state it reads is not touched concurrently.
//   - Panics are recovered by go-smtp at the command boundary; they are
//     counted (Server.Panics) so that tests fail on any.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/mailauth"
	"github.com/skrytka/skrytka/internal/queue"
	"github.com/skrytka/skrytka/internal/store"
)

// Mode selects what a Server is for.
type Mode int

const (
	// ModeMX is inbound SMTP from the internet for our domains (port 25):
	// local recipients only, SPF/DKIM/DMARC recorded.
	ModeMX Mode = iota
	// ModeLMTP is LMTP from a trusted MTA in front of us: local
	// recipients only, one reply per recipient, no SPF/DKIM/DMARC (the
	// MTA that received the mail from the internet has done them, and
	// its Authentication-Results fields are kept as it wrote them, even
	// when it uses our hostname as authserv-id).
	ModeLMTP
	// ModeSubmission is authenticated submission from our own users
	// (ports 587 and 465).
	ModeSubmission
)

func (m Mode) proto() string {
	switch m {
	case ModeLMTP:
		return "lmtp"
	case ModeSubmission:
		return "submission"
	}
	return "smtp"
}

// DMARCPolicy says what the MX does with mail that fails DMARC.
type DMARCPolicy string

const (
	// DMARCAnnotate (the default) only records the result in
	// Authentication-Results; nothing is rejected.
	DMARCAnnotate DMARCPolicy = "annotate"
	// DMARCEnforce applies the sender domain's published policy: p=reject
	// is refused with 550 5.7.1 after DATA, p=quarantine is delivered to
	// the recipient's Junk mailbox.
	DMARCEnforce DMARCPolicy = "enforce"
)

// Options configure a Server. Zero values mean the documented default.
type Options struct {
	// Mode: ModeMX (default), ModeLMTP or ModeSubmission.
	Mode Mode
	// Store receives the mail. Required.
	Store store.Store
	// Auth checks SMTP AUTH credentials (submission only; required there).
	Auth *auth.Authenticator
	// PlaintextAuth says when AUTH is allowed without TLS (submission).
	// Default auth.PlaintextLoopback.
	PlaintextAuth auth.PlaintextPolicy
	// TLSConfig enables STARTTLS (and is required for ServeTLS). nil: no TLS.
	TLSConfig *tls.Config
	// Logger receives connection and delivery logs. nil: slog.Default().
	Logger *slog.Logger
	// Limiter caps connections (total, per IP, trusted networks exempt).
	// Share one across all listeners of a process. nil: a private Limiter
	// with package listen's defaults.
	Limiter *listen.Limiter
	// Hostname names this server in the greeting, in Received headers and
	// as the authserv-id of Authentication-Results. Default "localhost".
	Hostname string
	// Domains are the mail domains delivered locally (case-insensitive).
	Domains []string
	// RecipientDelimiter lists the characters that separate a user from a
	// sub-address tag (RFC 5233); each character is a delimiter. Default
	// "+". Set NoSubaddressing to turn the feature off.
	RecipientDelimiter string
	NoSubaddressing    bool
	// Aliases maps an address to one or more local addresses. A key of
	// the form "@domain" is that domain's catch-all: it receives mail for
	// any address in the domain that matches no account or alias. Targets
	// may be aliases themselves (up to 8 levels). Targets outside Domains
	// are ignored (this server does not forward).
	Aliases map[string][]string
	// MaxMessageBytes caps a message (SIZE). Default DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// MaxRecipients caps RCPTs per transaction. Default DefaultMaxRecipients.
	MaxRecipients int
	// MaxLineBytes caps a line of input. Default DefaultMaxLineBytes.
	MaxLineBytes int
	// CommandTimeout bounds the wait for each command and each read
	// within a message. Default DefaultCommandTimeout.
	CommandTimeout time.Duration
	// CommandFinishTimeout bounds the time from the first byte of a command
	// to its reply. Default DefaultCommandFinishTimeout.
	CommandFinishTimeout time.Duration
	// MinDataRate is the slowest average rate (bytes/s) a message may
	// arrive at after its first CommandFinishTimeout. Default
	// DefaultMinDataRate; negative: no floor.
	MinDataRate int
	// WriteTimeout bounds writing each reply. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// SessionTimeout caps a whole connection. Default DefaultSessionTimeout.
	SessionTimeout time.Duration
	// DeliverTimeout bounds the store work of one delivery.
	// Default DefaultDeliverTimeout.
	DeliverTimeout time.Duration
	// MaxErrors is how many rejected commands a session may make before
	// it is closed with 421. 0: DefaultMaxErrors (MX, submission) or no
	// limit (LMTP); negative: no limit.
	MaxErrors int
	// Resolver answers the DNS queries of SPF, DKIM and DMARC.
	// nil: net.DefaultResolver.
	Resolver mailauth.Resolver
	// NoAuthChecks turns SPF/DKIM/DMARC checking off on the MX (then no
	// Authentication-Results header is added, but forged ones for our
	// hostname are still removed).
	NoAuthChecks bool
	// DMARCPolicy: DMARCAnnotate (default) or DMARCEnforce.
	DMARCPolicy DMARCPolicy
	// QuotaFullPermanent makes "mailbox full" a permanent failure
	// (552 5.2.2) instead of a temporary one (452 4.2.2, the default: the
	// sender keeps the message until the user makes room).
	QuotaFullPermanent bool
	// Queue, on the submission listener, takes mail for other domains
	// (outbound delivery with retries and DSNs). nil: recipients outside
	// Domains are refused with 550 5.7.1.
	Queue *queue.Queue
	// SpoolDir holds the temporary copy of a large message while the MX
	// checks it (files are unlinked at once). "": os.TempDir().
	SpoolDir string
}

// Server is one SMTP, LMTP or submission service over any number of
// listeners.
type Server struct {
	opts    Options
	log     *slog.Logger
	smtp    *smtp.Server
	lim     *listen.Limiter
	domains map[string]bool
	aliases map[string][]string
	checker *mailauth.Checker
	delims  string

	baseCtx context.Context
	cancel  context.CancelFunc

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool

	panics atomic.Int64
}

// New returns a Server for opts. It panics if opts.Store is nil (or, in
// submission mode, opts.Auth), which is a wiring mistake.
func New(opts Options) *Server {
	if opts.Store == nil {
		panic("smtpd: Options.Store is required")
	}
	if opts.Mode == ModeSubmission && opts.Auth == nil {
		panic("smtpd: Options.Auth is required for submission")
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	if opts.RecipientDelimiter == "" {
		opts.RecipientDelimiter = DefaultRecipientDelimiter
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = DefaultMaxRecipients
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = DefaultCommandTimeout
	}
	if opts.CommandFinishTimeout <= 0 {
		opts.CommandFinishTimeout = DefaultCommandFinishTimeout
	}
	if opts.MinDataRate == 0 {
		opts.MinDataRate = DefaultMinDataRate
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.DeliverTimeout <= 0 {
		opts.DeliverTimeout = DefaultDeliverTimeout
	}
	if opts.MaxErrors == 0 {
		opts.MaxErrors = DefaultMaxErrors
		if opts.Mode == ModeLMTP {
			opts.MaxErrors = -1
		}
	}
	if opts.DMARCPolicy == "" {
		opts.DMARCPolicy = DMARCAnnotate
	}
	if opts.PlaintextAuth == "" {
		opts.PlaintextAuth = auth.PlaintextLoopback
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		lim:     opts.Limiter,
		domains: make(map[string]bool),
		aliases: make(map[string][]string),
		conns:   make(map[*conn]struct{}),
		delims:  opts.RecipientDelimiter,
	}
	if opts.NoSubaddressing {
		s.delims = ""
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("proto", opts.Mode.proto())
	if s.lim == nil {
		s.lim = &listen.Limiter{Logger: s.log}
	}
	for _, d := range opts.Domains {
		s.domains[normDomain(d)] = true
	}
	for k, v := range opts.Aliases {
		key := normAliasKey(k)
		for _, t := range v {
			s.aliases[key] = append(s.aliases[key], normAliasKey(t))
		}
	}
	if opts.Mode == ModeMX && !opts.NoAuthChecks {
		s.checker = &mailauth.Checker{Resolver: opts.Resolver}
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())

	srv := smtp.NewServer(backend{s})
	srv.Domain = opts.Hostname
	srv.LMTP = opts.Mode == ModeLMTP
	srv.TLSConfig = opts.TLSConfig
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = opts.MaxRecipients
	srv.MaxLineLength = opts.MaxLineBytes
	srv.EnableSMTPUTF8 = true
	// Read and write deadlines are applied before every Read and Write by
	// listen.Conn (see Serve), so go-smtp's own per-command deadlines stay
	// off: a deadline set once per DATA command would bound the whole
	// message transfer instead of each read.
	srv.ReadTimeout, srv.WriteTimeout = 0, 0
	// AUTH is offered only where allowed; go-smtp asks authAllowed() as
	// well, so we let it through and decide in the session.
	srv.AllowInsecureAuth = true
	srv.ErrorLog = errorLog{s}
	s.smtp = srv
	return s
}

// Serve accepts connections on ln until Shutdown or Close. Connections are
// counted against the Limiter; over a cap they get 421 and are closed.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, s.opts.Mode.proto(), false)
}

// ServeTLS is Serve with implicit TLS (RFC 8314: submission on 465).
// Options.TLSConfig is required.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.opts.TLSConfig == nil {
		return errors.New("smtpd: ServeTLS needs Options.TLSConfig")
	}
	return s.serve(ln, s.opts.Mode.proto()+"s", true)
}

func (s *Server) serve(ln net.Listener, proto string, implicitTLS bool) error {
	s.mu.Lock()
	closed := s.shutdown
	s.mu.Unlock()
	if closed {
		ln.Close()
		return smtp.ErrServerClosed
	}
	host := s.opts.Hostname
	lln := s.lim.Listener(ln, proto, func(c net.Conn, why listen.Reason) {
		// RFC 5321 §3.8: 421 when the service is not available.
		fmt.Fprintf(c, "421 4.7.0 %s %s, try again later\r\n", host, why)
	})
	var l net.Listener = &listener{Listener: lln, srv: s, proto: proto}
	if implicitTLS {
		l = tls.NewListener(l, s.opts.TLSConfig)
	}
	err := s.smtp.Serve(l)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, ends idle sessions with 421 and
// waits for sessions in the middle of a message to finish it, until ctx is
// done; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.smtp.Shutdown(ctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// Poke idle connections until none is left: a session busy with
		// a message is cut as soon as it reads its next command.
		s.mu.Lock()
		for c := range s.conns {
			c.stopIdle()
		}
		s.mu.Unlock()
		select {
		case err := <-done:
			s.cancel()
			if errors.Is(err, smtp.ErrServerClosed) {
				return nil
			}
			if err != nil {
				s.closeConns()
			}
			return err
		case <-tick.C:
		}
	}
}

// Close closes all listeners and connections at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	s.cancel()
	err := s.smtp.Close()
	// After a Shutdown go-smtp's Close does nothing: close what is left.
	s.closeConns()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) closeConns() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Panics reports how many panics were recovered at the connection
// boundary. Tests fail when it is not zero.
func (s *Server) Panics() int64 { return s.panics.Load() }

// isLocalDomain reports whether mail for domain (normalised) is ours.
func (s *Server) isLocalDomain(domain string) bool { return s.domains[domain] }

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return b.s.newSession(c)
}

// errorLog routes go-smtp's internal messages to slog. A recovered panic is
// logged at error level and counted; everything else (mostly connections
// that broke) is debug.
type errorLog struct{ s *Server }

func (e errorLog) Printf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(format, "panic") {
		e.s.panics.Add(1)
		e.s.log.Error("panic recovered", "err", msg)
		return
	}
	e.s.log.Debug("smtp", "err", msg)
}

func (e errorLog) Println(v ...any) { e.Printf("%s", fmt.Sprintln(v...)) }
