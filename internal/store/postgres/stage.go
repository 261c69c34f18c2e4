package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/text/cases"

	"github.com/skrytka/skrytka/internal/mailparse"
	"github.com/skrytka/skrytka/internal/store"
)

// staged is a body written by Stage: the CRLF-normalised bytes (in
// memory up to one chunk, else in an unlinked temporary file on this node)
// plus what was parsed from them.
//
// Streaming: Stage copies the message through a 32 KiB buffer, and
// Append/Deliver copy a spilled body from the file into the BodyStore
// chunk by chunk (ChunkBytes), so a 50 MB message costs a few hundred KiB
// of heap, not 50 MB (mailparse and ExtractText read from the file too;
// the kept search text is capped by MaxTextBytes).
//
// Durability: the staged bytes are not durable and need not be: nothing
// was acknowledged yet. The body becomes durable with the commit of the
// Append or Deliver that stores it. A spill file is unlinked right after
// it is created, so a crashed node leaves nothing behind; the descriptor
// is closed at commit or by Discard (or the finalizer of os.File).
//
// Once committed, the staged body is known by its bodies row; appending it
// again shares that row.
type staged struct {
	s      *Store
	f      *os.File // large bodies; nil when in data
	data   []byte   // bodies up to one chunk
	size   int64
	info   *mailparse.Info
	parsed []byte
	header string // folded search text
	body   string

	mu        sync.Mutex
	bodyID    int64 // set once committed
	discarded bool
}

func (st *staged) Size() int64           { return st.size }
func (st *staged) Info() *mailparse.Info { return st.info }

// Discard drops the staged file. After a commit the body lives on in the
// database.
func (st *staged) Discard() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.discarded {
		return nil
	}
	st.discarded = true
	var err error
	if st.f != nil {
		err = st.f.Close()
		st.f = nil
	}
	st.data, st.header, st.body, st.parsed = nil, "", "", nil
	return err
}

// committed records that the body now lives in bodies row id; the file
// and the search text are no longer needed (Append took ownership).
func (st *staged) committed(id int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.bodyID == 0 {
		st.bodyID = id
	}
	if st.f != nil {
		st.f.Close()
		st.f = nil
	}
	st.data, st.header, st.body, st.parsed = nil, "", "", nil
}

// Stage implements store.Store. Bodies up to one chunk (ChunkBytes) stay
// in memory; larger ones spill to an unlinked temporary file.
func (s *Store) Stage(ctx context.Context, r io.Reader, maxBytes int64) (store.Staged, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	st := &staged{s: s}
	var (
		mem    bytes.Buffer
		f      *os.File
		fw     *bufio.Writer
		prevCR bool
		spill  = int64(s.opts.ChunkBytes)
	)
	fail := func(err error) (store.Staged, error) {
		if f != nil {
			f.Close()
		}
		return nil, err
	}
	bufs := stageBufs.Get().(*stageBuf)
	defer stageBufs.Put(bufs)
	defer bufs.w.Reset(nil)
	in, out := bufs.in, bufs.out[:0]
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, rerr := r.Read(in)
		if n > 0 {
			out = out[:0]
			for _, c := range in[:n] {
				if c == '\n' && !prevCR {
					out = append(out, '\r')
				}
				out = append(out, c)
				prevCR = c == '\r'
			}
			st.size += int64(len(out))
			if maxBytes > 0 && st.size > maxBytes {
				return fail(store.ErrTooLarge)
			}
			if f == nil && st.size > spill {
				var err error
				if f, err = os.CreateTemp(s.opts.TempDir, "skrytka-stage-*"); err != nil {
					return fail(fmt.Errorf("%w: stage: %v", store.ErrUnavailable, err))
				}
				os.Remove(f.Name()) // nothing is left behind by a crash
				fw = bufs.w
				fw.Reset(f)
				if _, err := fw.Write(mem.Bytes()); err != nil {
					return fail(fmt.Errorf("%w: stage: %v", store.ErrUnavailable, err))
				}
				mem = bytes.Buffer{}
			}
			var err error
			if f != nil {
				_, err = fw.Write(out)
			} else {
				_, err = mem.Write(out)
			}
			if err != nil {
				return fail(fmt.Errorf("%w: stage: %v", store.ErrUnavailable, err))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("stage: read: %w", rerr))
		}
	}
	if f != nil {
		if err := fw.Flush(); err != nil {
			return fail(fmt.Errorf("%w: stage: %v", store.ErrUnavailable, err))
		}
		st.f = f
	} else {
		st.data = mem.Bytes()
		if st.data == nil {
			st.data = []byte{}
		}
	}
	info, err := mailparse.Parse(st.reader())
	if err != nil {
		return fail(fmt.Errorf("stage: parse: %w", err))
	}
	header, body, err := mailparse.ExtractText(st.reader(), info, s.opts.MaxTextBytes)
	if err != nil {
		return fail(fmt.Errorf("stage: text: %w", err))
	}
	if st.parsed, err = info.Marshal(); err != nil {
		return fail(fmt.Errorf("stage: marshal: %w", err))
	}
	st.info = info
	st.header = foldText(header)
	st.body = foldText(body)
	return st, nil
}

