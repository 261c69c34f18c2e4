package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/listen"
)

// Submission (RFC 6409) replies.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required"}
	errEncryptionRequired = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11},
		Message: "Encryption required for requested authentication mechanism"} // RFC 4954 §6
	errAuthTemp = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "Temporary authentication failure"}
	errAuthMalformed = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2},
		Message: "Malformed authentication response"}
	errNotYourAddress = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Sender address not owned by the authenticated user"}
	errFromNotYours = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "From: header address not owned by the authenticated user"}
	errNoRemote = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "This server delivers only to its own domains"}
	errHeaderTooLarge = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: "Message header section too large"}
)

// maxSubmitHeaderBytes bounds the header section read into memory to check
// From: and to add Message-ID and Date.
const maxSubmitHeaderBytes = 256 << 10

// AuthMechanisms implements smtp.AuthSession: PLAIN and LOGIN, offered only
// where a password may travel (TLS, or what Options.PlaintextAuth allows),
// and only on the submission listener.
func (s *session) AuthMechanisms() []string {
	if s.srv.opts.Mode != ModeSubmission || !s.plaintextOK() {
		return nil
	}
	return []string{auth.MechPlain, auth.MechLogin}
}

func (s *session) plaintextOK() bool {
	_, isTLS := s.sc.TLSConnectionState()
	return s.srv.opts.PlaintextAuth.Allowed(s.cn.RemoteAddr(), isTLS)
}

// Auth implements smtp.AuthSession.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.srv.opts.Mode != ModeSubmission {
		return nil, smtp.ErrAuthUnsupported
	}
	if s.user != nil {
		return nil, &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Already authenticated"}
	}
	if !s.plaintextOK() {
		return nil, errEncryptionRequired
	}
	srv, err := s.srv.opts.Auth.NewSASLServer(s.ctx(), mech, s.cn.RemoteAddr().String())
	if errors.Is(err, auth.ErrMechanism) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if err != nil {
		return nil, errAuthTemp
	}
	return &saslServer{s: s, inner: srv}, nil
}

// saslServer maps auth's errors to SMTP replies and records the account
// once the exchange succeeds.
type saslServer struct {
	s     *session
	inner *auth.SASLServer
}

func (a *saslServer) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := a.inner.Next(response)
	switch {
	case err == nil:
		if done {
			acct, ok := a.inner.Account()
			if !ok {
				return nil, true, smtp.ErrAuthFailed
			}
			a.s.user = &acct
			listen.SetUser(a.s.cn, acct.Address)
			a.s.log = a.s.log.With("user", acct.Address)
			a.s.log.Info("authenticated")
		}
		return challenge, done, nil
	case errors.Is(err, auth.ErrMalformed):
		return nil, true, a.s.reject(errAuthMalformed)
	case errors.Is(err, auth.ErrFailed):
		return nil, true, a.s.reject(smtp.ErrAuthFailed)
	}
	a.s.log.Error("authentication failed on our side", "err", err)
	return nil, true, errAuthTemp
}

// ownsAddress reports whether the authenticated user may use addr as a
// sender: it is their address (with or without a sub-address tag) or an
// alias that delivers to them.
func (s *session) ownsAddress(addr mailAddr) bool {
	if s.user == nil {
		return false
	}
	key := addr.key()
	if base, ok := s.srv.stripTag(key); ok && base == s.user.Address {
		return true
	}
	if key == s.user.Address {
		return true
	}
	if !s.srv.isLocalDomain(addr.Domain) {
		return false
	}
	if _, ok := s.srv.aliases[key]; !ok {
		return false
	}
	accts, err := s.srv.resolve(s.ctx(), addr)
	if err != nil {
		return false
	}
	for _, a := range accts {
		if a.ID == s.user.ID {
			return true
		}
	}
	return false
}

// checkSubmissionSender applies RFC 6409 §4.3/§8.1 rules to MAIL FROM: an
// authenticated user, sending as themself.
func (s *session) checkSubmissionSender(from string) error {
	if s.user == nil {
		return errAuthRequired
	}
	if from == "" {
		return errNotYourAddress
	}
	a, err := parseAddress(from)
	if err != nil {
		return errBadSenderSyntax
	}
	if !s.ownsAddress(a) {
		return errNotYourAddress
	}
	return nil
}

// submissionHeader reads the header section of a submitted message,
// checks that every From: address belongs to the user, and returns the
// fields to add (Message-ID and Date when missing, RFC 6409 §8.2-8.3) and a
// reader for the whole original message.
func (s *session) submissionHeader(r io.Reader) (add string, msg io.Reader, err error) {
	br := bufio.NewReader(r)
	var raw bytes.Buffer
	midLine := false // the previous read ended inside a long line
	for {
		line, err := br.ReadSlice('\n')
		raw.Write(line)
		if raw.Len() > maxSubmitHeaderBytes {
			return "", nil, errHeaderTooLarge
		}
		if err == bufio.ErrBufferFull {
			midLine = true
			continue
		}
		blank := !midLine && len(line) <= 2 && strings.TrimRight(string(line), "\r\n") == ""
		midLine = false
		if err != nil || blank {
			if err != nil && err != io.EOF {
				return "", nil, err
			}
			break
		}
	}
	hdr, perr := textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw.Bytes()), strings.NewReader("\r\n"))))
	if perr != nil {
		return "", nil, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Malformed message header"}
	}
	mh := mail.Header{Header: message.Header{Header: hdr}}
	froms, ferr := mh.AddressList("From")
	if ferr != nil || len(froms) == 0 {
		return "", nil, errFromNotYours
	}
	for _, f := range froms {
		a, err := parseAddress(f.Address)
		if err != nil || !s.ownsAddress(a) {
			return "", nil, errFromNotYours
		}
	}
	var b strings.Builder
	if !hdr.Has("Message-Id") {
		b.WriteString("Message-ID: <" + newID() + newID() + "@" + s.srv.opts.Hostname + ">\r\n")
	}
	if !hdr.Has("Date") {
		b.WriteString("Date: " + time.Now().Format(time.RFC1123Z) + "\r\n")
	}
	return b.String(), io.MultiReader(bytes.NewReader(raw.Bytes()), br), nil
}

// submissionAuthResults records how the user authenticated (RFC 8601 §2.7.4).
func (s *session) submissionAuthResults() string {
	v := authres.Format(s.srv.opts.Hostname, []authres.Result{
		&authres.AuthResult{Value: authres.ResultPass, Auth: s.user.Address},
	})
	return "Authentication-Results: " + v + "\r\n"
}
