package imapd

import (
	"bufio"
	"crypto/tls"
	"time"
)

// cmdStartTLS: RFC 9051 §6.2.1.
func cmdStartTLS(c *conn, cmd *command) error {
	if err := cmd.d.end(); err != nil {
		return err
	}
	if c.isTLS {
		return bad("", "TLS is already active")
	}
	if c.srv.opts.TLSConfig == nil {
		return bad("", "STARTTLS is not available")
	}
	c.ok(cmd, "", "begin TLS negotiation now")
	if err := c.flush(); err != nil {
		return err
	}
	// Anything the client pipelined after STARTTLS arrived in plaintext and
	// must not be taken as a command (CVE-2011-0411): drop the buffer.
	if n := c.br.Buffered(); n > 0 {
		c.log.Debug("discarding plaintext pipelined after STARTTLS", "bytes", n)
	}
	tc := tls.Server(c.netConn(), c.srv.opts.TLSConfig)
	tc.SetDeadline(time.Now().Add(c.srv.opts.CommandTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return err
	}
	tc.SetDeadline(time.Time{})
	c.ncMu.Lock()
	c.nc = tc
	c.ncMu.Unlock()
	c.isTLS = true
	c.br = bufio.NewReaderSize(c.reader(), 8<<10)
	c.bw.Reset(c.writer())
	c.d.br = c.br
	return nil
}
