package smtpd

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/store"
)

// session is one go-smtp Session: the envelope of the current transaction.
// A new one is made at each EHLO after connect or STARTTLS.
type session struct {
	srv *Server
	sc  *smtp.Conn
	cn  *conn
	log *slog.Logger

	hasFrom bool
	from    mailAddr // zero for the null reverse-path
	utf8    bool     // MAIL FROM ... SMTPUTF8
	rcpts   []rcpt

	user *store.Account // submission: the authenticated account

	cleanup []func() error // run when the current delivery ends
}

func (s *session) runCleanup() {
	for _, f := range s.cleanup {
		f()
	}
	s.cleanup = nil
}

// rcpt is one accepted RCPT TO.
type rcpt struct {
	raw   string   // exactly as go-smtp reported it (the StatusCollector key)
	addr  mailAddr // normalised
	accts []store.Account
	// remote: a recipient in another domain, accepted on submission for
	// the outbound queue.
	remote bool
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	cn := connOf(c.Conn())
	if cn == nil {
		// Not from our listener: cannot happen through Serve.
		return nil, errTemp
	}
	if cn.stop.Load() {
		return nil, errShuttingDown
	}
	return &session{srv: s, sc: c, cn: cn, log: cn.log}, nil
}

func (s *session) ctx() context.Context { return s.cn.ctx }

// reject counts a refused command and returns the reply for it, or 421
// when the session has now made too many errors (the connection then ends).
func (s *session) reject(err error) error {
	if s.cn.countError() {
		s.log.Info("too many errors, closing")
		return errTooManyErrors
	}
	return err
}

func (s *session) Reset() {
	s.hasFrom = false
	s.from = mailAddr{}
	s.utf8 = false
	s.rcpts = nil
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.cn.kill.Load() {
		return errTooManyErrors
	}
	if s.srv.opts.Mode == ModeSubmission {
		if err := s.checkSubmissionSender(from); err != nil {
			return s.reject(err)
		}
	}
	var addr mailAddr
	if from != "" {
		a, err := parseAddress(from)
		if err != nil {
			return s.reject(errBadSenderSyntax)
		}
		addr = a
	}
	s.Reset()
	s.hasFrom, s.from = true, addr
	s.utf8 = opts != nil && opts.UTF8
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.cn.kill.Load() {
		return errTooManyErrors
	}
	if !s.hasFrom {
		return errNoMailFrom
	}
	addr, err := parseAddress(to)
	if err != nil {
		return s.reject(errBadRcptSyntax)
	}
	if !s.srv.isLocalDomain(addr.Domain) {
		if s.srv.opts.Mode == ModeSubmission {
			if s.srv.opts.Queue == nil {
				// No outbound queue configured: refuse plainly.
				return s.reject(errNoRemote)
			}
			// MAIL succeeded, so the user is authenticated (RFC 6409).
			s.rcpts = append(s.rcpts, rcpt{raw: to, addr: addr, remote: true})
			return nil
		}
		// Never an open relay (RFC 5321 §3.6.2, §7.1).
		return s.reject(errRelayDenied)
	}
	accts, err := s.srv.resolve(s.ctx(), addr)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.reject(errUnknownUser)
	case err != nil:
		s.log.Error("recipient lookup failed", "err", err)
		return errTemp
	}
	// Refuse early when a mailbox is already full, so that the sender
	// learns it per recipient (the message size is not known yet).
	for _, a := range accts {
		if a.QuotaBytes > 0 && a.UsedBytes >= a.QuotaBytes {
			return s.srv.replyFor(store.ErrOverQuota)
		}
	}
	s.rcpts = append(s.rcpts, rcpt{raw: to, addr: addr, accts: accts})
	return nil
}

// remoteIP is the client's address, nil for non-IP connections.
func (s *session) remoteIP() net.IP {
	if ta, ok := s.cn.RemoteAddr().(*net.TCPAddr); ok {
		return ta.IP
	}
	return nil
}
