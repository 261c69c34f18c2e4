// Package listen is the listener plumbing every Skrytka protocol server
// shares: connection caps (in total and per client address, with trusted
// networks exempt), a connection wrapper that counts bytes, applies
// per-read and per-write timeouts and logs one line when a connection opens
// and one when it closes, an accept loop that backs off on temporary
// errors, and the TLS configuration with its certificate source (files
// reloaded on SIGHUP, or a self-signed certificate generated once).
//
// It depends on no other Skrytka package and knows no wire protocol:
// servers pass a RejectFunc to say "too busy" in their own words.
//
// Invariants: every accepted connection that was counted against a cap is
// released exactly once, when it is closed; the close line is logged
// exactly once; no log line carries anything a client sent.
package listen

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Default caps, used when a Limiter field is zero.
const (
	DefaultMaxConnections      = 2000
	DefaultMaxConnectionsPerIP = 20
	// rejectWriteTimeout bounds the time spent telling a refused client why.
	rejectWriteTimeout = 5 * time.Second
)

// DefaultTrusted are the networks exempt from per-address caps unless a
// Limiter says otherwise: loopback, where a local proxy and load tests
// come from.
var DefaultTrusted = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// Limiter caps and numbers connections over any number of listeners. One
// Limiter is shared by all listeners of a process. The zero value is not
// ready: set the fields before the first Listener call and don't change
// them afterwards.
type Limiter struct {
	// MaxTotal caps open connections over all listeners. 0 means
	// DefaultMaxConnections.
	MaxTotal int
	// MaxPerIP caps open connections from one IPv4 address or one IPv6
	// /64. 0 means DefaultMaxConnectionsPerIP.
	MaxPerIP int
	// Trusted networks are exempt from MaxPerIP (not from MaxTotal).
	// nil means DefaultTrusted; an empty non-nil slice trusts nobody.
	Trusted []netip.Prefix
	// Logger receives the connection open/close lines. nil: slog.Default().
	Logger *slog.Logger

	nextID atomic.Uint64
	mu     sync.Mutex
	total  int
	perIP  map[netip.Prefix]int
}

// Reason says why a connection was refused.
type Reason string

const (
	TooManyTotal  Reason = "too many connections"
	TooManyFromIP Reason = "too many connections from your address"
)

// RejectFunc writes a protocol-specific "try later" reply (e.g. SMTP 421,
// IMAP "* BYE", POP3 "-ERR [SYS/TEMP]") to a refused connection. The
// connection is closed afterwards; a write deadline is already set.
type RejectFunc func(c net.Conn, why Reason)

// Open reports the number of open connections.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *Limiter) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

// ipKey is the per-address bucket: the address itself for IPv4, its /64
// for IPv6 (one customer usually holds a whole /64).
func ipKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

func (l *Limiter) trusted(a netip.Addr) bool {
	nets := l.Trusted
	if nets == nil {
		nets = DefaultTrusted
	}
	a = a.Unmap()
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// acquire counts a new connection from a; it returns "" when allowed.
func (l *Limiter) acquire(a netip.Addr) Reason {
	maxTotal, maxIP := l.MaxTotal, l.MaxPerIP
	if maxTotal <= 0 {
		maxTotal = DefaultMaxConnections
	}
	if maxIP <= 0 {
		maxIP = DefaultMaxConnectionsPerIP
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= maxTotal {
		return TooManyTotal
	}
	if a.IsValid() && !l.trusted(a) {
		k := ipKey(a)
		if l.perIP[k] >= maxIP {
			return TooManyFromIP
		}
		if l.perIP == nil {
			l.perIP = make(map[netip.Prefix]int)
		}
		l.perIP[k]++
	}
	l.total++
	return ""
}

func (l *Limiter) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if a.IsValid() && !l.trusted(a) {
		k := ipKey(a)
		if l.perIP[k] <= 1 {
			delete(l.perIP, k)
		} else {
			l.perIP[k]--
		}
	}
}

// Listener wraps ln so that Accept returns *Conn values counted against
// l's caps and logged under proto (e.g. "imap", "imaps"). Connections over
// a cap are handed to reject (nil: closed silently) in their own goroutine
// and never returned by Accept.
func (l *Limiter) Listener(ln net.Listener, proto string, reject RejectFunc) net.Listener {
	return &listener{Listener: ln, lim: l, proto: proto, reject: reject}
}

type listener struct {
	net.Listener
	lim    *Limiter
	proto  string
	reject RejectFunc
}

func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		if why := ln.lim.acquire(addr); why != "" {
			ln.lim.logger().Info("conn refused", "proto", ln.proto, "remote", c.RemoteAddr().String(), "err", string(why))
			go func() {
				if ln.reject != nil {
					_ = c.SetWriteDeadline(time.Now().Add(rejectWriteTimeout))
					ln.reject(c, why)
				}
				_ = c.Close()
			}()
			continue
		}
		lc := &Conn{Conn: c, lim: ln.lim, addr: addr, proto: ln.proto, start: time.Now()}
		lc.id = ln.lim.nextID.Add(1)
		ln.lim.logger().Info("conn open", "cid", lc.id, "proto", ln.proto, "remote", c.RemoteAddr().String())
		return lc, nil
	}
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// Serve accepts connections from ln and runs handle for each in its own
// goroutine until ln is closed. Temporary accept errors (such as running
// out of file descriptors) are retried with a backoff from 5 ms to 1 s.
// It returns the error that ended the loop; net.ErrClosed when ln was
// closed.
func Serve(ln net.Listener, handle func(net.Conn)) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				if backoff == 0 {
					backoff = 5 * time.Millisecond
				} else if backoff *= 2; backoff > time.Second {
					backoff = time.Second
				}
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		go handle(c)
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary() && !errors.Is(err, net.ErrClosed)
}
