package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations are applied in order at Open; schema_version holds how many
// have been applied. Never edit a released migration: append a new one.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;

CREATE TABLE accounts(
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	address         TEXT NOT NULL UNIQUE,
	password_hash   TEXT NOT NULL,
	quota_bytes     INTEGER NOT NULL DEFAULT 0,
	used_bytes      INTEGER NOT NULL DEFAULT 0,
	download_policy TEXT NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL
);

CREATE TABLE mailboxes(
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id     INTEGER NOT NULL,
	name           TEXT NOT NULL,
	special_use    TEXT NOT NULL DEFAULT '',
	noselect       INTEGER NOT NULL DEFAULT 0,
	uidvalidity    INTEGER NOT NULL,
	uidnext        INTEGER NOT NULL DEFAULT 1,
	highest_modseq INTEGER NOT NULL DEFAULT 1,
	messages       INTEGER NOT NULL DEFAULT 0,
	unseen         INTEGER NOT NULL DEFAULT 0,
	deleted        INTEGER NOT NULL DEFAULT 0,
	size           INTEGER NOT NULL DEFAULT 0,
	recent_uid     INTEGER NOT NULL DEFAULT 1,
	UNIQUE(account_id, name)
);

-- One row per stored body. A body lives inline (data) or in a file under
-- blobs/ (file). Copies, moves and multi-recipient deliveries share it.
CREATE TABLE blobs(
	id   INTEGER PRIMARY KEY AUTOINCREMENT,
	size INTEGER NOT NULL,
	file TEXT,
	data BLOB,
	info BLOB NOT NULL
);
CREATE UNIQUE INDEX blobs_file ON blobs(file) WHERE file IS NOT NULL;

-- Decoded, case-folded text for SearchText, written once at delivery.
CREATE TABLE texts(
	blob_id INTEGER PRIMARY KEY,
	header  TEXT NOT NULL,
	body    TEXT NOT NULL
);

