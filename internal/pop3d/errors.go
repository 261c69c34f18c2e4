package pop3d

import (
	"context"
	"errors"
	"log/slog"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
)

// wireError is how an error is shown to a POP3 client.
type wireError struct {
	Code  string // RFC 2449 §8 / RFC 3206 response code, "" for none
	Text  string // fixed text: never a detail of our internals
	Level slog.Level
}

// mapError turns an error from auth or the store into the client's reply.
// It is the only place that decides this (STYLE.md §4).
func mapError(err error) wireError {
	switch {
	case errors.Is(err, auth.ErrThrottled):
		// The password was not checked: [AUTH] would make clients throw
		// away a good one. RFC 3206 §5: come back later.
		return wireError{Code: "SYS/TEMP", Text: "too many failed logins, try again later", Level: slog.LevelInfo}
	case errors.Is(err, auth.ErrFailed):
		// RFC 3206 §4: the credentials are wrong.
		return wireError{Code: "AUTH", Text: "authentication failed", Level: slog.LevelDebug}
	case errors.Is(err, store.ErrLocked):
		// RFC 2449 §8.1.2: another session holds the maildrop.
		return wireError{Code: "IN-USE", Text: "maildrop is locked by another session", Level: slog.LevelInfo}
	case errors.Is(err, store.ErrNotFound):
		return wireError{Text: "no such message", Level: slog.LevelDebug}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// RFC 3206 §5: a temporary problem on our side.
		return wireError{Code: "SYS/TEMP", Text: "temporary server problem, try again later", Level: slog.LevelWarn}
	default:
		return wireError{Code: "SYS/TEMP", Text: "internal server error, try again later", Level: slog.LevelError}
	}
}

// line renders the reply line, without CRLF.
func (e wireError) line() string {
	if e.Code == "" {
		return "-ERR " + e.Text
	}
	return "-ERR [" + e.Code + "] " + e.Text
}

// replyError logs err as its class asks and answers the client.
func (c *conn) replyError(op string, err error) {
	we := mapError(err)
	c.log.Log(c.ctx, we.Level, op+" failed", "cmd", op, "err", err)
	c.bw.WriteString(we.line())
	c.bw.WriteString("\r\n")
}
