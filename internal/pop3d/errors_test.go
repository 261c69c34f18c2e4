package pop3d

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
)

func TestMapError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{auth.ErrFailed, "-ERR [AUTH] authentication failed"},
		{fmt.Errorf("wrapped: %w", auth.ErrFailed), "-ERR [AUTH] authentication failed"},
		{auth.ErrThrottled, "-ERR [SYS/TEMP] too many failed logins, try again later"},
		{auth.ErrMalformed, "-ERR [AUTH] authentication failed"},
		{store.ErrLocked, "-ERR [IN-USE] maildrop is locked by another session"},
		{fmt.Errorf("lock: %w", store.ErrLocked), "-ERR [IN-USE] maildrop is locked by another session"},
		{store.ErrNotFound, "-ERR no such message"},
		{store.ErrUnavailable, "-ERR [SYS/TEMP] temporary server problem, try again later"},
		{store.ErrClosed, "-ERR [SYS/TEMP] temporary server problem, try again later"},
		{context.DeadlineExceeded, "-ERR [SYS/TEMP] temporary server problem, try again later"},
		{errors.New("disk on fire at /var/lib/x"), "-ERR [SYS/TEMP] internal server error, try again later"},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			if got := mapError(tt.err).line(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{"": PolicyExpunge, "expunge": PolicyExpunge, "trash": PolicyTrash, "archive": PolicyArchive, "keep": PolicyKeep} {
		got, err := ParsePolicy(in)
		if err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"delete", "KEEP ", "x"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", bad)
		}
	}
}

func TestParseMsgNumber(t *testing.T) {
	good := map[string]int{"1": 1, "0": 0, "007": 7, "4294967295": 4294967295}
	for in, want := range good {
		if got, ok := parseMsgNumber(in); !ok || got != want {
			t.Errorf("parseMsgNumber(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-1", "+1", "1a", "12345678901", "½"} {
		if _, ok := parseMsgNumber(in); ok {
			t.Errorf("parseMsgNumber(%q) accepted", in)
		}
	}
}
