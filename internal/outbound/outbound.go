// Package outbound delivers mail to other domains over SMTP (RFC 5321 §5):
// it finds the domain's MX hosts (falling back to its address records),
// tries them in preference order, uses STARTTLS whenever offered
// (opportunistic TLS, RFC 7435) or a configured smarthost with
// authentication, signs each message with the sender domain's DKIM key
// (RFC 6376), and reports per recipient whether delivery succeeded or
// failed temporarily or permanently. BuildDSN writes the RFC 3464 report a
// sender gets for failures.
//
// It keeps no queue and no state between calls: the durable outbound queue
// (in the store, so that it survives restarts on both backends) decides
// when to call Deliver again. It must not depend on the store, on smtpd or
// on cmd; DNS goes through mailauth.Resolver and connections through
// Options.Dial, so tests run offline against an in-process MX on loopback.
//
// Invariants: a result is Temporary unless the remote server (or a rule
// such as a null MX) said the failure is permanent; nothing a remote
// server says is trusted beyond its reply codes.
package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/mailauth"
)

// Defaults used when an Options field is zero.
const (
	DefaultPort = "25"
	// DefaultCommandTimeout is the client's wait for each reply (RFC 5321
	// §4.5.3.2.1-4 ask for 5 minutes for the greeting, MAIL and RCPT).
	DefaultCommandTimeout = 5 * time.Minute
	// DefaultDataTimeout is the wait for the reply after the final dot
	// (RFC 5321 §4.5.3.2.6: 10 minutes).
	DefaultDataTimeout = 10 * time.Minute
	// DefaultDialTimeout bounds one connection attempt.
	DefaultDialTimeout = 30 * time.Second
)

// Options configure a Sender.
type Options struct {
	// Hostname is our EHLO name. Default "localhost".
	Hostname string
	// Resolver answers MX and address lookups. nil: net.DefaultResolver.
	Resolver mailauth.Resolver
	// Dial opens connections. nil: a net.Dialer with DefaultDialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Port is the remote SMTP port. Default "25".
	Port string
	// Smarthost ("host:port"), if set, receives all mail instead of the
	// recipients' MX hosts; STARTTLS is then required, and SmarthostUser /
	// SmarthostPassword (if set) authenticate with AUTH PLAIN.
	Smarthost                        string
	SmarthostUser, SmarthostPassword string
	// TLSConfig is used for STARTTLS (ServerName is set per host). nil:
	// opportunistic TLS that accepts any certificate, as RFC 7435 allows
	// when the alternative is no encryption at all. A smarthost's
	// certificate is always verified.
	TLSConfig *tls.Config
	// DKIM holds a signer per sender domain (lower-case). A message from a
	// domain without a key goes out unsigned.
	DKIM map[string]*dkim.SignOptions
	// CommandTimeout and DataTimeout: see the defaults.
	CommandTimeout, DataTimeout time.Duration
}

// Sender delivers messages. It is safe for concurrent use.
type Sender struct{ opts Options }

// New returns a Sender.
func New(opts Options) *Sender {
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Dial == nil {
		d := &net.Dialer{Timeout: DefaultDialTimeout}
		opts.Dial = d.DialContext
	}
	if opts.Port == "" {
		opts.Port = DefaultPort
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = DefaultCommandTimeout
	}
	if opts.DataTimeout <= 0 {
		opts.DataTimeout = DefaultDataTimeout
	}
	return &Sender{opts: opts}
}

// Result is the outcome for one recipient.
type Result struct {
	Rcpt string
	// Err is nil when the recipient's server accepted the message.
	Err error
	// Temporary: try again later (a 4xx reply, no reachable host, a DNS
	// failure). False with Err set: give up and send a DSN.
	Temporary bool
	// Host is the server that gave the answer ("" if none was reached).
	Host string
}

// SMTPError returns the remote reply behind r.Err, if there was one.
func (r Result) SMTPError() (*smtp.SMTPError, bool) {
	var se *smtp.SMTPError
	ok := errors.As(r.Err, &se)
	return se, ok
}

// Message is what Deliver sends: the envelope and the bytes (CRLF line
// endings), readable as often as needed (one attempt per host).
type Message struct {
	From  string // envelope sender; "" for the null reverse-path (DSNs)
	Rcpts []string
	Body  io.ReaderAt
	Size  int64
}

// Deliver sends msg to every recipient, grouped by domain (or all at once
// through the smarthost), and returns one Result per recipient in order.
// It opens its own connections and closes them before it returns.
func (s *Sender) Deliver(ctx context.Context, msg Message) []Result {
	b := s.NewBatch()
	defer b.Close()
	return b.Deliver(ctx, msg)
}

// Batch delivers several messages and keeps each server connection open
// between them, so that messages to one destination share a connection
// (a new transaction after RSET). Safe for concurrent use: concurrent
// deliveries to one server use separate connections.
type Batch struct {
	s *Sender
	p *pool
}

// NewBatch starts a batch; Close it when done.
func (s *Sender) NewBatch() *Batch { return &Batch{s: s, p: &pool{idle: map[string][]*smtp.Client{}}} }

