package smtpd

import (
	"bytes"
	"io"
	"os"
)

// spool holds one message while the MX checks it: the first spoolMemBytes
// in memory, the rest in a temporary file that is unlinked as soon as it
// is created (so nothing is left behind by a crash). It is read back as
// many times as needed with Reader.
type spool struct {
	dir  string
	mem  bytes.Buffer
	file *os.File
	size int64
}

func (s *spool) Write(p []byte) (int, error) {
	s.size += int64(len(p))
	if s.file == nil && s.mem.Len()+len(p) <= spoolMemBytes {
		return s.mem.Write(p)
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "skrytka-spool-*")
		if err != nil {
			return 0, err
		}
		os.Remove(f.Name())
		s.file = f
	}
	return s.file.Write(p)
}

// Reader returns a reader over everything written so far.
func (s *spool) Reader() io.Reader {
	r := io.Reader(bytes.NewReader(s.mem.Bytes()))
	if s.file != nil {
		r = io.MultiReader(r, io.NewSectionReader(s.file, 0, s.size-int64(s.mem.Len())))
	}
	return r
}

func (s *spool) Close() error {
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}
