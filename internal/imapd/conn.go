package imapd

// Implementation notes (invariants of a connection):
//
//   - serve runs on one goroutine that owns every field of conn. Commands
//     run strictly one after another; a pipelining client simply finds its
//     next command in the read buffer. So at most one command is in flight
//     and the input waiting in the kernel is bounded by the TCP window.
//   - Reads have deadlines: PreAuthTimeout or IdleTimeout to wait for a
//     command, CommandTimeout to finish its line, LiteralTimeout per
//     literal. Every write sets WriteTimeout, so a client that stops
//     reading is dropped instead of pinning memory.
//   - Responses go into a bufio.Writer and are flushed once per command
//     (after the tagged reply), before blocking on a read (continuation
//     requests, IDLE) and when the buffer fills while streaming a body.
//   - Nothing is written while a store call runs: results are copied out of
//     store callbacks first.
//   - Pending changes of the selected mailbox are sent just before a tagged
//     reply; EXPUNGE/VANISHED are held back during FETCH, STORE and SEARCH
//     (RFC 9051 §7.5.1) and sent with a later command.
//   - After STARTTLS the read buffer is replaced, discarding anything the
//     client pipelined in plaintext (CVE-2011-0411).
//   - A panic is recovered here only, logged with its stack, counted, and
//     ends the connection.

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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

type connState uint8

const (
	stateNotAuth connState = 1 << iota
	stateAuth
	stateSelected
	stateLogout

	stateAny = stateNotAuth | stateAuth | stateSelected
	stateIn  = stateAuth | stateSelected // authenticated
)

type conn struct {
	srv *Server
	log *slog.Logger
	ctx context.Context // cancelled when the connection ends
	end context.CancelFunc

	ncMu sync.Mutex
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	d    decoder
	out  []byte // scratch buffer for building responses

	isTLS    bool
	state    connState
	commands int // commands received
	bads     int // consecutive BAD replies
	// loginFailures counts failed LOGIN/AUTHENTICATE on this connection.
	loginFailures int

	// enabled extensions (ENABLE, RFC 5161)
	rev2             bool // IMAP4rev2 enabled
	utf8             bool // UTF8=ACCEPT or IMAP4rev2: names and strings in UTF-8
	utf8Accept       bool // UTF8=ACCEPT enabled
	condstore        bool // CONDSTORE enabled (explicitly or by a CONDSTORE command)
	qresync          bool
	condstoreEnabled bool // ENABLE CONDSTORE was answered

	acct store.Account
	sub  store.Subscription
	sel  *selected

	traceIn, traceOut *tracer // with Options.Trace

	shutdown   atomic.Bool
	shutdownCh chan struct{}
	waiting    atomic.Bool // blocked waiting for a command
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{
		srv:        s,
		nc:         nc,
		state:      stateNotAuth,
		shutdownCh: make(chan struct{}),
	}
	_, c.isTLS = nc.(*tls.Conn)
	c.ctx, c.end = context.WithCancel(s.baseCtx)
	c.log = s.log.With("cid", s.nextCID.Add(1), "remote", nc.RemoteAddr().String())
	if s.opts.Trace {
		c.traceIn = &tracer{log: c.log, dir: "C"}
		c.traceOut = &tracer{log: c.log, dir: "S"}
	}
	c.br = bufio.NewReaderSize(c.reader(), 8<<10)
	c.bw = bufio.NewWriterSize(c.writer(), 16<<10)
	c.d.c = c
	c.d.br = c.br
	return c
}

// connIO applies the write deadline to every write and reads from the
// current net.Conn (which STARTTLS replaces).
type connIO struct{ c *conn }

func (w connIO) Read(p []byte) (int, error) { return w.c.netConn().Read(p) }

func (w connIO) Write(p []byte) (int, error) {
	nc := w.c.netConn()
	nc.SetWriteDeadline(time.Now().Add(w.c.srv.opts.WriteTimeout))
	return nc.Write(p)
}

// reader and writer are the connection's byte streams, traced if asked.
func (c *conn) reader() io.Reader {
	if c.srv.opts.Trace {
		return tracedReader{connIO{c}, c.traceIn}
	}
	return connIO{c}
}

func (c *conn) writer() io.Writer {
	if c.srv.opts.Trace {
		return tracedWriter{connIO{c}, c.traceOut}
	}
	return connIO{c}
}

func (c *conn) netConn() net.Conn {
	c.ncMu.Lock()
	defer c.ncMu.Unlock()
	return c.nc
}

func (c *conn) closeNet() {
	c.ncMu.Lock()
	defer c.ncMu.Unlock()
	c.nc.Close()
}

func (c *conn) setReadDeadline(d time.Duration) {
	c.netConn().SetReadDeadline(time.Now().Add(d))
}

// requestShutdown asks the connection to say BYE and end at the next
// command boundary; an idle connection is woken at once.
func (c *conn) requestShutdown() {
	if c.shutdown.CompareAndSwap(false, true) {
		close(c.shutdownCh)
		if c.waiting.Load() {
			c.netConn().SetReadDeadline(time.Now())
		}
	}
}

