package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/skrytka/skrytka/internal/store"
)

// SASL mechanism names (RFC 4422 registry).
const (
	MechPlain = "PLAIN" // RFC 4616
	MechLogin = "LOGIN" // draft-murchison-sasl-login; SMTP clients still use it
)

// ErrMechanism is returned by NewSASLServer for a mechanism it does not
// offer. Front ends answer it as "unsupported mechanism" (IMAP NO, SMTP
// 504 5.5.4, POP3 -ERR).
var ErrMechanism = errors.New("auth: unsupported SASL mechanism")

// ErrMalformed is a client response that does not follow the mechanism.
// It matches ErrFailed under errors.Is.
var ErrMalformed = fmt.Errorf("%w: malformed SASL response", ErrFailed)

// SASLServer is the server side of one SASL exchange. It implements
// sasl.Server (go-smtp's Session.Auth returns one). Errors from Next are
// ErrFailed, ErrThrottled or ErrMalformed (all matching ErrFailed), or a
// store/context error that is not the client's fault.
type SASLServer struct {
	inner sasl.Server
	acct  store.Account
	ok    bool
}

// Next implements sasl.Server.
func (s *SASLServer) Next(response []byte) (challenge []byte, done bool, err error) {
	challenge, done, err = s.inner.Next(response)
	if err != nil && !errors.Is(err, ErrFailed) && !isPassThrough(err) {
		err = ErrMalformed
	}
	return challenge, done, err
}

// isPassThrough reports errors from Authenticate that must reach the
// front end unchanged (not the client's fault).
func isPassThrough(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrClosed) || errors.As(err, new(*storeError))
}

// storeError marks other errors from the store so they pass through.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// Account returns the authenticated account once Next has finished
// without error.
func (s *SASLServer) Account() (store.Account, bool) { return s.acct, s.ok }

// NewSASLServer starts the server side of mech (case-insensitive: PLAIN or
// LOGIN) for a client at remote. Offering a mechanism only where
// PlaintextPolicy allows it is the front end's job.
//
// PLAIN: the authorization identity must be empty or equal (ignoring case)
// to the authentication identity; Skrytka has no proxy authorization.
func (a *Authenticator) NewSASLServer(ctx context.Context, mech, remote string) (*SASLServer, error) {
	s := &SASLServer{}
	check := func(user, pass string) error {
		acct, err := a.Authenticate(ctx, remote, user, pass)
		if err != nil {
			if errors.Is(err, ErrFailed) || isPassThrough(err) {
				return err
			}
			return &storeError{err}
		}
		s.acct, s.ok = acct, true
		return nil
	}
	switch strings.ToUpper(mech) {
	case MechPlain:
		s.inner = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && !strings.EqualFold(identity, username) {
				return ErrFailed // RFC 4616 §2: we authorize no one else
			}
			return check(username, password)
		})
	case MechLogin:
		s.inner = &loginServer{check: check}
	default:
		return nil, ErrMechanism
	}
	return s, nil
}

// loginServer is the server side of LOGIN: "Username:" then "Password:",
// the client's answers in clear (base64 is the front end's job). A client
// may send the user name as initial response.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	gotUser  bool
	finished bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case l.finished:
		return nil, true, sasl.ErrUnexpectedClientResponse
	case !l.gotUser && response == nil:
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(response), true
		return []byte("Password:"), false, nil
	}
	l.finished = true
	return nil, true, l.check(l.user, string(response))
}
