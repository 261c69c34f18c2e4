package listen

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is an accepted connection: it counts bytes, applies the read and
// write timeouts before every Read and Write, and logs its close. Servers
// get it from a Limiter's Listener; after a STARTTLS or below an implicit
// TLS listener it sits under a *tls.Conn (see Unwrap).
type Conn struct {
	net.Conn
	lim   *Limiter
	addr  netip.Addr
	proto string
	id    uint64
	start time.Time

	readTimeout  atomic.Int64 // time.Duration; 0: no deadline set by Conn
	writeTimeout atomic.Int64
	bytesIn      atomic.Int64
	bytesOut     atomic.Int64
	user         atomic.Pointer[string]
	closeOnce    sync.Once
	closeErr     error
}

// ID is the connection's number, unique in the process (log key "cid").
func (c *Conn) ID() uint64 { return c.id }

// Proto is the protocol name given to Listener.
func (c *Conn) Proto() string { return c.proto }

// RemoteIP is the client's address (invalid for non-TCP connections).
func (c *Conn) RemoteIP() netip.Addr { return c.addr }

// SetReadTimeout makes every later Read fail if no data arrives within d.
// 0 leaves deadlines to the caller.
func (c *Conn) SetReadTimeout(d time.Duration) { c.readTimeout.Store(int64(d)) }

// SetWriteTimeout makes every later Write fail if it cannot finish within
// d. 0 leaves deadlines to the caller.
func (c *Conn) SetWriteTimeout(d time.Duration) { c.writeTimeout.Store(int64(d)) }

// SetUser records the authenticated user for the close log line.
func (c *Conn) SetUser(user string) { c.user.Store(&user) }

// BytesIn and BytesOut report the bytes read and written so far (TLS
// records included).
func (c *Conn) BytesIn() int64  { return c.bytesIn.Load() }
func (c *Conn) BytesOut() int64 { return c.bytesOut.Load() }

func (c *Conn) Read(p []byte) (int, error) {
	if d := time.Duration(c.readTimeout.Load()); d > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(d)); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(p)
	c.bytesIn.Add(int64(n))
	return n, err
}

func (c *Conn) Write(p []byte) (int, error) {
	if d := time.Duration(c.writeTimeout.Load()); d > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(d)); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Write(p)
	c.bytesOut.Add(int64(n))
	return n, err
}

// Close closes the connection, releases its place under the caps and logs
// the close line (once, however often Close is called).
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		if c.lim == nil {
			return
		}
		c.lim.release(c.addr)
		user := ""
		if u := c.user.Load(); u != nil {
			user = *u
		}
		c.lim.logger().Info("conn close", "cid", c.id, "proto", c.proto, "remote", c.Conn.RemoteAddr().String(),
			"user", user, "dur", time.Since(c.start).Round(time.Millisecond),
			"bytes_in", c.bytesIn.Load(), "bytes_out", c.bytesOut.Load())
	})
	return c.closeErr
}

// Unwrap finds the *Conn under c, looking through *tls.Conn layers. It
// returns nil if c did not come from a Limiter's Listener.
func Unwrap(c net.Conn) *Conn {
	for {
		switch v := c.(type) {
		case *Conn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// SetUser records user on the *Conn under c, if there is one; servers
// call it after a successful login.
func SetUser(c net.Conn, user string) {
	if lc := Unwrap(c); lc != nil {
		lc.SetUser(user)
	}
}
