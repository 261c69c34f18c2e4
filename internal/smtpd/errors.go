package smtpd

import (
	"errors"
	"log/slog"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/store"
)

// Replies we send. Texts are fixed: they never say which check, host or
// setting failed (our own faults are logged with the detail instead).
var (
	errTemp = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary local problem, please try again later"}
	errRelayDenied = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Relay access denied"}
	errUnknownUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "No such user here"}
	errBadRcptSyntax = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3},
		Message: "Bad recipient address syntax"}
	errBadSenderSyntax = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7},
		Message: "Bad sender address syntax"}
	errTooManyErrors = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "Too many errors, closing connection"}
	errMailboxFullTemp = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2},
		Message: "Mailbox full, try again later"}
	errMailboxFullPerm = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2},
		Message: "Mailbox full"}
	errDMARCReject = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Rejected by the DMARC policy of the sender's domain"}
	errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
		Message: "Service shutting down, try again later"}
	errLineTooLong = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 4, 0},
		Message: "Line too long"}
	errNoMailFrom = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
		Message: "MAIL first"}
)

// replyFor maps a delivery error to the reply for one recipient (or the
// whole transaction). nil stays nil. It is the only place that turns
// store errors into SMTP codes; anything it does not know is temporary, so
// that a sender retries rather than bounces.
func (s *Server) replyFor(err error) error {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errors.Is(err, store.ErrOverQuota):
		if s.opts.QuotaFullPermanent {
			return errMailboxFullPerm
		}
		return errMailboxFullTemp
	case errors.Is(err, store.ErrTooLarge):
		return smtp.ErrDataTooLarge
	case errors.Is(err, store.ErrNotFound):
		// The account vanished between RCPT and delivery.
		return errUnknownUser
	}
	return errTemp
}

// isTemporary reports whether a reply asks the sender to retry.
func isTemporary(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code/100 == 4
	}
	return err != nil
}

// slogLevelFor logs our own faults (temporary) at error level and the
// recipient's problems (permanent, or a full mailbox) at info.
func slogLevelFor(reply error) slog.Level {
	if reply == errTemp {
		return slog.LevelError
	}
	return slog.LevelInfo
}
