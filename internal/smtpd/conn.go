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
	// pendingSince: when the first byte arrived after our last reply
	// (unix ns; 0: none pending). dataStart/dataBytes: progress of the
	// message being read.
	pendingSince atomic.Int64
	dataStart    atomic.Int64
	dataBytes    atomic.Int64
	once         sync.Once
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
	now := time.Now()
	opts := &c.srv.opts
	wait := opts.CommandTimeout
	if c.inData.Load() {
		// Slow-loris defence during a message: an average rate floor
		// once the message has been arriving for a while.
		start := c.dataStart.Load()
		if start == 0 {
			c.dataStart.Store(now.UnixNano())
			c.dataBytes.Store(0)
		} else if el := now.Sub(time.Unix(0, start)); opts.MinDataRate > 0 && el > opts.CommandFinishTimeout &&
			float64(c.dataBytes.Load()) < float64(opts.MinDataRate)*el.Seconds() {
			c.log.Info("message arriving too slowly, closing")
			c.expired.Store(true) // sticky: the session ends
			return 0, os.ErrDeadlineExceeded
		}
	} else if since := c.pendingSince.Load(); since != 0 {
		// The client has sent part of a command we have not answered:
		// it has CommandFinishTimeout in all to finish it.
		left := opts.CommandFinishTimeout - now.Sub(time.Unix(0, since))
		if left <= 0 {
			c.log.Info("command not finished in time, closing")
			// Sticky: bufio hands go-smtp the partial line first, and
			// the reply to it must not restart the clock.
			c.expired.Store(true)
			return 0, os.ErrDeadlineExceeded
		}
		wait = min(wait, left)
	}
	if c.lc != nil {
		c.lc.SetReadTimeout(wait)
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.pendingSince.CompareAndSwap(0, now.UnixNano())
		c.dataBytes.Add(int64(n))
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		// Sticky: bufio passes a partial line on before the error, and
		// the reply to that fragment must not buy the client more time.
		c.expired.Store(true)
	}
	return n, err
}

// Write marks the end of a command: a reply has gone out.
func (c *conn) Write(p []byte) (int, error) {
	c.pendingSince.Store(0)
	return c.Conn.Write(p)
}

// startData and endData bracket the reading of one message.
func (c *conn) startData() {
	c.dataStart.Store(0)
	c.inData.Store(true)
}

func (c *conn) endData() {
	c.inData.Store(false)
	c.dataStart.Store(0)
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
