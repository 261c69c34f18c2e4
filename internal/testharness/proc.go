package testharness

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use: a subprocess's
// output copier writes while the test reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// MainWithBinary is a TestMain body for packages that run the skrytka
// binary: it builds it once into a temporary directory, sets *binary to
// its path, runs the tests and removes the directory. Use it as
// os.Exit(testharness.MainWithBinary(m, &binary)).
func MainWithBinary(m *testing.M, binary *string) int {
	dir, err := os.MkdirTemp("", "skrytka-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *binary, err = BuildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
