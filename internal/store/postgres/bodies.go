package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skrytka/skrytka/internal/store"
)

// BodyStore keeps message bytes. A body is written once, under the id of
// its row in the bodies table, and never changed; entries share it.
//
// The built-in implementation keeps bytes in the database (body_chunks).
// An object store (S3) can implement the same interface: Put uploads the
// object before the transaction commits (so the commit never refers to a
// missing object) and ignores tx; Delete records the ids in a table
// through tx and removes the objects after commit, from a background
// sweeper, so a rolled-back transaction never loses bytes.
type BodyStore interface {
	// Put stores size octets read from r as body id. The bytes must be
	// durable once tx commits. r must be read to the end.
	Put(ctx context.Context, tx pgx.Tx, id int64, r io.Reader, size int64) error
	// Open returns a reader of body id. Reads use ctx.
	Open(ctx context.Context, id, size int64) (store.MessageReader, error)
	// Delete drops the bodies in ids as part of tx.
	Delete(ctx context.Context, tx pgx.Tx, ids []int64) error
}

// tableBodies stores bodies as bytea chunks of a fixed size in
// body_chunks, so a reader fetches only the chunks it needs and a writer
// never holds more than a chunk in memory.
type tableBodies struct {
	pool  *pgxpool.Pool
	chunk int
}

// chunkSource feeds body_chunks rows to COPY, reading one chunk at a time.
type chunkSource struct {
	id  int64
	r   io.Reader
	buf []byte
	seq int32
	n   int
	err error
}

func (c *chunkSource) Next() bool {
	if c.err != nil {
		return false
	}
	n, err := io.ReadFull(c.r, c.buf)
	if n == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			c.err = err
		}
		return false
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		c.err = err
		return false
	}
	c.n = n
	c.seq++
	return true
}

// Values hands the chunk to pgx, which encodes it before calling Next
// again, so buf can be reused.
func (c *chunkSource) Values() ([]any, error) { return []any{c.id, c.seq - 1, c.buf[:c.n]}, nil }
func (c *chunkSource) Err() error             { return c.err }

func (b *tableBodies) Put(ctx context.Context, tx pgx.Tx, id int64, r io.Reader, size int64) error {
	if size <= int64(b.chunk) {
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("%w: read staged body: %v", store.ErrUnavailable, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO body_chunks (body_id, seq, data) VALUES ($1, 0, $2)`, id, data)
		return err
	}
	// One COPY carries the whole body: allow it the statement timeout
	// plus a second per MiB, so that a large message on a slow link is not
	// cut off by a timeout meant for ordinary statements.
	if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', CASE WHEN current_setting('statement_timeout') = '0' THEN '0'
		ELSE ((extract(epoch FROM current_setting('statement_timeout')::interval) + $1) * 1000)::bigint::text END, true)`,
		size>>20); err != nil {
		return err
	}
	src := &chunkSource{id: id, r: r, buf: make([]byte, b.chunk)}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"body_chunks"}, []string{"body_id", "seq", "data"}, src)
	if err == nil && src.err != nil {
		err = src.err
	}
	return err
}

func (b *tableBodies) Delete(ctx context.Context, tx pgx.Tx, ids []int64) error {
	_, err := tx.Exec(ctx, `DELETE FROM body_chunks WHERE body_id = ANY($1)`, ids)
	return err
}

func (b *tableBodies) Open(ctx context.Context, id, size int64) (store.MessageReader, error) {
	return b.open(ctx, id, size, nil), nil
}

// open is Open with the first chunk already read (nil: not read).
func (b *tableBodies) open(ctx context.Context, id, size int64, first []byte) *chunkReader {
	r := &chunkReader{ctx: ctx, pool: b.pool, id: id, size: size, chunk: int64(b.chunk), cur: -1}
	if first != nil {
		r.cur, r.data = 0, first
	}
	return r
}

// chunkReader reads a body chunk by chunk, caching the last chunk read. It
// holds no connection between reads, so a slow client does not pin one.
type chunkReader struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	id    int64
	size  int64
	chunk int64

	mu   sync.Mutex
	cur  int64 // index of the cached chunk, -1: none
	data []byte
	off  int64 // Read position
}

func (r *chunkReader) Size() int64  { return r.size }
func (r *chunkReader) Close() error { r.mu.Lock(); r.data = nil; r.mu.Unlock(); return nil }

func (r *chunkReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	off := r.off
	r.mu.Unlock()
	n, err := r.ReadAt(p, off)
	r.mu.Lock()
	r.off += int64(n)
	r.mu.Unlock()
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *chunkReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("postgres: negative offset")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) {
		if off >= r.size {
			return n, io.EOF
		}
		idx := off / r.chunk
		if idx != r.cur {
			var data []byte
			err := r.pool.QueryRow(r.ctx, `SELECT data FROM body_chunks WHERE body_id = $1 AND seq = $2`, r.id, idx).Scan(&data)
			if err != nil {
				return n, translate(err)
			}
			r.cur, r.data = idx, data
		}
		in := off - idx*r.chunk
		if in >= int64(len(r.data)) {
			return n, fmt.Errorf("%w: body %d shorter than its size", store.ErrUnavailable, r.id)
		}
		c := copy(p[n:], r.data[in:])
		n += c
		off += int64(c)
	}
	return n, nil
}