CREATE TABLE messages(
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox_id    INTEGER NOT NULL,
	uid           INTEGER NOT NULL,
	modseq        INTEGER NOT NULL,
	flags         INTEGER NOT NULL,
	keywords      TEXT NOT NULL DEFAULT '',
	internal_date INTEGER NOT NULL,
	internal_tz   INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	blob_id       INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_uid ON messages(mailbox_id, uid);
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_blob ON messages(blob_id);

-- Expunged UIDs with the ModSeq of their expunge (QRESYNC VANISHED).
CREATE TABLE tombstones(
	mailbox_id INTEGER NOT NULL,
	uid        INTEGER NOT NULL,
	modseq     INTEGER NOT NULL,
	PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX tombstones_modseq ON tombstones(mailbox_id, modseq);

CREATE TABLE subscriptions(
	account_id INTEGER NOT NULL,
	name       TEXT NOT NULL,
	PRIMARY KEY(account_id, name)
) WITHOUT ROWID;

-- Keywords ever used in a mailbox: lname is the case-folded key, name the
-- first spelling.
CREATE TABLE keywords(
	mailbox_id INTEGER NOT NULL,
	lname      TEXT NOT NULL,
	name       TEXT NOT NULL,
	PRIMARY KEY(mailbox_id, lname)
) WITHOUT ROWID;

-- Body files whose last reference was deleted; unlinked after commit.
CREATE TABLE dead_files(name TEXT PRIMARY KEY) WITHOUT ROWID;

-- Counters are kept by triggers so that no code path can forget one.
CREATE TRIGGER messages_ins AFTER INSERT ON messages BEGIN
	UPDATE mailboxes SET messages = messages + 1,
		unseen = unseen + ((NEW.flags & 1) = 0),
		deleted = deleted + ((NEW.flags & 8) != 0),
		size = size + NEW.size
	WHERE id = NEW.mailbox_id;
	UPDATE accounts SET used_bytes = used_bytes + NEW.size
	WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;

CREATE TRIGGER messages_del AFTER DELETE ON messages BEGIN
	UPDATE mailboxes SET messages = messages - 1,
		unseen = unseen - ((OLD.flags & 1) = 0),
		deleted = deleted - ((OLD.flags & 8) != 0),
		size = size - OLD.size
	WHERE id = OLD.mailbox_id;
	UPDATE accounts SET used_bytes = used_bytes - OLD.size
	WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;

CREATE TRIGGER messages_del_blob AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = OLD.blob_id) BEGIN
	INSERT OR IGNORE INTO dead_files(name)
		SELECT file FROM blobs WHERE id = OLD.blob_id AND file IS NOT NULL;
	DELETE FROM texts WHERE blob_id = OLD.blob_id;
	DELETE FROM blobs WHERE id = OLD.blob_id;
END;

CREATE TRIGGER messages_flags AFTER UPDATE OF flags ON messages
WHEN OLD.flags != NEW.flags BEGIN
	UPDATE mailboxes SET
		unseen = unseen + ((NEW.flags & 1) = 0) - ((OLD.flags & 1) = 0),
		deleted = deleted + ((NEW.flags & 8) != 0) - ((OLD.flags & 8) != 0)
	WHERE id = NEW.mailbox_id;
END;
`,

	// 2: messages clustered by (mailbox_id, uid): a range of UIDs is one
	// B-tree walk instead of an index walk plus a lookup per row (2-3x
	// faster scans of big mailboxes). Message IDs now come from a
	// counter in meta.
	`
CREATE TABLE messages_new(
	mailbox_id    INTEGER NOT NULL,
	uid           INTEGER NOT NULL,
	id            INTEGER NOT NULL,
	modseq        INTEGER NOT NULL,
	flags         INTEGER NOT NULL,
	keywords      TEXT NOT NULL DEFAULT '',
	internal_date INTEGER NOT NULL,
	internal_tz   INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	blob_id       INTEGER NOT NULL,
	PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
INSERT INTO messages_new(mailbox_id, uid, id, modseq, flags, keywords, internal_date, internal_tz, size, blob_id)
	SELECT mailbox_id, uid, id, modseq, flags, keywords, internal_date, internal_tz, size, blob_id FROM messages;
INSERT INTO meta(key, value) VALUES('next_message_id', max(
	coalesce((SELECT max(id) FROM messages), 0),
	coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0)) + 1);
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_blob ON messages(blob_id);

-- Counters are kept by triggers so that no code path can forget one.
CREATE TRIGGER messages_ins AFTER INSERT ON messages BEGIN
	UPDATE mailboxes SET messages = messages + 1,
		unseen = unseen + ((NEW.flags & 1) = 0),
		deleted = deleted + ((NEW.flags & 8) != 0),
		size = size + NEW.size
	WHERE id = NEW.mailbox_id;
	UPDATE accounts SET used_bytes = used_bytes + NEW.size
	WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;

CREATE TRIGGER messages_del AFTER DELETE ON messages BEGIN
	UPDATE mailboxes SET messages = messages - 1,
		unseen = unseen - ((OLD.flags & 1) = 0),
		deleted = deleted - ((OLD.flags & 8) != 0),
		size = size - OLD.size
	WHERE id = OLD.mailbox_id;
	UPDATE accounts SET used_bytes = used_bytes - OLD.size
	WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;

CREATE TRIGGER messages_del_blob AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = OLD.blob_id) BEGIN
	INSERT OR IGNORE INTO dead_files(name)
		SELECT file FROM blobs WHERE id = OLD.blob_id AND file IS NOT NULL;
	DELETE FROM texts WHERE blob_id = OLD.blob_id;
	DELETE FROM blobs WHERE id = OLD.blob_id;
END;

CREATE TRIGGER messages_flags AFTER UPDATE OF flags ON messages
WHEN OLD.flags != NEW.flags BEGIN
	UPDATE mailboxes SET
		unseen = unseen + ((NEW.flags & 1) = 0) - ((OLD.flags & 1) = 0),
		deleted = deleted + ((NEW.flags & 8) != 0) - ((OLD.flags & 8) != 0)
	WHERE id = NEW.mailbox_id;
END;
`,

	// 3: parsed metadata in its own table. In blobs it sat after the
	// inline body, so reading it walked the body's overflow pages; FETCH
	// ENVELOPE of a big mailbox reads only this.
	`
