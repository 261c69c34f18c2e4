package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// connect opens an SMTP session with addr, encrypted with STARTTLS when the
// server offers it. go-smtp's client starts TLS only right after its first
// EHLO (sent as "localhost"); we repeat EHLO with our name inside TLS. A
// server without STARTTLS (or whose handshake fails) gets a second,
// plaintext connection, unless it is the smarthost, which must do TLS.
func (s *Sender) connect(ctx context.Context, host, addr, serverName string) (*smtp.Client, error) {
	dial := func() (net.Conn, error) {
		conn, err := s.opts.Dial(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", host, err)
		}
		return conn, nil
	}
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	c, err := smtp.NewClientStartTLS(conn, s.tlsConfig(serverName))
	if err == nil {
		s.setTimeouts(c)
		if err := c.Hello(s.opts.Hostname); err != nil {
			c.Close()
			return nil, fmt.Errorf("EHLO at %s: %w", host, err)
		}
		return c, nil
	}
	if errors.As(err, new(*smtp.SMTPError)) {
		return nil, fmt.Errorf("greeting from %s: %w", host, err)
	}
	if s.opts.Smarthost != "" {
		return nil, fmt.Errorf("no TLS with smarthost %s: %w", host, err)
	}
	if conn, err = dial(); err != nil {
		return nil, err
	}
	c = smtp.NewClient(conn)
	s.setTimeouts(c)
	if err := c.Hello(s.opts.Hostname); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting from %s: %w", host, err)
	}
	return c, nil
}

func (s *Sender) setTimeouts(c *smtp.Client) {
	c.CommandTimeout = s.opts.CommandTimeout
	c.SubmissionTimeout = s.opts.DataTimeout
}

// errNeeds8Bit: the message has 8-bit data and the server lacks 8BITMIME.
var errNeeds8Bit = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 3},
	Message: "8-bit message and the receiving server does not support 8BITMIME"}

// has8Bit reports whether r has a byte above 127.
func has8Bit(r io.Reader) bool {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b >= 0x80 {
				return true
			}
		}
		if err != nil {
			return false
		}
	}
}

// errNeedsUTF8: the message needs SMTPUTF8 and the server lacks it
// (RFC 6531 §3.2).
var errNeedsUTF8 = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
	Message: "Non-ASCII address and the receiving server does not support SMTPUTF8"}

// attempt runs one SMTP transaction with one server address. It returns an
// error, and no results, when that server could not be used at all or
// refused the whole transaction temporarily before any recipient was
// accepted: the caller then tries the next address. Otherwise it returns
// one result per recipient.
func (s *Sender) attempt(ctx context.Context, p *pool, host, addr string, msg Message, sig string, rcpts []string) (res []Result, err error) {
	serverName, _, err := net.SplitHostPort(host)
	if err != nil {
		serverName = host
	}
	c := p.get(addr)
	if c == nil {
		if c, err = s.connect(ctx, host, addr, serverName); err != nil {
			return nil, err
		}
	}
	reusable := false
	defer func() {
		if reusable {
			p.put(addr, c)
		} else {
			c.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if s.opts.Smarthost != "" && s.opts.SmarthostUser != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.opts.SmarthostUser, s.opts.SmarthostPassword)); err != nil {
			// Our credentials are wrong: keep the mail and retry.
			return nil, fmt.Errorf("authentication at smarthost %s: %s", host, err)
		}
	}

	fail := func(err error) []Result {
		out := make([]Result, len(rcpts))
		for i, r := range rcpts {
			out[i] = Result{Rcpt: r, Err: err, Temporary: !isPermanent(err), Host: host}
		}
		return out
	}
	mopts := &smtp.MailOptions{Size: msg.Size + int64(len(sig))}
	if needsUTF8(msg.From, rcpts) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			c.Quit()
			return fail(errNeedsUTF8), nil
		}
		mopts.UTF8 = true
	}
	// go-smtp adds BODY=8BITMIME itself when the server offers it. A
	// server without it must not get 8-bit data (RFC 6152 §3); we do not
	// convert, so such a message bounces.
	if ok, _ := c.Extension("8BITMIME"); !ok && has8Bit(io.NewSectionReader(msg.Body, 0, msg.Size)) {
		reusable = c.Reset() == nil
		return fail(errNeeds8Bit), nil
	}
	if err := c.Mail(msg.From, mopts); err != nil {
		if isPermanent(err) {
			reusable = c.Reset() == nil
			return fail(err), nil
		}
		return nil, fmt.Errorf("MAIL at %s: %w", host, err)
	}
	results := make([]Result, len(rcpts))
	var accepted []int
	for i, r := range rcpts {
		results[i] = Result{Rcpt: r, Host: host}
		if err := c.Rcpt(r, nil); err != nil {
			results[i].Err, results[i].Temporary = err, !isPermanent(err)
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		reusable = c.Reset() == nil
		return results, nil
	}
	err = func() error {
		w, err := c.Data()
		if err != nil {
			return err
		}
		body := io.MultiReader(strings.NewReader(sig), io.NewSectionReader(msg.Body, 0, msg.Size))
		if _, err := io.Copy(w, body); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}()
	for _, i := range accepted {
		results[i].Err = err
		results[i].Temporary = err != nil && !isPermanent(err)
	}
	// After a reply to the final dot the session is ready for the next
	// transaction; after an I/O error it is not.
	reusable = err == nil || errors.As(err, new(*smtp.SMTPError))
	return results, nil
}

func (s *Sender) tlsConfig(serverName string) *tls.Config {
	if s.opts.TLSConfig != nil {
		cfg := s.opts.TLSConfig.Clone()
		cfg.ServerName = serverName
		return cfg
	}
	if s.opts.Smarthost != "" {
		return &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	}
	// Opportunistic: any certificate beats plaintext (RFC 7435 §1.3).
	return &tls.Config{ServerName: serverName, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
}

func needsUTF8(from string, rcpts []string) bool {
	isASCII := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return false
			}
		}
		return true
	}
	if !isASCII(from) {
		return true
	}
	for _, r := range rcpts {
		if !isASCII(r) {
			return true
		}
	}
	return false
}