func (c *conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			c.srv.panics.Add(1)
			c.log.Error("panic in connection", "err", v, "stack", string(debug.Stack()))
		}
		if c.sub != nil {
			c.sub.Close()
		}
		c.end()
		c.closeNet()
	}()
	c.log.Debug("connected", "tls", c.isTLS)
	if tc, ok := c.nc.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(c.srv.opts.PreAuthTimeout))
		if err := tc.HandshakeContext(c.ctx); err != nil {
			c.log.Debug("tls handshake failed", "err", err)
			return
		}
	}
	c.out = append(c.out[:0], "* OK [CAPABILITY "...)
	c.out = c.appendCaps(c.out)
	c.out = append(c.out, "] Skrytka IMAP ready"...)
	c.send(c.out)
	if c.flush() != nil {
		return
	}
	for c.state != stateLogout {
		if c.shutdown.Load() {
			c.sendString("* BYE server shutting down")
			c.flush()
			return
		}
		wait := c.srv.opts.IdleTimeout
		if c.state == stateNotAuth {
			wait = c.srv.opts.PreAuthTimeout
		}
		c.setReadDeadline(wait)
		c.waiting.Store(true)
		if c.shutdown.Load() {
			c.netConn().SetReadDeadline(time.Now())
		}
		_, err := c.br.Peek(1)
		c.waiting.Store(false)
		if err != nil {
			if c.shutdown.Load() {
				continue
			}
			if isTimeout(err) {
				c.sendString("* BYE autologout: idle for too long")
				c.flush()
			}
			return
		}
		c.setReadDeadline(c.srv.opts.CommandTimeout)
		if err := c.command(); err != nil {
			c.flush() // a BYE may be waiting
			if !errors.Is(err, io.EOF) && !isNetClosed(err) {
				c.log.Debug("connection ended", "err", err)
			}
			return
		}
		if c.flush() != nil {
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

func isNetClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

// command is one command being run.
type command struct {
	tag  string
	name string // upper case, "UID FETCH" for UID commands
	uid  bool
	d    *decoder
	// noExpunge holds back EXPUNGE responses (FETCH, STORE, SEARCH).
	noExpunge bool
}

type cmdSpec struct {
	fn     func(c *conn, cmd *command) error
	states connState
}

// commands maps upper-case command names to handlers.
var commands map[string]cmdSpec

func init() {
	commands = map[string]cmdSpec{
		"CAPABILITY":   {cmdCapability, stateAny},
		"NOOP":         {cmdNoop, stateAny},
		"LOGOUT":       {cmdLogout, stateAny},
		"ID":           {cmdID, stateAny},
		"ENABLE":       {cmdEnable, stateIn},
		"STARTTLS":     {cmdStartTLS, stateNotAuth},
		"LOGIN":        {cmdLogin, stateNotAuth},
		"AUTHENTICATE": {cmdAuthenticate, stateNotAuth},
		"NAMESPACE":    {cmdNamespace, stateIn},
		"GETQUOTAROOT": {cmdGetQuotaRoot, stateIn},
		"GETQUOTA":     {cmdGetQuota, stateIn},
		"SETQUOTA":     {cmdSetQuota, stateIn},
		"IDLE":         {cmdIdle, stateIn},
		"LIST":         {cmdList, stateIn},
		"LSUB":         {cmdLsub, stateIn},
		"CREATE":       {cmdCreate, stateIn},
		"DELETE":       {cmdDelete, stateIn},
		"RENAME":       {cmdRename, stateIn},
		"SUBSCRIBE":    {cmdSubscribe, stateIn},
		"UNSUBSCRIBE":  {cmdUnsubscribe, stateIn},
		"STATUS":       {cmdStatus, stateIn},
		"SELECT":       {cmdSelect, stateIn},
		"EXAMINE":      {cmdSelect, stateIn},
		"APPEND":       {cmdAppend, stateIn},
		"CLOSE":        {cmdClose, stateSelected},
		"UNSELECT":     {cmdClose, stateSelected},
		"CHECK":        {cmdCheck, stateSelected},
		"EXPUNGE":      {cmdExpunge, stateSelected},
		"FETCH":        {cmdFetch, stateSelected},
		"STORE":        {cmdStore, stateSelected},
		"COPY":         {cmdCopy, stateSelected},
		"MOVE":         {cmdCopy, stateSelected},
		"SEARCH":       {cmdSearch, stateSelected},
		"UID FETCH":    {cmdFetch, stateSelected},
		"UID STORE":    {cmdStore, stateSelected},
		"UID COPY":     {cmdCopy, stateSelected},
		"UID MOVE":     {cmdCopy, stateSelected},
		"UID SEARCH":   {cmdSearch, stateSelected},
		"SORT":         {cmdSort, stateSelected},
		"UID SORT":     {cmdSort, stateSelected},
		"UID EXPUNGE":  {cmdExpunge, stateSelected},
	}
}

// command reads and runs one command. A non-nil error ends the connection.
func (c *conn) command() error {
	d := &c.d
	d.reset()
	c.commands++
	tag := d.tag()
	var name string
	if d.err == nil {
		d.sp()
		name = strings.ToUpper(d.atom())
	}
	if d.err == nil && name == "UID" {
		d.sp()
		name = "UID " + strings.ToUpper(d.atom())
	}
	if err := d.err; err != nil {
		if !isSyntax(err) {
			return c.fatal(err)
		}
		if c.state == stateNotAuth {
			// Not IMAP at all, perhaps another protocol's client sent here
			// by a hostile page: say goodbye (cross-protocol defence).
			c.sendString("* BYE not an IMAP command")
			return errors.New("garbage before login")
		}
		if tag == "" {
			c.sendString("* BAD missing tag")
		} else {
			c.tagged(&command{tag: tag}, "BAD", "", "syntax error: "+err.Error())
		}
		return c.afterBad()
	}
	cmd := &command{tag: tag, name: name, uid: strings.HasPrefix(name, "UID "), d: d}
	spec, ok := commands[name]
	if !ok {
		if c.state == stateNotAuth && c.commands == 1 && (!looksLikeIMAP(name) || !looksLikeIMAP(strings.ToUpper(tag))) {
			c.sendString("* BYE not an IMAP command")
			return errors.New("garbage before login")
		}
		c.tagged(cmd, "BAD", "", "unknown command")
		return c.afterBad()
	}
	if spec.states&c.state == 0 {
		c.tagged(cmd, "BAD", "", "command not allowed now")
		return c.afterBad()
	}
	start := time.Now()
	err := spec.fn(c, cmd)
	if err == nil {
		c.bads = 0
		return nil
	}
	var fe *fatalError
	var se *streamError
	if errors.As(err, &fe) || errors.As(err, &se) || !isSyntax(err) && isIOError(err) {
		return c.fatal(err)
	}
	c.replyError(cmd, err)
	c.log.Debug("command failed", "cmd", name, "err", err, "dur", time.Since(start))
	if isSyntax(err) {
		return c.afterBad()
	}
	c.bads = 0
	return nil
}

// looksLikeIMAP tells an unknown command name from another protocol's
// opening words.
func looksLikeIMAP(name string) bool {
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r == ' ' || r == '-' || r >= '0' && r <= '9' || r == '.') {
			return false
		}
	}
	switch name {
	case "GET", "POST", "PUT", "HEAD", "OPTIONS", "CONNECT", "DELETE", "EHLO", "HELO", "USER", "MAIL", "QUIT":
		return false
	}
	return true
}

