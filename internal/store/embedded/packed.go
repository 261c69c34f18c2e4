package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/skrytka/skrytka/internal/store"
)

// packedPageQuery reads one page of message rows as a single text value,
// one line per message: SQLite builds it while walking the B-tree, and Go
// parses it, so the per-row cost of database/sql is paid once per page.
// Keywords come last on each line (they may contain commas, never a
// newline or a space inside one keyword).
const packedPageQuery = `SELECT group_concat(id || ',' || uid || ',' || modseq || ',' || flags || ',' || internal_date || ',' || internal_tz || ',' || size || ',' || keywords, char(10))
FROM (SELECT id, uid, modseq, flags, internal_date, internal_tz, size, keywords FROM messages
      WHERE mailbox_id = ? AND uid >= ? AND uid <= ? ORDER BY uid LIMIT ?)`

// packedPage appends the messages of one page to page.
func packedPage(ctx context.Context, st *sql.Stmt, mbox store.MailboxID, from, to store.UID, limit int, page []store.Message) ([]store.Message, error) {
	var text sql.NullString
	if err := st.QueryRowContext(ctx, mbox, from, to, limit).Scan(&text); err != nil {
		return page, translate(err)
	}
	s := text.String
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		var f [7]int64
		for k := range f {
			i := strings.IndexByte(line, ',')
			if i < 0 {
				return page, fmt.Errorf("embedded: bad packed row %q", line)
			}
			n, err := strconv.ParseInt(line[:i], 10, 64)
			if err != nil {
				return page, fmt.Errorf("embedded: bad packed row: %w", err)
			}
			f[k] = n
			line = line[i+1:]
		}
		page = append(page, store.Message{
			ID:           store.MessageID(f[0]),
			Mailbox:      mbox,
			UID:          store.UID(f[1]),
			ModSeq:       store.ModSeq(f[2]),
			Flags:        store.Flags{Sys: store.SysFlags(f[3]), Keywords: splitKeywords(line)},
			InternalDate: zoneTime(f[4], int(f[5])),
			Size:         f[6],
		})
	}
	return page, nil
}
