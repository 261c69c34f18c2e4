package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/skrytka/skrytka/internal/queue"
	"github.com/skrytka/skrytka/internal/store"
)

// SocketName is the admin socket of a running server, under data_dir. The
// embedded store allows one process at a time, so `skrytka user ...`
// sends its request through this socket while the server runs. The
// socket is mode 0600 in a 0700 directory: only the server's own user
// can use it, as with the data files themselves.
const SocketName = "admin.sock"

// Limits of the socket protocol.
const (
	maxRequestBytes = 64 << 10
	socketTimeout   = 30 * time.Second
)

// Request is one admin operation, sent as one JSON line.
type Request struct {
	// Op: "add", "passwd", "del", "list", "policy", "quota", or
	// "queue-list", "queue-retry", "queue-drop".
	Op       string    `json:"op"`
	Address  string    `json:"address,omitempty"`
	Password string    `json:"password,omitempty"`
	Policy   string    `json:"policy,omitempty"`
	Quota    int64     `json:"quota,omitempty"` // bytes; 0: no limit
	QueueID  store.UID `json:"queue_id,omitempty"`
}

// Response answers a Request.
type Response struct {
	Error string `json:"error,omitempty"`
	// Kind classifies Error: "exists", "notfound", "bad" (the caller's
	// input) or "" (a server fault).
	Kind    string        `json:"kind,omitempty"`
	Users   []UserInfo    `json:"users,omitempty"`
	Entries []queue.Entry `json:"entries,omitempty"`
}

// SocketServer serves admin requests on a unix socket.
type SocketServer struct {
	Store   store.Store
	Domains []string
	Queue   *queue.Queue // nil: queue requests fail
	Logger  *slog.Logger

	ln   net.Listener
	wg   sync.WaitGroup
	path string
}

// ListenSocket creates dataDir/admin.sock (replacing a stale one) and
// serves it until Close.
func (s *SocketServer) ListenSocket(dataDir string) error {
	s.path = filepath.Join(dataDir, SocketName)
	os.Remove(s.path) // a stale socket from a crash; the store lock proves no server runs
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(s.path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("admin socket: %w", err)
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.handle(c)
			}()
		}
	}()
	return nil
}

// Close stops serving, waits for requests in progress and removes the
// socket file.
func (s *SocketServer) Close() error {
	if s.ln == nil {
		return nil
	}
	err := s.ln.Close()
	s.wg.Wait()
	os.Remove(s.path)
	return err
}

func (s *SocketServer) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(socketTimeout))
	line, err := bufio.NewReader(&limitedReader{c, maxRequestBytes}).ReadBytes('\n')
	if err != nil {
		return
	}
	var req Request
	var resp Response
	if err := json.Unmarshal(line, &req); err != nil {
		resp = Response{Error: "malformed request", Kind: "bad"}
	} else {
		resp = s.do(req)
	}
	if s.Logger != nil {
		s.Logger.Info("admin request", "op", req.Op, "user", req.Address, "err", resp.Error)
	}
	b, _ := json.Marshal(resp)
	c.Write(append(b, '\n'))
}

func (s *SocketServer) do(req Request) Response {
	ctx, cancel := context.WithTimeout(context.Background(), socketTimeout)
	defer cancel()
	var err error
	var users []UserInfo
	var entries []queue.Entry
	if req.Op == "queue-list" || req.Op == "queue-retry" || req.Op == "queue-drop" {
		if s.Queue == nil {
			return Response{Error: "this server has no outbound queue"}
		}
	}
	switch req.Op {
	case "queue-list":
		entries, err = s.Queue.List(ctx)
	case "queue-retry":
		err = s.Queue.Retry(ctx, req.QueueID)
	case "queue-drop":
		err = s.Queue.Drop(ctx, req.QueueID)
	case "add":
		_, err = AddUser(ctx, s.Store, req.Address, req.Password, s.Domains)
	case "passwd":
		err = SetPassword(ctx, s.Store, req.Address, req.Password)
	case "del":
		err = DeleteUser(ctx, s.Store, req.Address)
	case "list":
		users, err = ListUsers(ctx, s.Store)
	case "policy":
		err = SetDownloadPolicy(ctx, s.Store, req.Address, req.Policy)
	case "quota":
		if req.Quota < 0 {
			return Response{Error: "negative quota", Kind: "bad"}
		}
		err = SetQuota(ctx, s.Store, req.Address, req.Quota)
	default:
		return Response{Error: fmt.Sprintf("unknown op %q", req.Op), Kind: "bad"}
	}
	if err != nil {
		return Response{Error: err.Error(), Kind: errorKind(err)}
	}
	return Response{Users: users, Entries: entries}
}

func errorKind(err error) string {
	switch {
	case errors.Is(err, store.ErrExists):
		return "exists"
	case errors.Is(err, store.ErrNotFound):
		return "notfound"
	case errors.Is(err, ErrBadAddress), errors.Is(err, ErrBadPassword), errors.Is(err, ErrBadPolicy):
		return "bad"
	}
	return ""
}

// SocketError is an error answered by a running server; Kind as in
// Response. It matches store.ErrExists, store.ErrNotFound, ErrBadAddress
// or ErrBadPassword under errors.Is where Kind says so.
type SocketError struct{ Msg, Kind string }

func (e *SocketError) Error() string { return e.Msg }

// Is maps Kind to the sentinels callers test for.
func (e *SocketError) Is(target error) bool {
	switch e.Kind {
	case "exists":
		return target == store.ErrExists
	case "notfound":
		return target == store.ErrNotFound
	case "bad":
		return target == ErrBadAddress || target == ErrBadPassword || target == ErrBadPolicy
	}
	return false
}

// CallSocket sends req to the server running on dataDir.
func CallSocket(dataDir string, req Request) (Response, error) {
	c, err := net.DialTimeout("unix", filepath.Join(dataDir, SocketName), 5*time.Second)
	if err != nil {
		return Response{}, fmt.Errorf("admin socket: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(socketTimeout + 5*time.Second))
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return Response{}, fmt.Errorf("admin socket: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return Response{}, fmt.Errorf("admin socket: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("admin socket: %w", err)
	}
	if resp.Error != "" {
		return resp, &SocketError{Msg: resp.Error, Kind: resp.Kind}
	}
	return resp, nil
}

type limitedReader struct {
	c net.Conn
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request too long")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= n
	return n, err
}
