package imapd

import (
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/listen"
)

// cmdLogin: RFC 9051 §6.2.3.
func cmdLogin(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	user := d.astring()
	d.sp()
	pass := d.astring()
	if err := d.end(); err != nil {
		return err
	}
	if !c.plaintextAllowed() {
		return no("PRIVACYREQUIRED", "LOGIN is disabled without TLS")
	}
	return c.authenticate(cmd, "", user, pass)
}

// authenticate checks credentials and moves to the authenticated state,
// replying with the capabilities in the OK code: mbsync and fetchmail read
// them only there and in the greeting.
func (c *conn) authenticate(cmd *command, authz, user, pass string) error {
	if authz != "" && !strings.EqualFold(authz, user) {
		// RFC 4616 §2: we let nobody act as someone else.
		c.loginDelay()
		return no("AUTHORIZATIONFAILED", "authorization identity refused")
	}
	if c.srv.opts.Auth == nil {
		c.loginDelay()
		return no("AUTHENTICATIONFAILED", "authentication failed")
	}
	acct, err := c.srv.opts.Auth.Authenticate(c.ctx, c.remoteIP(), user, pass)
	if errors.Is(err, auth.ErrFailed) {
		c.log.Info("login failed", "user", user)
		c.loginDelay()
		if c.loginFailures++; c.loginFailures >= maxLoginFailures {
			c.tagged(cmd, "NO", "AUTHENTICATIONFAILED", "authentication failed")
			c.sendString("* BYE too many failed logins")
			c.state = stateLogout
			return nil
		}
		return no("AUTHENTICATIONFAILED", "authentication failed")
	}
	if err != nil {
		c.log.Error("login error", "err", err)
		return no("UNAVAILABLE", "temporarily unavailable, try again")
	}
	sub, err := c.srv.opts.Store.Subscribe(c.ctx, acct.ID)
	if err != nil {
		c.log.Error("subscribe to changes", "err", err)
		return no("UNAVAILABLE", "temporarily unavailable, try again")
	}
	c.sub = sub
	c.acct = acct
	c.state = stateAuth
	c.log = c.log.With("user", acct.Address)
	listen.SetUser(c.netConn(), acct.Address)
	c.log.Info("login")
	return c.ok(cmd, c.capsCode(), "logged in")
}

func (c *conn) loginDelay() {
	if d := c.srv.opts.LoginDelay; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
		}
	}
}

func (c *conn) remoteIP() string {
	addr := c.netConn().RemoteAddr()
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return addr.String()
}

// cmdAuthenticate: RFC 9051 §6.2.2 with SASL-IR (RFC 4959). PLAIN only.
func cmdAuthenticate(c *conn, cmd *command) error {
	d := cmd.d
	d.sp()
	mech := strings.ToUpper(d.atom())
	var ir []byte
	haveIR := false
	if d.maybe(' ') {
		s := d.chars(func(b byte) bool {
			return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '+' || b == '/' || b == '='
		}, "initial response")
		haveIR = true
		if s != "=" {
			var err error
			if ir, err = base64.StdEncoding.DecodeString(s); err != nil && d.err == nil {
				d.fail("invalid base64")
			}
		} else {
			ir = []byte{}
		}
	}
	if err := d.end(); err != nil {
		return err
	}
	if mech != "PLAIN" {
		return no("CANNOT", "unsupported authentication mechanism")
	}
	if !c.plaintextAllowed() {
		return no("PRIVACYREQUIRED", "PLAIN is disabled without TLS")
	}
	var authz, user, pass string
	srv := sasl.NewPlainServer(func(identity, username, password string) error {
		authz, user, pass = identity, username, password
		return nil
	})
	resp := ir
	if !haveIR {
		resp = nil
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			return bad("", "malformed PLAIN response")
		}
		if done {
			break
		}
		b := append(c.out[:0], "+ "...)
		b = append(b, base64.StdEncoding.EncodeToString(challenge)...)
		c.out = b
		c.send(b)
		if err := c.flush(); err != nil {
			return err
		}
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line == "*" {
			return bad("", "authentication cancelled")
		}
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			return bad("", "invalid base64")
		}
	}
	return c.authenticate(cmd, authz, user, pass)
}

// readLine reads one client line (without CRLF) within MaxLineBytes.
func (c *conn) readLine() (string, error) {
	d := &c.d
	d.atLineEnd = false
	d.lineBytes = 0
	var b []byte
	for {
		ch := d.readByte()
		if d.err != nil {
			return "", d.err
		}
		if ch == '\n' {
			d.atLineEnd = true
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		b = append(b, ch)
	}
}
