// Package embedded is Skrytka's default storage backend: one node, no
// external service. Metadata lives in SQLite (WAL mode, synchronous=FULL);
// message bodies live inline in SQLite up to Options.InlineMaxBytes and in
// files under dir/blobs above that.
//
// It implements store.Store and depends only on package store, mailparse
// and the SQLite driver; nothing outside cmd/ and tests imports it.
//
// Layout of dir:
//
//	skrytka.db (+ -wal, -shm)  the SQLite database
//	tmp/NAME                   staged large bodies (fsynced before any commit references them)
//	blobs/NA/NAME              committed large bodies, immutable
//	lock                       flock held while a process has the store open
//
// Invariants:
//   - All writes go through one goroutine that batches concurrent requests
//     into one transaction (group commit, see writer.go); a call returns
//     only after that transaction committed with fsync. Readers use a pool
//     of read-only connections and see committed snapshots.
//   - UIDNext and HighestModSeq only grow; the mailbox row is read and
//     updated inside the writer's transaction, so allocation needs no
//     locking. Expunged UIDs leave tombstones.
//   - Counters (Messages, Unseen, Deleted, Size, UsedBytes) are kept by SQL
//     triggers on the messages table.
//   - A body file is referenced by the database only after it was fsynced
//     with its directory; see blobs.go for why a crash never leaves an
//     orphan or loses a committed body.
//   - Changes are published to the feed after their commit, in commit order.
//
// Driver choice: DRIVER-NOTE
package embedded
