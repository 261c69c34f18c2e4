package pop3d

// Implementation notes.
//
//   - One goroutine (serve) owns a connection and all its state: it reads a
//     command, runs it to the end and writes its reply, one at a time
//     (RFC 2449 §6.6 PIPELINING: answers go out in the order the commands
//     came in). The only other goroutine is the lease refresher of a
//     session, which serve starts at login and joins before it returns.
//   - Replies go into one buffered writer. It is flushed before the reader
//     would block (no complete line is buffered), so a pipelined batch gets
//     its answers in few packets and a lone command is never left waiting.
//   - Deadlines: before each command the read deadline is set to the
//     state's timeout (AuthTimeout before login, IdleTimeout after); every
//     write to the socket gets WriteTimeout. A command line is bounded by
//     MaxLineBytes; MaxBadCommands mistakes close the connection.
//   - The store is never called with a lock of ours held, and nothing is
//     written to the client during a store transaction: the store API has
//     no open transactions across calls.
//   - A panic in a command is recovered in serve (and only there): it is
//     logged with its stack, counted, and the connection closes without
//     UPDATE; the session's lock is still released.
//   - Before login, a first command that is not POP3 at all (an HTTP or SMTP
//     line sent to the wrong port) gets one -ERR and the connection closes,
//     which defeats cross-protocol attacks.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"
)

type connState uint8

const (
	stateAuthorization connState = iota // RFC 1939 §4
	stateTransaction                    // RFC 1939 §5
	stateDone                           // QUIT answered; close
)

// conn is one client connection.
type conn struct {
	srv    *Server
	id     string
	log    *slog.Logger
	remote net.Addr
	start  time.Time

	ctx    context.Context // cancelled when the connection ends or Close is called
	cancel context.CancelFunc

	// mu guards nc (swapped by STLS) and interrupted against interrupt,
	// which Shutdown calls from another goroutine.
	mu          sync.Mutex
	nc          net.Conn
	interrupted bool

	lr    *lineReader
	bw    *bufio.Writer
	isTLS bool

	state    connState
	user     string // from USER, waiting for PASS
	bad      int    // bad commands so far
	anyValid bool   // a POP3 command was seen (cross-protocol defence)
	sess     *session
}

func newConn(s *Server, nc net.Conn, id string) *conn {
	ctx, cancel := context.WithCancel(s.baseCtx)
	c := &conn{
		srv:    s,
		id:     id,
		remote: nc.RemoteAddr(),
		start:  time.Now(),
		ctx:    ctx,
		cancel: cancel,
		nc:     nc,
	}
	c.log = s.log.With("cid", id, "remote", c.remote.String())
	c.lr = newLineReader(nc, s.opts.MaxLineBytes)
	c.bw = bufio.NewWriterSize(deadlineWriter{c}, authWriteBufferBytes)
	return c
}

// deadlineWriter gives every write to the socket a fresh WriteTimeout.
type deadlineWriter struct{ c *conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	nc := w.c.netConn()
	nc.SetWriteDeadline(time.Now().Add(w.c.srv.opts.WriteTimeout))
	return nc.Write(p)
}

func (c *conn) netConn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

// interrupt makes a connection waiting for a command stop waiting (for
// Shutdown). A command in progress finishes first.
func (c *conn) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.interrupted = true
	c.nc.SetReadDeadline(time.Now())
}

// armRead sets the read deadline for the next command; it reports false if
// the server is shutting down.
func (c *conn) armRead(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.interrupted {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(d))
	return true
}

func (c *conn) readTimeout() time.Duration {
	if c.state == stateTransaction {
		return c.srv.opts.IdleTimeout
	}
	return c.srv.opts.AuthTimeout
}

// serve runs the connection until it ends.
func (c *conn) serve() {
	defer c.srv.removeConn(c)
	// The recover runs after finish, so that it also catches a panic in
	// finish; finish runs during a command's panic too (deferred calls do).
	defer func() {
		if r := recover(); r != nil {
			c.srv.panics.Add(1)
			c.log.Error("panic in connection", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.netConn().Close()
		}
	}()
	defer c.finish()

	if tc, ok := c.nc.(*tls.Conn); ok {
		// POP3S: the listener wrapped the socket.
		ctx, cancel := context.WithTimeout(c.ctx, c.handshakeTimeout())
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.log.Debug("tls handshake failed", "err", err)
			return
		}
		c.isTLS = true
	}
	c.log.Info("connect", "tls", c.isTLS)

	c.reply("+OK %s Skrytka POP3 server ready", c.srv.opts.Hostname)
	for c.state != stateDone {
		if !c.lr.hasLine() {
			if err := c.bw.Flush(); err != nil {
				c.log.Debug("write failed", "err", err)
				return
			}
		}
		if !c.armRead(c.readTimeout()) {
			c.goodbye("-ERR [SYS/TEMP] server shutting down, try again later")
			return
		}
		line, err := c.lr.readLine()
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.badCommand("line too long")
				if c.tooManyBad() {
					return
				}
				continue
			}
			c.readFailed(err)
			return
		}
		if err := c.command(line); err != nil {
			c.log.Debug("connection ended", "err", err)
			return
		}
		if c.tooManyBad() {
			return
		}
	}
	if err := c.bw.Flush(); err != nil {
		c.log.Debug("write failed", "err", err)
	}
}

