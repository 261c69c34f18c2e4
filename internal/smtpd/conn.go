package smtpd

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skrytka/skrytka/internal/listen"
)

// listener turns each accepted *listen.Conn into a *conn tracked by the
// Server.
type listener struct {
	net.Listener
	srv   *Server
	proto string
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.srv.newConn(c, l.proto), nil
}

// conn wraps one accepted connection (a *listen.Conn, which applies the
// per-read and per-write timeouts). On top it enforces the whole-session
// cap, ends idle sessions on Shutdown, and ends a session that made too
// many errors. It sits below any *tls.Conn.
type conn struct {
	net.Conn
	lc     *listen.Conn // nil if the listener was not a Limiter's
	srv    *Server
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc
	log    *slog.Logger
	timer  *time.Timer

	errors  atomic.Int32
	inData  atomic.Bool // reading or delivering a message: not idle
	stop    atomic.Bool // Shutdown: end the session at its next idle read
	kill    atomic.Bool // too many errors: the next read sees EOF
	expired atomic.Bool // SessionTimeout reached
	once    sync.Once
}

func (s *Server) newConn(c net.Conn, proto string) *conn {
	cn := &conn{Conn: c, srv: s}
	cn.ctx, cn.cancel = context.WithCancel(s.baseCtx)
	cn.log = s.log.With("remote", c.RemoteAddr().String())
	if lc, ok := c.(*listen.Conn); ok {
		cn.lc = lc
		lc.SetReadTimeout(s.opts.CommandTimeout)
		lc.SetWriteTimeout(s.opts.WriteTimeout)
		cn.log = s.log.With("cid", lc.ID(), "remote", c.RemoteAddr().String())
	}
	cn.timer = time.AfterFunc(s.opts.SessionTimeout, func() {
		cn.expired.Store(true)
		cn.Conn.SetReadDeadline(time.Now()) // wake a blocked read
	})
	s.mu.Lock()
	s.conns[cn] = struct{}{}
	stopping := s.shutdown
	s.mu.Unlock()
	if stopping {
		cn.stop.Store(true)
	}
	return cn
}

// connOf finds our *conn under a go-smtp connection's net.Conn.
func connOf(c net.Conn) *conn {
	for {
		switch v := c.(type) {
		case *conn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

func (c *conn) Read(p []byte) (int, error) {
	if c.kill.Load() {
		return 0, io.EOF
	}
	// A timeout error makes go-smtp answer 421 4.4.2 and close.
	if c.expired.Load() || c.stop.Load() && !c.inData.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	return c.Conn.Read(p)
}

// stopIdle asks the session to end: at once if it is waiting for a
// command, after its current message otherwise.
func (c *conn) stopIdle() {
	c.stop.Store(true)
	if !c.inData.Load() {
		c.Conn.SetReadDeadline(time.Now())
	}
}

// countError records a rejected command; it reports whether the session
// has now made more than MaxErrors and must end.
func (c *conn) countError() bool {
	max := c.srv.opts.MaxErrors
	if max < 0 {
		return false
	}
	if int(c.errors.Add(1)) > max {
		c.kill.Store(true)
		return true
	}
	return false
}

func (c *conn) Close() error {
	var err error
	c.once.Do(func() {
		c.timer.Stop()
		c.cancel()
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}