CREATE TABLE infos(
	blob_id INTEGER PRIMARY KEY,
	info    BLOB NOT NULL
);
INSERT INTO infos(blob_id, info) SELECT id, info FROM blobs;
ALTER TABLE blobs DROP COLUMN info;
DROP TRIGGER messages_del_blob;
CREATE TRIGGER messages_del_blob AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = OLD.blob_id) BEGIN
	INSERT OR IGNORE INTO dead_files(name)
		SELECT file FROM blobs WHERE id = OLD.blob_id AND file IS NOT NULL;
	DELETE FROM texts WHERE blob_id = OLD.blob_id;
	DELETE FROM infos WHERE blob_id = OLD.blob_id;
	DELETE FROM blobs WHERE id = OLD.blob_id;
END;
`,

	// 4: a trigram index over the folded texts, partitioned by account,
	// filled in the background from a queue (textindex.go explains the
	// design). The prep step (prepTextIndex) first makes every stored text
	// valid UTF-8 without NUL, as foldText now does. The DROPs make the
	// migration safe to re-run on a store rewound by hand (tests do that).
	`
DROP TRIGGER IF EXISTS textidx_ins;
DROP TRIGGER IF EXISTS textidx_del;
DROP TABLE IF EXISTS textidx;
DROP TABLE IF EXISTS textq;
CREATE VIRTUAL TABLE textidx USING fts5(header, body,
	tokenize = 'trigram case_sensitive 1', content = '', contentless_delete = 1);

-- Rows (account << 40 | blob) waiting to enter textidx.
CREATE TABLE textq(key INTEGER PRIMARY KEY);

-- A message queues its body's text for its account's part of the index
-- unless another message of the same account already did (copies and
-- moves within an account share the row).
CREATE TRIGGER textidx_ins AFTER INSERT ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
	WHERE m.blob_id = NEW.blob_id
	AND b.account_id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id)
	AND (m.mailbox_id != NEW.mailbox_id OR m.uid != NEW.uid)) BEGIN
	INSERT OR IGNORE INTO textq(key)
		VALUES(((SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id) << 40) | NEW.blob_id);
END;

-- The last message of an account with a body takes the body's row out of
-- the queue or the index, in the same transaction.
CREATE TRIGGER textidx_del AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
	WHERE m.blob_id = OLD.blob_id
	AND b.account_id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id)) BEGIN
	DELETE FROM textidx WHERE rowid = ((SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id) << 40) | OLD.blob_id
		AND NOT EXISTS (SELECT 1 FROM textq WHERE key = ((SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id) << 40) | OLD.blob_id);
	DELETE FROM textq WHERE key = ((SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id) << 40) | OLD.blob_id;
END;

INSERT INTO textq(key)
	SELECT DISTINCT (b.account_id << 40) | m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id;
`,

	// 5: texts too large to index in one short write transaction stay in
	// the queue for good, marked big, and searches scan them
	// (textindex.go, indexMaxTextBytes). The partial index lets the
	// indexer skip them without reading them again.
	`
ALTER TABLE textq ADD COLUMN big INTEGER NOT NULL DEFAULT 0;
CREATE INDEX textq_small ON textq(key) WHERE big = 0;
`,
}

// migrationPrep holds Go steps that run inside a migration's transaction
// before its SQL, keyed by the migration's number (1-based).
var migrationPrep = map[int]func(context.Context, *sql.Tx) error{
	4: prepTextIndex,
}

// migrate brings the schema up to date, one transaction per migration.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	for {
		var v int
		err := db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		if err == sql.ErrNoRows {
			if _, err := db.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES(0)`); err != nil {
				return fmt.Errorf("schema: %w", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this program (%d)", v, len(migrations))
		}
		if v == len(migrations) {
			return nil
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if prep := migrationPrep[v+1]; prep != nil {
			if err := prep(ctx, tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("schema migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.Exec(migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("schema migration %d: %w", v+1, err)
		}
		if v == 0 {
			// UIDVALIDITY values start at the creation time so that a store
			// recreated from scratch does not repeat an old value.
			if _, err := tx.Exec(`INSERT INTO meta(key, value) VALUES('next_uidvalidity', ?)`, time.Now().Unix()&0x7fffffff); err != nil {
				tx.Rollback()
				return fmt.Errorf("schema migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.Exec(`UPDATE schema_version SET version = ?`, v+1); err != nil {
			tx.Rollback()
			return fmt.Errorf("schema migration %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("schema migration %d: %w", v+1, err)
		}
	}
}