// readFailed reacts to a failed read of a command: a shutdown, a timeout or
// the client going away.
func (c *conn) readFailed(err error) {
	c.mu.Lock()
	interrupted := c.interrupted
	c.mu.Unlock()
	var ne net.Error
	switch {
	case interrupted:
		c.goodbye("-ERR [SYS/TEMP] server shutting down, try again later")
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		// RFC 1939 §3: the autologout timer ends the session without UPDATE.
		c.log.Info("timeout", "state", c.state)
		c.goodbye("-ERR disconnected for inactivity")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Debug("client closed connection")
	default:
		c.log.Debug("read failed", "err", err)
	}
}

// goodbye writes a last line, best effort, before the connection closes.
func (c *conn) goodbye(line string) {
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	c.bw.Flush()
}

func (c *conn) tooManyBad() bool {
	if c.bad < c.srv.opts.MaxBadCommands {
		return false
	}
	c.log.Info("too many bad commands", "count", c.bad)
	c.goodbye("-ERR too many bad commands, closing connection")
	return true
}

// finish ends the session without UPDATE (unless QUIT did it already),
// releases the lock and closes the socket.
func (c *conn) finish() {
	if c.sess != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), storeTimeout)
		if err := c.sess.end(ctx); err != nil {
			c.log.Error("ending session", "err", err)
		}
		cancel()
	}
	c.cancel()
	c.netConn().Close()
	c.log.Info("disconnect", "dur", time.Since(c.start).Round(time.Millisecond))
}

// handler runs one command. It writes the reply itself; a returned error
// means the connection cannot go on (I/O failure, a stream cut short).
type handler func(c *conn, cmd command) error

// Commands by state. RFC 1939 §4 (AUTHORIZATION), §5 (TRANSACTION).
var (
	authorizationCommands = map[string]handler{
		"USER": (*conn).cmdUSER,
		"PASS": (*conn).cmdPASS,
		"APOP": (*conn).cmdAPOP,
		"AUTH": (*conn).cmdAUTH, // RFC 5034
		"STLS": (*conn).cmdSTLS, // RFC 2595 §4
		"CAPA": (*conn).cmdCAPA, // RFC 2449 §5
		"QUIT": (*conn).cmdQUIT,
	}
	transactionCommands = map[string]handler{
		"STAT": (*conn).cmdSTAT,
		"LIST": (*conn).cmdLIST,
		"RETR": (*conn).cmdRETR,
		"DELE": (*conn).cmdDELE,
		"NOOP": (*conn).cmdNOOP,
		"RSET": (*conn).cmdRSET,
		"TOP":  (*conn).cmdTOP,
		"UIDL": (*conn).cmdUIDL,
		"CAPA": (*conn).cmdCAPA,
		"QUIT": (*conn).cmdQUIT,
	}
	// otherPOP3Commands are POP3 keywords of extensions we do not offer.
	// They get -ERR, but do not count as a foreign protocol.
	otherPOP3Commands = map[string]bool{"UTF8": true, "LANG": true, "XTND": true, "LAST": true}
)

// command parses and runs one command line.
func (c *conn) command(line []byte) error {
	if len(line) == 0 {
		c.badCommand("empty command")
		return nil
	}
	cmd, err := parseCommand(line)
	if err != nil {
		c.badCommand("invalid command syntax")
		if !c.anyValid && c.state == stateAuthorization {
			c.state = stateDone
		}
		return nil
	}
	c.log.Debug("command", "cmd", cmd.Name)
	table := authorizationCommands
	if c.state == stateTransaction {
		table = transactionCommands
	}
	h, ok := table[cmd.Name]
	if !ok {
		_, inAuth := authorizationCommands[cmd.Name]
		_, inTrans := transactionCommands[cmd.Name]
		switch {
		case inAuth || inTrans:
			c.badCommand("command not valid in this state")
		case otherPOP3Commands[cmd.Name]:
			c.badCommand("command not supported")
		default:
			c.badCommand("unknown command")
			if !c.anyValid && c.state == stateAuthorization {
				// Not POP3 at all: say goodbye (cross-protocol defence).
				c.state = stateDone
			}
		}
		return nil
	}
	c.anyValid = true
	if c.state == stateTransaction && c.sess.lost.Load() {
		c.reply("-ERR [IN-USE] maildrop lock lost, closing connection")
		c.state = stateDone
		return nil
	}
	return h(c, cmd)
}

// reply writes one response line.
func (c *conn) reply(format string, args ...any) {
	fmt.Fprintf(c.bw, format, args...)
	c.bw.WriteString("\r\n")
}

// badCommand answers a client mistake and counts it.
func (c *conn) badCommand(text string) {
	c.bad++
	c.log.Debug("bad command", "err", text)
	c.bw.WriteString("-ERR ")
	c.bw.WriteString(text)
	c.bw.WriteString("\r\n")
}
