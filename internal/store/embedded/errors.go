package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/skrytka/skrytka/internal/store"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// translate maps driver and OS errors to store sentinels. Store sentinels
// and context errors pass through. A unique violation is ErrExists; a full
// disk, an I/O error, a busy or locked database are ErrUnavailable (the
// caller's temporary failure), keeping the detail for the log.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if isSentinel(err) || errors.Is(err, errNoneDelivered) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT:
			if se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
				return fmt.Errorf("%w: %v", store.ErrExists, err)
			}
		}
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	// Other drivers (the cgo one in comparison benchmarks) and the OS.
	msg := err.Error()
	if strings.Contains(msg, "UNIQUE constraint failed") {
		return fmt.Errorf("%w: %v", store.ErrExists, err)
	}
	var errno syscall.Errno
	var pe *fs.PathError
	if errors.As(err, &errno) || errors.As(err, &pe) {
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
}

var sentinels = []error{
	store.ErrNotFound, store.ErrExists, store.ErrInvalidName, store.ErrNoSelect,
	store.ErrHasChildren, store.ErrOverQuota, store.ErrTooLarge, store.ErrLocked,
	store.ErrSpecialUse, store.ErrUnavailable, store.ErrClosed, store.ErrBadFlag,
	store.ErrCannotRename, store.ErrInboxSpecial, store.ErrTooManyItems,
	store.ErrNotStagedHere,
}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