// Close ends every idle connection with QUIT.
func (b *Batch) Close() { b.p.closeAll() }

// Deliver is Sender.Deliver over the batch's connections.
func (b *Batch) Deliver(ctx context.Context, msg Message) []Result {
	s := b.s
	results := make([]Result, len(msg.Rcpts))
	sig, err := s.sign(msg)
	if err != nil {
		for i, r := range msg.Rcpts {
			results[i] = Result{Rcpt: r, Err: fmt.Errorf("dkim signing: %w", err), Temporary: true}
		}
		return results
	}
	groups := map[string][]int{}
	var order []string
	for i, r := range msg.Rcpts {
		d := ""
		if s.opts.Smarthost == "" {
			d = domainOf(r)
		}
		if _, ok := groups[d]; !ok {
			order = append(order, d)
		}
		groups[d] = append(groups[d], i)
	}
	for _, d := range order {
		idx := groups[d]
		rcpts := make([]string, len(idx))
		for j, i := range idx {
			rcpts[j] = msg.Rcpts[i]
		}
		res := s.deliverDomain(ctx, b.p, d, msg, sig, rcpts)
		for j, i := range idx {
			results[i] = res[j]
		}
	}
	return results
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

// sign returns the DKIM-Signature field for msg ("" without a key).
func (s *Sender) sign(msg Message) (string, error) {
	opts := s.opts.DKIM[domainOf(msg.From)]
	if opts == nil || msg.From == "" {
		return "", nil
	}
	signer, err := dkim.NewSigner(opts)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(signer, io.NewSectionReader(msg.Body, 0, msg.Size)); err != nil {
		signer.Close()
		return "", err
	}
	if err := signer.Close(); err != nil {
		return "", err
	}
	return signer.Signature(), nil
}

// errNullMX: the domain says it accepts no mail (RFC 7505 §3).
var errNullMX = &smtp.SMTPError{Code: 556, EnhancedCode: smtp.EnhancedCode{5, 1, 10},
	Message: "Recipient domain does not accept mail (null MX)"}

// hosts returns the hosts to try for domain, best first (RFC 5321 §5.1).
func (s *Sender) hosts(ctx context.Context, domain string) ([]string, error, bool) {
	if s.opts.Smarthost != "" {
		return []string{s.opts.Smarthost}, nil, false
	}
	mxs, err := s.opts.Resolver.LookupMX(ctx, domain)
	var dnsErr *net.DNSError
	switch {
	case err == nil && len(mxs) > 0:
	case err == nil || errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		// No MX: the domain itself is the implicit MX.
		return []string{domain}, nil, false
	default:
		return nil, fmt.Errorf("MX lookup for %s: %w", domain, err), true
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, errNullMX, false
	}
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	out := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		out = append(out, strings.TrimSuffix(mx.Host, "."))
	}
	return out, nil, false
}

// deliverDomain tries each host of domain in turn until one gives a
// definitive answer for the recipients.
func (s *Sender) deliverDomain(ctx context.Context, p *pool, domain string, msg Message, sig string, rcpts []string) []Result {
	fail := func(err error, temp bool, host string) []Result {
		out := make([]Result, len(rcpts))
		for i, r := range rcpts {
			out[i] = Result{Rcpt: r, Err: err, Temporary: temp, Host: host}
		}
		return out
	}
	hosts, err, temp := s.hosts(ctx, domain)
	if err != nil {
		return fail(err, temp, "")
	}
	lastErr := errors.New("no host could be reached")
	for _, host := range hosts {
		addrs, err := s.addrs(ctx, host)
		if err != nil {
			lastErr = err
			continue
		}
		for _, addr := range addrs {
			res, err := s.attempt(ctx, p, host, addr, msg, sig, rcpts)
			if err != nil {
				// Could not talk to this address, or it failed the
				// whole transaction temporarily: try the next one.
				lastErr = err
				continue
			}
			return res
		}
	}
	return fail(lastErr, !isPermanent(lastErr), "")
}

// addrs resolves host to "ip:port" strings (or returns the smarthost).
func (s *Sender) addrs(ctx context.Context, host string) ([]string, error) {
	if s.opts.Smarthost != "" {
		return []string{host}, nil
	}
	ips, err := s.opts.Resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("address lookup for %s: %w", host, err)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.IP.String(), s.opts.Port))
	}
	return out, nil
}

func isPermanent(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code/100 == 5
}

// pool holds idle connections by server address.
type pool struct {
	mu   sync.Mutex
	idle map[string][]*smtp.Client
}

// get returns an idle connection to addr that still answers (RSET), or nil.
func (p *pool) get(addr string) *smtp.Client {
	for {
		p.mu.Lock()
		list := p.idle[addr]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		c := list[len(list)-1]
		p.idle[addr] = list[:len(list)-1]
		p.mu.Unlock()
		if c.Reset() == nil {
			return c
		}
		c.Close()
	}
}

func (p *pool) put(addr string, c *smtp.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle[addr] = append(p.idle[addr], c)
}

func (p *pool) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string][]*smtp.Client{}
	p.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			if c.Quit() != nil {
				c.Close()
			}
		}
	}
}
