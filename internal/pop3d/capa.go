package pop3d

import (
	"context"
	"crypto/tls"
	"strconv"
	"strings"
	"time"
)

// cmdCAPA is RFC 2449 §5 CAPA. The list depends on the state and on
// whether the connection is encrypted; every capability listed works.
func (c *conn) cmdCAPA(cmd command) error {
	if len(cmd.Args) != 0 {
		c.badCommand("CAPA takes no arguments")
		return nil
	}
	auth := c.state == stateAuthorization
	c.reply("+OK capability list follows")
	c.reply("TOP")  // RFC 2449 §6.1
	c.reply("UIDL") // RFC 2449 §6.2 (RFC 1939 §7)
	if auth && c.plaintextOK() {
		c.reply("USER")                                       // RFC 2449 §6.3
		c.reply("SASL %s", strings.Join(saslMechanisms, " ")) // RFC 2449 §6.3, RFC 5034
	}
	c.reply("RESP-CODES")              // RFC 2449 §6.4
	c.reply("AUTH-RESP-CODE")          // RFC 3206 §3
	c.reply("PIPELINING")              // RFC 2449 §6.6
	c.reply("EXPIRE %s", c.srv.expire) // RFC 2449 §6.7
	if d := c.srv.opts.LoginDelay; d > 0 {
		c.reply("LOGIN-DELAY %d", int((d+999_999_999)/1e9)) // RFC 2449 §6.8, whole seconds rounded up
	}
	if auth && c.stlsOffered() {
		c.reply("STLS") // RFC 2595 §4
	}
	c.reply("IMPLEMENTATION Skrytka") // RFC 2449 §6.9
	c.reply(".")
	return nil
}

func (c *conn) stlsOffered() bool {
	return c.srv.opts.TLSConfig != nil && !c.isTLS
}

// cmdSTLS is RFC 2595 §4 STLS. After "+OK" the TLS handshake starts on the
// raw socket; whatever the client pipelined after STLS in plaintext is
// thrown away with the old read buffer, so it cannot be taken as having
// come over TLS (the CVE-2011-0411 class of attacks). The session restarts
// from the beginning of AUTHORIZATION.
func (c *conn) cmdSTLS(cmd command) error {
	if len(cmd.Args) != 0 {
		c.badCommand("STLS takes no arguments")
		return nil
	}
	if c.isTLS {
		c.badCommand("TLS is already active")
		return nil
	}
	if c.srv.opts.TLSConfig == nil {
		c.badCommand("STLS is not available")
		return nil
	}
	c.reply("+OK begin TLS negotiation")
	if err := c.bw.Flush(); err != nil {
		return err
	}
	c.mu.Lock()
	raw := c.nc
	tc := tls.Server(raw, c.srv.opts.TLSConfig)
	c.nc = tc
	c.mu.Unlock()
	d := c.handshakeTimeout()
	raw.SetReadDeadline(time.Now().Add(d))
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.lr = newLineReader(tc, c.srv.opts.MaxLineBytes) // drops buffered plaintext
	c.isTLS = true
	c.user = ""
	c.log.Debug("tls started", "version", strconv.Itoa(int(tc.ConnectionState().Version)))
	return nil
}

// handshakeTimeout bounds a TLS handshake: it happens before login, so
// AuthTimeout applies when it is shorter.
func (c *conn) handshakeTimeout() time.Duration {
	return min(tlsHandshakeTimeout, c.srv.opts.AuthTimeout)
}