// afterBad discards the rest of the line and counts consecutive BADs.
func (c *conn) afterBad() error {
	c.bads++
	if !c.d.discardLine() {
		c.sendString("* BYE command line too long or broken")
		return errors.New("cannot resynchronise with client")
	}
	if c.bads >= c.srv.opts.MaxBadCommands {
		c.sendString("* BYE too many bad commands")
		return errors.New("too many bad commands")
	}
	return nil
}

// fatal reports a stream-level error and ends the connection.
func (c *conn) fatal(err error) error {
	var fe *fatalError
	if errors.As(err, &fe) {
		c.sendString("* BYE [" + fe.code + "] " + fe.msg)
		c.flush()
	} else if isTimeout(err) {
		c.sendString("* BYE timeout")
		c.flush()
	}
	return err
}

func isSyntax(err error) bool {
	var se *syntaxError
	return errors.As(err, &se)
}

// isIOError reports errors of the connection itself.
func isIOError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) || isNetClosed(err)
}

// continuation sends "+ text" and flushes.
func (c *conn) continuation(text string) error {
	c.out = append(c.out[:0], "+ "...)
	c.out = append(c.out, text...)
	c.send(c.out)
	return c.flush()
}

// send writes one response line (b without CRLF).
func (c *conn) send(b []byte) {
	c.bw.Write(b)
	c.bw.WriteString("\r\n")
}

func (c *conn) sendString(s string) {
	c.bw.WriteString(s)
	c.bw.WriteString("\r\n")
}

func (c *conn) sendf(format string, args ...any) {
	fmt.Fprintf(c.bw, format, args...)
	c.bw.WriteString("\r\n")
}

func (c *conn) flush() error { return c.bw.Flush() }

// tagged sends pending mailbox changes and then the tagged reply.
func (c *conn) tagged(cmd *command, status, code, text string) {
	if c.sel != nil && cmd.d != nil {
		c.sendUpdates(!cmd.noExpunge)
	}
	b := append(c.out[:0], cmd.tag...)
	b = append(b, ' ')
	b = append(b, status...)
	b = append(b, ' ')
	if code != "" {
		b = append(b, '[')
		b = append(b, code...)
		b = append(b, "] "...)
	}
	b = append(b, text...)
	c.out = b
	c.send(b)
}

func (c *conn) ok(cmd *command, code, text string) error {
	c.tagged(cmd, "OK", code, text)
	return nil
}
