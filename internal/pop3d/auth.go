package pop3d

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/store"
)

// plaintextOK reports whether a password may be sent on this connection.
func (c *conn) plaintextOK() bool {
	return c.srv.opts.Plaintext.Allowed(c.remote, c.isTLS)
}

const noPlaintextText = "-ERR [AUTH] plaintext authentication is disallowed without TLS, use STLS"

// cmdUSER is RFC 1939 §7 USER name.
func (c *conn) cmdUSER(cmd command) error {
	if len(cmd.Args) != 1 {
		c.badCommand("USER takes one argument")
		return nil
	}
	if !c.plaintextOK() {
		c.bad++
		c.reply("%s", noPlaintextText)
		return nil
	}
	c.user = cmd.Args[0]
	c.reply("+OK send PASS")
	return nil
}

// cmdPASS is RFC 1939 §7 PASS string. The password is the whole rest of
// the line, spaces included.
func (c *conn) cmdPASS(cmd command) error {
	if c.user == "" {
		c.badCommand("send USER first")
		return nil
	}
	if cmd.Rest == "" {
		c.user = ""
		c.badCommand("PASS takes one argument")
		return nil
	}
	user := c.user
	c.user = ""
	c.login(user, cmd.Rest)
	return nil
}

// cmdAPOP refuses APOP: passwords are stored as argon2id hashes, so the
// server cannot compute the MD5 digest APOP needs (see the package doc).
func (c *conn) cmdAPOP(cmd command) error {
	c.badCommand("APOP is not supported, use USER/PASS or AUTH PLAIN over TLS")
	return nil
}

// saslMechanisms are offered where plaintext passwords are allowed.
var saslMechanisms = []string{auth.MechPlain, auth.MechLogin}

// cmdAUTH is RFC 5034 AUTH mechanism [initial-response]. Without an
// argument it lists the mechanisms, as many clients expect (the RFC 1734
// form). PLAIN (RFC 4616) and LOGIN work through auth.Authenticator, which
// throttles failures.
func (c *conn) cmdAUTH(cmd command) error {
	if len(cmd.Args) == 0 {
		c.reply("+OK SASL mechanisms follow")
		if c.plaintextOK() {
			for _, m := range saslMechanisms {
				c.reply("%s", m)
			}
		}
		c.reply(".")
		return nil
	}
	if len(cmd.Args) > 2 {
		c.badCommand("AUTH takes a mechanism and an optional initial response")
		return nil
	}
	if !slices.ContainsFunc(saslMechanisms, func(m string) bool { return equalFold(m, cmd.Args[0]) }) {
		c.badCommand("unsupported SASL mechanism")
		return nil
	}
	if !c.plaintextOK() {
		c.bad++
		c.reply("%s", noPlaintextText)
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, authCheckTimeout)
	defer cancel()
	server, err := c.srv.opts.Auth.NewSASLServer(ctx, cmd.Args[0], c.remoteIP())
	if err != nil {
		c.badCommand("unsupported SASL mechanism")
		return nil
	}
	var resp []byte
	if len(cmd.Args) == 2 {
		// RFC 5034 §4: "=" is an empty initial response.
		ir, ok := decodeSASL(cmd.Args[1])
		if !ok {
			c.badCommand("invalid base64 in initial response")
			return nil
		}
		resp = ir
	}
	for {
		challenge, done, err := server.Next(resp)
		if err != nil {
			c.bad++
			c.log.Info("login failed")
			c.replyError("auth", err)
			return nil
		}
		if done {
			break
		}
		// RFC 5034 §4: a continuation carries the base64 challenge.
		c.reply("+ %s", base64.StdEncoding.EncodeToString(challenge))
		if err := c.bw.Flush(); err != nil {
			return err
		}
		if !c.armRead(c.srv.opts.AuthTimeout) {
			return errors.New("shutting down")
		}
		line, err := c.lr.readLine()
		if errors.Is(err, errLineTooLong) {
			c.badCommand("SASL response too long")
			return nil
		}
		if err != nil {
			return err
		}
		if string(line) == "*" {
			// RFC 5034 §4: the client cancels.
			c.badCommand("authentication cancelled")
			return nil
		}
		r, ok := decodeSASL(string(line))
		if !ok {
			c.badCommand("invalid base64 in SASL response")
			return nil
		}
		resp = r
	}
	acct, ok := server.Account()
	if !ok {
		c.bad++
		c.replyError("auth", auth.ErrFailed)
		return nil
	}
	c.enter(ctx, acct)
	return nil
}

// decodeSASL decodes a base64 SASL response; "=" (RFC 5034 §4) and an
// empty line are the empty response.
func decodeSASL(s string) ([]byte, bool) {
	if s == "=" {
		return []byte{}, true
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// remoteIP is the client's address without the port, for throttling.
func (c *conn) remoteIP() string {
	if a, ok := c.remote.(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.remote.String())
	if err != nil {
		return c.remote.String()
	}
	return host
}

// login checks a user name and password (USER/PASS), then enters
// TRANSACTION. Failures answer -ERR with a response code (RFC 3206) and
// leave the connection in AUTHORIZATION.
func (c *conn) login(address, password string) {
	ctx, cancel := context.WithTimeout(c.ctx, authCheckTimeout)
	defer cancel()
	acct, err := c.srv.opts.Auth.Authenticate(ctx, c.remoteIP(), address, password)
	if err != nil {
		c.bad++
		c.log.Info("login failed")
		c.replyError("login", err)
		return
	}
	c.enter(ctx, acct)
}

// enter locks the maildrop of an authenticated account, takes the snapshot
// and enters TRANSACTION (RFC 1939 §4).
func (c *conn) enter(ctx context.Context, acct store.Account) {
	log := c.log.With("user", acct.Address)
	now := time.Now()
	if !c.srv.loginAllowed(acct.ID, now) {
		// RFC 2449 §8.1.1.
		log.Info("login refused: login delay")
		c.reply("-ERR [LOGIN-DELAY] minimum time between logins not reached")
		return
	}
	holder := "pop3 " + c.id + " " + c.remote.String()
	policy := accountPolicy(acct, c.srv.opts.AfterDownload, log)
	sess, err := openSession(ctx, c.srv.opts.Store, acct, holder, policy, c.srv.opts.MarkSeenOnRetr, c.srv.leaseRefresh, log)
	if err != nil {
		c.replyError("lock maildrop", err)
		return
	}
	c.srv.recordLogin(acct.ID, now)
	listen.SetUser(c.netConn(), acct.Address)
	c.sess = sess
	c.log = log
	c.state = stateTransaction
	// A bigger write buffer for the messages to come.
	if err := c.bw.Flush(); err == nil {
		c.bw = bufio.NewWriterSize(deadlineWriter{c}, writeBufferBytes)
	}
	n, size := sess.counts()
	log.Info("login", "messages", n, "policy", string(policy))
	c.reply("+OK maildrop locked and ready, %d messages (%d octets)", n, size)
}
