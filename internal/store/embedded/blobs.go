package embedded

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/skrytka/skrytka/internal/store"
)

// Body files. A large body is staged as tmp/NAME (fsynced with its
// directory), referenced by a blobs row whose file column is NAME, and after
// that row committed it is renamed to blobs/NA/NAME. So at any moment a
// referenced body is in one of those two places, and Open can repair every
// crash by looking at tmp/ alone: a file there that a row references is
// moved into place, any other is a staged body that never committed and is
// removed. Deleting a body goes through the dead_files table, filled in the
// same transaction that drops the last reference and emptied after the
// files are unlinked, so a crash never leaves an unreferenced file in
// blobs/.
const (
	tmpDir  = "tmp"
	blobDir = "blobs"
)

func (s *Store) tmpPath(name string) string { return filepath.Join(s.dir, tmpDir, name) }

func (s *Store) blobPath(name string) string {
	return filepath.Join(s.dir, blobDir, name[:2], name)
}

// placeBlob moves a committed body from tmp/ into blobs/. Losing this rename
// in a crash is harmless (recover redoes it).
func (s *Store) placeBlob(name string) {
	dst := s.blobPath(name)
	err := os.Rename(s.tmpPath(name), dst)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dst), 0o700); err == nil {
			err = os.Rename(s.tmpPath(name), dst)
		}
	}
	if err != nil {
		// The body stays readable from tmp/ and Open retries the move.
		s.log.Error("embedded: move body into place", "err", err)
	}
}

// openBlobFile opens a committed body file wherever it is.
func (s *Store) openBlobFile(name string) (*os.File, error) {
	f, err := os.Open(s.blobPath(name))
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.Open(s.tmpPath(name))
	}
	return f, err
}

// recover repairs the body files after a crash; see the comment above.
// It runs at Open, before the writer starts.
func (s *Store) recover(ctx context.Context) error {
	if err := s.unlinkDead(ctx, s.wdb); err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, tmpDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		var id int64
		err := s.wdb.QueryRowContext(ctx, `SELECT id FROM blobs WHERE file = ?`, name).Scan(&id)
		switch {
		case err == nil:
			s.placeBlob(name)
		case errors.Is(err, sql.ErrNoRows):
			if err := os.Remove(s.tmpPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

// unlinkDead removes the files listed in dead_files, then the rows.
func (s *Store) unlinkDead(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM dead_files LIMIT 1000`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		for _, p := range []string{s.blobPath(n), s.tmpPath(n)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM dead_files WHERE name = ?`, n); err != nil {
			return err
		}
	}
	return nil
}

// sweepDead unlinks dead files after a commit that created some. It runs
// from an after-commit hook and queues a write of its own, so it never
// delays an acknowledgement.
func (s *Store) sweepDead() {
	// One queued sweep at a time: it runs in the writer after every
	// commit that is already done, so it sees all their dead files.
	if !s.sweepQueued.CompareAndSwap(false, true) {
		return
	}
	go func() {
		var names []string
		if err := s.write(context.Background(), func(w *wtx) error {
			s.sweepQueued.Store(false)
			names = names[:0]
			rows, err := w.query(`SELECT name FROM dead_files LIMIT 10000`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					return err
				}
				names = append(names, n)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			for _, n := range names {
				// The file goes after the commit; if we crash in between,
				// the row is gone and the file would be an orphan, so the
				// unlink happens first, inside the op: a failed commit
				// then leaves rows for files already gone, which is
				// harmless (removal of a missing file is ignored).
				for _, p := range []string{s.blobPath(n), s.tmpPath(n)} {
					if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
						return err
					}
				}
				if _, err := w.exec(`DELETE FROM dead_files WHERE name = ?`, n); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			s.sweepQueued.Store(false)
			if !errors.Is(err, store.ErrClosed) {
				s.log.Error("embedded: remove deleted bodies", "err", err)
			}
		}
	}()
}

// insertBlob stores st's body (inline or as a file reference) in the
// transaction and returns the blob id; a body committed earlier is reused.
func (w *wtx) insertBlob(st *staged) (int64, error) {
	if id, ok := w.blobs[st]; ok {
		return id, nil // the same body twice in one call
	}
	st.mu.Lock()
	id := st.blobID
	st.mu.Unlock()
	if id != 0 {
		var n int64
		if err := w.queryRow(`SELECT id FROM blobs WHERE id = ?`, []any{id}, &n); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return 0, fmt.Errorf("%w: staged body was deleted", store.ErrNotFound)
			}
			return 0, err
		}
		return id, nil
	}
	var res sql.Result
	var err error
	if st.file != "" {
		w.op.dirSync = true
		res, err = w.exec(`INSERT INTO blobs(size, file) VALUES(?, ?)`, st.size, st.file)
	} else {
		res, err = w.exec(`INSERT INTO blobs(size, data) VALUES(?, ?)`, st.size, st.data)
	}
	if err != nil {
		return 0, err
	}
	id, err = res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if _, err := w.exec(`INSERT INTO texts(blob_id, header, body) VALUES(?, ?, ?)`, id, st.header, st.body); err != nil {
		return 0, err
	}
	if _, err := w.exec(`INSERT INTO infos(blob_id, info) VALUES(?, ?)`, id, st.infoBytes); err != nil {
		return 0, err
	}
	if w.blobs == nil {
		w.blobs = make(map[*staged]int64)
	}
	w.blobs[st] = id
	w.afterCommit(func() {
		st.committed(id)
		if st.file != "" {
			w.s.placeBlob(st.file)
		}
	})
	return id, nil
}

// messageReader reads a stored body: a file, or an inline body copied out
// of SQLite into a buffer from inlineBufs, which Close gives back. After
// Close it reads nothing (os.ErrClosed), so a buffer handed to another
// message is never read through an old reader. It does not embed
// *bytes.Reader: that would give a file-backed reader a WriteTo method
// on a nil bytes.Reader, which io.Copy would call.
type messageReader struct {
	f      *os.File
	data   bytes.Reader
	buf    *[]byte // the inline body's pooled buffer, nil for a file
	size   int64
	closed bool
}

// inlineBufs recycles the buffers of inline bodies (a RETR or FETCH of one
// message after another would otherwise allocate each body twice: once in
// the driver, once here). Buffers that grew beyond inlineBufMax are left to
// the garbage collector.
var inlineBufs = sync.Pool{New: func() any { return new([]byte) }}

const inlineBufMax = 256 << 10

// newInlineReader copies an inline body (which the driver owns) into a
// pooled buffer.
func newInlineReader(data []byte, size int64) *messageReader {
	bp := inlineBufs.Get().(*[]byte)
	*bp = append((*bp)[:0], data...)
	m := &messageReader{buf: bp, size: size}
	m.data.Reset(*bp)
	return m
}

func (m *messageReader) Read(p []byte) (int, error) {
	switch {
	case m.closed:
		return 0, os.ErrClosed
	case m.f != nil:
		return m.f.Read(p)
	}
	return m.data.Read(p)
}

func (m *messageReader) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case m.closed:
		return 0, os.ErrClosed
	case m.f != nil:
		return m.f.ReadAt(p, off)
	}
	return m.data.ReadAt(p, off)
}

func (m *messageReader) Size() int64 { return m.size }

func (m *messageReader) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	if m.f != nil {
		return m.f.Close()
	}
	if m.buf != nil {
		m.data.Reset(nil)
		if cap(*m.buf) <= inlineBufMax {
			inlineBufs.Put(m.buf)
		}
		m.buf = nil
	}
	return nil
}
