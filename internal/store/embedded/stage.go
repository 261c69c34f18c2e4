package embedded

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/text/cases"

	"github.com/skrytka/skrytka/internal/mailparse"
	"github.com/skrytka/skrytka/internal/store"
)

// staged is a body written by Stage. Small bodies stay in memory until the
// transaction that stores them inline commits; large ones are in a file
// under tmp/ (fsynced before Stage returns; its directory entry before the
// commit) until the
// commit that references them, after which the writer renames them into
// blobs/. Once committed, the body is known by its blob row; appending the
// same staged body again shares that row.
type staged struct {
	s         *Store
	size      int64
	info      *mailparse.Info
	infoBytes []byte
	data      []byte // inline body, nil when in a file
	file      string // base name under tmp/ (then blobs/), "" when inline
	header    string // folded search text
	body      string

	mu        sync.Mutex
	blobID    int64 // set once committed
	discarded bool
}

func (st *staged) Size() int64           { return st.size }
func (st *staged) Info() *mailparse.Info { return st.info }

// Discard removes the staged body unless a commit already took it.
func (st *staged) Discard() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.discarded {
		return nil
	}
	st.discarded = true
	if st.blobID == 0 && st.file != "" {
		if err := os.Remove(st.s.tmpPath(st.file)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	st.data = nil
	return nil
}

// committed records that the body now lives in blob row id and drops the
// in-memory copies.
func (st *staged) committed(id int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.blobID = id
	st.data, st.header, st.body, st.infoBytes = nil, "", "", nil
}

// Stage implements store.Store.
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
		out    = make([]byte, 0, 64<<10)
		in     = make([]byte, 32<<10)
		inline = s.opts.InlineMaxBytes
	)
	fail := func(err error) (store.Staged, error) {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
		return nil, err
	}
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
			if f == nil && st.size > inline {
				var err error
				st.file, err = newBlobName()
				if err != nil {
					return fail(err)
				}
				f, err = os.OpenFile(s.tmpPath(st.file), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return fail(translate(err))
				}
				fw = bufio.NewWriterSize(f, 64<<10)
				if _, err := fw.Write(mem.Bytes()); err != nil {
					return fail(translate(err))
				}
				mem = bytes.Buffer{}
			}
			if f != nil {
				if _, err := fw.Write(out); err != nil {
					return fail(translate(err))
				}
			} else {
				mem.Write(out)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("stage: read: %w", rerr))
		}
	}
	var src io.ReadSeeker
	if f != nil {
		if err := fw.Flush(); err != nil {
			return fail(translate(err))
		}
		// The file's bytes are durable before anyone can reference it;
		// its directory entry is made durable by the writer, once per
		// batch, before the commit that references it (writer.go).
		sync := (*os.File).Sync
		if s.opts.syncFile != nil {
			sync = s.opts.syncFile
		}
		if err := sync(f); err != nil {
			return fail(translate(err))
		}
		f.Close()
		rf, err := os.Open(s.tmpPath(st.file))
		if err != nil {
			return fail(translate(err))
		}
		defer rf.Close()
		src = rf
	} else {
		st.data = mem.Bytes()
		if st.data == nil {
			st.data = []byte{}
		}
		src = bytes.NewReader(st.data)
	}
	info, err := mailparse.Parse(src)
	if err != nil {
		return fail(fmt.Errorf("stage: parse: %w", err))
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return fail(translate(err))
	}
	header, body, err := mailparse.ExtractText(src, info, s.opts.MaxTextBytes)
	if err != nil {
		return fail(fmt.Errorf("stage: text: %w", err))
	}
	st.infoBytes, err = info.Marshal()
	if err != nil {
		return fail(fmt.Errorf("stage: marshal: %w", err))
	}
	st.info = info
	st.header = foldText(header)
	st.body = foldText(body)
	return st, nil
}

// foldText is the case folding SearchText applies to both text and needle.
// It first makes the string valid UTF-8 (invalid bytes become U+FFFD) and
// drops NUL, as the PostgreSQL backend does: the trigram index reads
// characters, not bytes, and skips NUL, so only such text can be matched
// through it exactly (textindex.go).
func foldText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	return cases.Fold().String(s)
}

func newBlobName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// stagedOf checks that b is a body staged by this store.
func (s *Store) stagedOf(b store.Staged) (*staged, error) {
	st, ok := b.(*staged)
	if !ok || st.s != s {
		return nil, store.ErrNotStagedHere
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.discarded && st.blobID == 0 {
		return nil, fmt.Errorf("%w: staged body was discarded", store.ErrNotFound)
	}
	return st, nil
}
