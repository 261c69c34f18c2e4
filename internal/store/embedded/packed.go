package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/skrytka/skrytka/internal/store"
)

// packedPageQuery reads messages of message rows as a single text value,
// one line per message: SQLite builds it while walking the B-tree, and Go
// parses it, so the per-row cost of database/sql is paid once per page.
// Keywords come last on each line (they may contain commas, never a
// newline or a space inside one keyword).
const packedPageQuery = `SELECT group_concat(id || ',' || uid || ',' || modseq || ',' || flags || ',' || internal_date || ',' || internal_tz || ',' || size || ',' || keywords, char(10))
FROM (SELECT id, uid, modseq, flags, internal_date, internal_tz, size, keywords FROM messages
      WHERE mailbox_id = ? AND uid >= ? AND uid <= ? ORDER BY uid LIMIT ?)`

// packedRecs appends the messages of one page (limit -1: all) to recs.
func packedRecs(ctx context.Context, st *sql.Stmt, mbox store.MailboxID, from, to store.UID, limit int, recs []msgRec, in *kwInterner) ([]msgRec, error) {
	var text sql.NullString
	if err := st.QueryRowContext(ctx, mbox, from, to, limit).Scan(&text); err != nil {
		return recs, translate(err)
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
				return recs, fmt.Errorf("embedded: bad packed row %q", line)
			}
			n, err := strconv.ParseInt(line[:i], 10, 64)
			if err != nil {
				return recs, fmt.Errorf("embedded: bad packed row: %w", err)
			}
			f[k] = n
			line = line[i+1:]
		}
		recs = append(recs, msgRec{
			id:     store.MessageID(f[0]),
			uid:    store.UID(f[1]),
			modseq: store.ModSeq(f[2]),
			sys:    store.SysFlags(f[3]),
			date:   f[4],
			tz:     int32(f[5]),
			size:   f[6],
			kw:     in.id(line),
		})
	}
	return recs, nil
}
