package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
)

// migrations are applied in order; migrations[i] brings the schema to
// version i+1. Never edit a released migration: append a new one.
//
// Names are compared byte-wise (COLLATE "C") so that the child range of a
// mailbox name is [name+"/", name+"0") exactly as in the embedded backend.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE SEQUENCE uidvalidity_seq;
SELECT setval('uidvalidity_seq', extract(epoch FROM now())::bigint);

CREATE TABLE accounts (
	id              bigserial PRIMARY KEY,
	address         text NOT NULL UNIQUE,
	password_hash   text NOT NULL,
	quota_bytes     bigint NOT NULL DEFAULT 0,
	used_bytes      bigint NOT NULL DEFAULT 0,
	download_policy text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mailboxes (
	id             bigserial PRIMARY KEY,
	account_id     bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
	name           text COLLATE "C" NOT NULL,
	special_use    text NOT NULL DEFAULT '',
	noselect       boolean NOT NULL DEFAULT false,
	uidvalidity    bigint NOT NULL,
	uidnext        bigint NOT NULL DEFAULT 1,
	highest_modseq bigint NOT NULL DEFAULT 1,
	messages       bigint NOT NULL DEFAULT 0,
	unseen         bigint NOT NULL DEFAULT 0,
	deleted        bigint NOT NULL DEFAULT 0,
	size           bigint NOT NULL DEFAULT 0,
	recent_uid     bigint NOT NULL DEFAULT 1,
	UNIQUE (account_id, name)
);
CREATE UNIQUE INDEX mailboxes_special_use ON mailboxes (account_id, special_use) WHERE special_use <> '';

-- Keyword spellings per mailbox: the first spelling used wins.
CREATE TABLE keywords (
	mailbox_id bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
	folded     text NOT NULL,
	keyword    text NOT NULL,
	PRIMARY KEY (mailbox_id, folded)
);

CREATE TABLE subscriptions (
	account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
	name       text COLLATE "C" NOT NULL,
	PRIMARY KEY (account_id, name)
);

-- One row per stored body; refs counts the message entries using it. The
-- bytes live in the BodyStore (body_chunks for the built-in one).
CREATE TABLE bodies (
	id          bigserial PRIMARY KEY,
	size        bigint NOT NULL,
	refs        bigint NOT NULL DEFAULT 0,
	parsed      bytea NOT NULL,
	header_text text NOT NULL,
	body_text   text NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE body_chunks (
	body_id bigint NOT NULL,
	seq     integer NOT NULL,
	data    bytea NOT NULL,
	PRIMARY KEY (body_id, seq)
);

CREATE TABLE messages (
	id            bigserial PRIMARY KEY,
	mailbox_id    bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
	uid           bigint NOT NULL,
	modseq        bigint NOT NULL,
	sys_flags     integer NOT NULL DEFAULT 0,
	keywords      text[] NOT NULL DEFAULT '{}',
	internal_date timestamptz NOT NULL,
	size          bigint NOT NULL,
	body_id       bigint NOT NULL REFERENCES bodies,
	UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_body ON messages (body_id);

-- Expunged UIDs with the ModSeq of their expunge (QRESYNC VANISHED).
CREATE TABLE tombstones (
	mailbox_id bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
	uid        bigint NOT NULL,
	modseq     bigint NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX tombstones_modseq ON tombstones (mailbox_id, modseq);

-- POP3 maildrop leases: a row is held until expires_at unless refreshed.
CREATE TABLE maildrop_leases (
	account_id bigint PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
	token      text NOT NULL,
	holder     text NOT NULL,
	expires_at timestamptz NOT NULL
);
`,
	// 2: the internal date keeps its zone offset (IMAP INTERNALDATE shows it).
	`ALTER TABLE messages ADD COLUMN date_offset integer NOT NULL DEFAULT 0;`,
	// 3: the search text of new bodies is compressed with lz4, which
	// SearchText (and delivery) reads back (and writes) faster than
	// pglz. Servers older than 14 (syntax error) or built without lz4
	// keep pglz. Existing values are left as they are.
	`DO $$
BEGIN
	EXECUTE 'ALTER TABLE bodies ALTER COLUMN header_text SET COMPRESSION lz4, ALTER COLUMN body_text SET COMPRESSION lz4';
EXCEPTION WHEN syntax_error OR feature_not_supported THEN
	NULL;
END $$;`,
	// 4: the messages of a body in one mailbox in one index probe:
	// SearchText joins the bodies the text index found with the
	// mailbox's messages one body at a time, and with body_id alone the
	// planner may AND it with a bitmap of the whole mailbox per body.
	`CREATE INDEX messages_body_mailbox ON messages (body_id, mailbox_id);
DROP INDEX messages_body;`,
}

// migrateLockKey is the advisory lock key that serialises migrations of
// nodes starting at the same time ("skrytka" in ASCII).
const migrateLockKey = 0x736b7279746b61

// Migrate brings the schema of the database at dsn to the current version.
// It is safe to run from several nodes at once (an advisory lock
// serialises them) and does nothing when the schema is current. It fails
// when the database has a newer schema than this binary knows. It also
// creates the optional text index (textindex.go), logging to
// slog.Default() when it cannot.
func Migrate(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", translate(err))
	}
	defer conn.Close(context.Background())
	_, err = migrate(ctx, conn, slog.Default())
	return err
}

// migrate applies the numbered migrations, then tries the optional text
// index; it reports whether the text index is there.
func migrate(ctx context.Context, conn *pgx.Conn, log *slog.Logger) (textIndexInfo, error) {
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLockKey)); err != nil {
		return textIndexInfo{}, fmt.Errorf("postgres: migrate: %w", translate(err))
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrateLockKey))
	if err := migrateSchema(ctx, conn); err != nil {
		return textIndexInfo{}, err
	}
	return setupTextIndex(ctx, conn, log), nil
}

// migrateSchema applies the numbered migrations. conn holds the migration
// lock.
func migrateSchema(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: migrate: %w", translate(err))
	}
	var version int
	err := conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
	switch {
	case err == pgx.ErrNoRows:
		if _, err := conn.Exec(ctx, `INSERT INTO schema_version VALUES (0)`); err != nil {
			return fmt.Errorf("postgres: migrate: %w", translate(err))
		}
	case err != nil:
		return fmt.Errorf("postgres: migrate: %w", translate(err))
	}
	if version > len(migrations) {
		return fmt.Errorf("postgres: database schema version %d is newer than this binary's %d", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("postgres: migrate: %w", translate(err))
		}
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			tx.Rollback(context.Background())
			return fmt.Errorf("postgres: migration %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, v+1); err != nil {
			tx.Rollback(context.Background())
			return fmt.Errorf("postgres: migration %d: %w", v+1, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("postgres: migration %d: %w", v+1, translate(err))
		}
	}
	return nil
}

// SchemaVersion is the schema version this binary migrates to.
func SchemaVersion() int { return len(migrations) }
