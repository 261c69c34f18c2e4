package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
)

// The text index: GIN trigram indexes (pg_trgm) on the folded search text
// of every body, so that SearchText can find the bodies containing a
// needle without reading the text of every message of the mailbox. The
// indexes are maintained by PostgreSQL at every insert into bodies, that
// is at delivery and append.
//
// Unlike the numbered migrations the text index is optional: pg_trgm is a
// contrib module that may not be installed, and CREATE EXTENSION needs the
// CREATE privilege on the database. Whether it can be created depends on
// the server and the role, not on the schema version, so it is not a
// numbered migration: ensureTextIndex runs after them, under the same
// advisory lock, at every Open until it succeeds. Until then SearchText
// reads every candidate's text (searchScan), exactly as before the index
// existed, and Open logs once why there is no index.
//
// The indexes are built in the transaction that creates them: on a
// database with many bodies the first Open of a binary with this code
// blocks writers of bodies for the time of the build.

// Names of the trigram indexes.
const (
	headerTrgmIndex = "bodies_header_trgm"
	bodyTrgmIndex   = "bodies_body_trgm"
)

// textIndexSQL creates the extension (trusted since PostgreSQL 13: the
// database owner, or any role with CREATE on the database, may) and the
// two indexes. Every statement is idempotent.
const textIndexSQL = `
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS ` + headerTrgmIndex + ` ON bodies USING gin (header_text gin_trgm_ops);
CREATE INDEX IF NOT EXISTS ` + bodyTrgmIndex + ` ON bodies USING gin (body_text gin_trgm_ops);
`

// hasTextIndex reports whether both trigram indexes exist and are valid.
func hasTextIndex(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var n int
	err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'bodies'::regclass AND i.indisvalid AND c.relname IN ($1, $2)`,
		headerTrgmIndex, bodyTrgmIndex).Scan(&n)
	return n == 2, err
}

// ensureTextIndex creates the text index unless it exists. It returns
// false with the reason when it cannot; the caller goes on without it.
// conn must hold the migration lock.
func ensureTextIndex(ctx context.Context, conn *pgx.Conn) (bool, error) {
	ok, err := hasTextIndex(ctx, conn)
	if err != nil || ok {
		return ok, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, textIndexSQL); err != nil {
		tx.Rollback(context.Background())
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// textIndexInfo says what Open found out about the text index.
type textIndexInfo struct {
	on   bool // both indexes exist
	wide bool // pg_trgm counts non-ASCII letters as word characters
}

// setupTextIndex runs ensureTextIndex and logs (once, here) when the store
// has to do without the index.
func setupTextIndex(ctx context.Context, conn *pgx.Conn, log *slog.Logger) textIndexInfo {
	ok, err := ensureTextIndex(ctx, conn)
	if err != nil {
		log.Warn("postgres: no text index (pg_trgm); SEARCH BODY/TEXT reads every message of the mailbox",
			"err", fmt.Errorf("create pg_trgm indexes: %w", err))
	}
	if !ok {
		return textIndexInfo{}
	}
	// In the C locale pg_trgm splits words at every non-ASCII character.
	var wide bool
	if err := conn.QueryRow(ctx, `SELECT cardinality(show_trgm('ééé')) > 0`).Scan(&wide); err != nil {
		wide = false
	}
	return textIndexInfo{on: true, wide: wide}
}