// reader reads the staged bytes from the start.
func (st *staged) reader() io.Reader {
	if st.f == nil {
		return bytes.NewReader(st.data)
	}
	return bufio.NewReaderSize(io.NewSectionReader(st.f, 0, st.size), 64<<10)
}

// stageBuf holds Stage's buffers, reused between calls.
type stageBuf struct {
	in, out []byte
	w       *bufio.Writer
}

var stageBufs = sync.Pool{New: func() any {
	return &stageBuf{in: make([]byte, 32<<10), out: make([]byte, 0, 64<<10), w: bufio.NewWriterSize(nil, 64<<10)}
}}

// foldText is the case folding SearchText applies to text and needle. It
// also makes the text storable in a PostgreSQL text column (valid UTF-8,
// no NUL).
func foldText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	return cases.Fold().String(s)
}

// stagedOf checks that b is a usable body staged by this store.
func (s *Store) stagedOf(b store.Staged) (*staged, error) {
	st, ok := b.(*staged)
	if !ok || st.s != s {
		return nil, store.ErrNotStagedHere
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.discarded && st.bodyID == 0 {
		return nil, fmt.Errorf("%w: staged body was discarded", store.ErrNotFound)
	}
	return st, nil
}

// storeBody returns the bodies row of st, inserting it (with zero
// references) and writing the bytes to the BodyStore the first time. A
// body of one chunk in the built-in store goes in with one statement.
func (w *wtx) storeBody(st *staged) (int64, error) {
	st.mu.Lock()
	id, f, data := st.bodyID, st.f, st.data
	st.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	if f == nil && data == nil {
		return 0, fmt.Errorf("%w: staged body was discarded", store.ErrNotFound)
	}
	if _, ok := w.s.bodies.(*tableBodies); ok && f == nil {
		err := w.tx.QueryRow(w.ctx, `WITH b AS (
				INSERT INTO bodies (size, parsed, header_text, body_text) VALUES ($1, $2, $3, $4) RETURNING id),
			c AS (INSERT INTO body_chunks (body_id, seq, data) SELECT id, 0, $5 FROM b)
			SELECT id FROM b`, st.size, st.parsed, st.header, st.body, data).Scan(&id)
		return id, err
	}
	err := w.tx.QueryRow(w.ctx, `INSERT INTO bodies (size, parsed, header_text, body_text) VALUES ($1, $2, $3, $4) RETURNING id`,
		st.size, st.parsed, st.header, st.body).Scan(&id)
	if err != nil {
		return 0, err
	}
	var r io.Reader
	if f != nil {
		r = io.NewSectionReader(f, 0, st.size)
	} else {
		r = bytes.NewReader(data)
	}
	if err := w.s.bodies.Put(w.ctx, w.tx, id, r, st.size); err != nil {
		return 0, err
	}
	return id, nil
}
