package imapd

import (
	"context"
	"errors"

	"github.com/skrytka/skrytka/internal/store"
)

// respError is a NO or BAD reply a command chose.
type respError struct {
	status string // "NO" or "BAD"
	code   string // RFC 5530 response code, or ""
	text   string
}

func (e *respError) Error() string { return e.status + " " + e.text }

func no(code, text string) error  { return &respError{"NO", code, text} }
func bad(code, text string) error { return &respError{"BAD", code, text} }

// storeReplies maps store sentinels to replies (RFC 5530, RFC 9051 §7.1).
var storeReplies = []struct {
	err        error
	status     string
	code, text string
}{
	{store.ErrNotFound, "NO", "NONEXISTENT", "no such mailbox or message"},
	{store.ErrExists, "NO", "ALREADYEXISTS", "mailbox already exists"},
	{store.ErrInvalidName, "NO", "CANNOT", "invalid mailbox name"},
	{store.ErrNoSelect, "NO", "CANNOT", "mailbox cannot hold messages"},
	{store.ErrHasChildren, "NO", "HASCHILDREN", "mailbox has children"},
	{store.ErrOverQuota, "NO", "OVERQUOTA", "quota exceeded"},
	{store.ErrTooLarge, "NO", "TOOBIG", "message too large"},
	{store.ErrLocked, "NO", "INUSE", "mailbox in use"},
	{store.ErrSpecialUse, "NO", "USEATTR", "special-use attribute not supported or in use"},
	{store.ErrUnavailable, "NO", "UNAVAILABLE", "temporarily unavailable, try again"},
	{store.ErrClosed, "NO", "UNAVAILABLE", "temporarily unavailable, try again"},
	{store.ErrBadFlag, "BAD", "", "invalid flag or keyword"},
	{store.ErrCannotRename, "NO", "CANNOT", "cannot rename mailbox there"},
	{store.ErrInboxSpecial, "NO", "CANNOT", "INBOX cannot be deleted"},
	{store.ErrTooManyItems, "NO", "LIMIT", "too many mailboxes or keywords"},
	{context.Canceled, "NO", "UNAVAILABLE", "temporarily unavailable, try again"},
	{context.DeadlineExceeded, "NO", "UNAVAILABLE", "temporarily unavailable, try again"},
}

// errorReply maps any command error to status, code and client text. ours
// is true for our own faults, which are logged with their detail; the
// client only sees a fixed text.
func errorReply(err error) (status, code, text string, ours bool) {
	var re *respError
	if errors.As(err, &re) {
		return re.status, re.code, re.text, false
	}
	var se *syntaxError
	if errors.As(err, &se) {
		return "BAD", "", "syntax error: " + se.msg, false
	}
	for _, r := range storeReplies {
		if errors.Is(err, r.err) {
			return r.status, r.code, r.text, false
		}
	}
	return "NO", "SERVERBUG", "internal error, try again later", true
}

// replyError sends the tagged reply for a failed command.
func (c *conn) replyError(cmd *command, err error) {
	status, code, text, ours := errorReply(err)
	if ours {
		c.log.Error("command failed", "cmd", cmd.name, "err", err)
	}
	c.tagged(cmd, status, code, text)
}
