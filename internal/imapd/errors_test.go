package imapd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

func TestErrorReply(t *testing.T) {
	cases := []struct {
		err                error
		status, code, text string
		ours               bool
	}{
		{fmt.Errorf("wrapped: %w", store.ErrNotFound), "NO", "NONEXISTENT", "no such mailbox or message", false},
		{store.ErrExists, "NO", "ALREADYEXISTS", "mailbox already exists", false},
		{store.ErrOverQuota, "NO", "OVERQUOTA", "quota exceeded", false},
		{store.ErrTooLarge, "NO", "TOOBIG", "message too large", false},
		{store.ErrHasChildren, "NO", "HASCHILDREN", "mailbox has children", false},
		{store.ErrTooManyItems, "NO", "LIMIT", "too many mailboxes or keywords", false},
		{store.ErrUnavailable, "NO", "UNAVAILABLE", "temporarily unavailable, try again", false},
		{store.ErrSpecialUse, "NO", "USEATTR", "special-use attribute not supported or in use", false},
		{store.ErrBadFlag, "BAD", "", "invalid flag or keyword", false},
		{context.Canceled, "NO", "UNAVAILABLE", "temporarily unavailable, try again", false},
		{no("TRYCREATE", "no such mailbox"), "NO", "TRYCREATE", "no such mailbox", false},
		{&syntaxError{"expected x"}, "BAD", "", "syntax error: expected x", false},
		{errors.New("disk on fire at /var/lib/x"), "NO", "SERVERBUG", "internal error, try again later", true},
	}
	for _, c := range cases {
		status, code, text, ours := errorReply(c.err)
		if status != c.status || code != c.code || text != c.text || ours != c.ours {
			t.Errorf("%v: got %s [%s] %q ours=%v", c.err, status, code, text, ours)
		}
	}
}
