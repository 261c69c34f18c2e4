package reliability

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/imapd"
	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/pop3d"
	"github.com/skrytka/skrytka/internal/smtpd"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
	"github.com/skrytka/skrytka/internal/store/postgres"
	"github.com/skrytka/skrytka/internal/testharness"
)

// testPass is every test account's password.
const testPass = "correct horse battery"

var (
	hashOnce sync.Once
	testHash string
	hashErr  error
)

// passHash hashes testPass once (argon2id is deliberately slow).
func passHash() (string, error) {
	hashOnce.Do(func() { testHash, hashErr = auth.HashPassword(testPass) })
	return testHash, hashErr
}

// noDNS answers every lookup with "not found" without sending a packet, so
// the MX's SPF/DKIM/DMARC checks run but never leave loopback.
type noDNS struct{}

func dnsNotFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (noDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	return nil, dnsNotFound(name)
}
func (noDNS) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return nil, dnsNotFound(name)
}
func (noDNS) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return nil, dnsNotFound(host)
}
func (noDNS) LookupAddr(_ context.Context, addr string) ([]string, error) {
	return nil, dnsNotFound(addr)
}

// logSink is a slog.Handler that counts recovered panics and errors and
// forwards records at or above Level to stderr when SKRYTKA_TEST_LOG is
// set.
type logSink struct {
	panics atomic.Int64
	errors atomic.Int64
	// auth counts the Authenticator's result lines: "ok", "fail",
	// "throttled".
	authMu sync.Mutex
	auth   map[string]int
	out    slog.Handler
	mu     sync.Mutex
	last   []string // last few error messages, for failure reports
}

func newLogSink() *logSink {
	s := &logSink{}
	if lv := os.Getenv("SKRYTKA_TEST_LOG"); lv != "" {
		var level slog.Level
		_ = level.UnmarshalText([]byte(lv))
		s.out = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	}
	return s
}

func (s *logSink) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || (s.out != nil && s.out.Enabled(ctx, l))
}

func (s *logSink) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "auth" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "result" {
				s.authMu.Lock()
				if s.auth == nil {
					s.auth = map[string]int{}
				}
				s.auth[a.Value.String()]++
				s.authMu.Unlock()
			}
			return true
		})
	}
	if r.Level >= slog.LevelError {
		s.errors.Add(1)
		if strings.Contains(r.Message, "panic") {
			s.panics.Add(1)
		}
		s.mu.Lock()
		if len(s.last) < 20 {
			var b strings.Builder
			b.WriteString(r.Message)
			r.Attrs(func(a slog.Attr) bool {
				if a.Key != "stack" {
					fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
				}
				return true
			})
			s.last = append(s.last, b.String())
		}
		s.mu.Unlock()
	}
	if s.out != nil && s.out.Enabled(ctx, r.Level) {
		return s.out.Handle(ctx, r)
	}
	return nil
}

func (s *logSink) WithAttrs(as []slog.Attr) slog.Handler { return &sinkWith{s, as} }
func (s *logSink) WithGroup(string) slog.Handler         { return s }

func (s *logSink) authResults() map[string]int {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	m := map[string]int{}
	for k, v := range s.auth {
		m[k] = v
	}
	return m
}

func (s *logSink) lastErrors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.last...)
}

// sinkWith keeps the attributes of Logger.With for the forwarded output.
type sinkWith struct {
	s  *logSink
	as []slog.Attr
}

func (w *sinkWith) Enabled(ctx context.Context, l slog.Level) bool { return w.s.Enabled(ctx, l) }
func (w *sinkWith) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(w.as...)
	return w.s.Handle(ctx, r)
}
func (w *sinkWith) WithAttrs(as []slog.Attr) slog.Handler {
	return &sinkWith{w.s, append(append([]slog.Attr(nil), w.as...), as...)}
}
func (w *sinkWith) WithGroup(string) slog.Handler { return w }

// stackOpts tunes a stack. Zero values give production defaults, except
// the IMAP LoginDelay, which is off unless set.
type stackOpts struct {
	Store    embedded.Options
	Throttle auth.Throttle
	// Trusted is used by both the Authenticator and the Limiter; nil means
	// the defaults (loopback).
	Trusted  []netip.Prefix
	MaxConns int // total cap; 0: default
	MaxPerIP int // per-address cap; 0: default
	TLS      *tls.Config
	IMAP     func(*imapd.Options)
	POP3     func(*pop3d.Options)
	SMTP     func(*smtpd.Options) // MX and LMTP alike
	// Addrs are the four listen addresses (imap, pop3, smtp, lmtp);
	// empty: 127.0.0.1:0.
	Addrs [4]string
	// OpenStore opens another backend instead of the embedded store in
	// the stack's directory.
	OpenStore func() (store.Store, error)
}

// stack is a whole Skrytka server in this process: IMAP, POP3, SMTP MX and
// LMTP over one embedded store, wired the way cmd/skrytka wires them (one
// Authenticator, one connection Limiter).
type stack struct {
	Dir   string
	Store store.Store
	Auth  *auth.Authenticator
	Lim   *listen.Limiter
	Log   *logSink

	IMAP       *imapd.Server
	POP3       *pop3d.Server
	MX, LMTP   *smtpd.Server
	IMAPAddr   string
	POP3Addr   string
	IMAPSAddr  string // implicit TLS; only with stackOpts.TLS
	POP3SAddr  string
	SMTPAddr   string
	LMTPAddr   string
	lns        []net.Listener
	serveDone  sync.WaitGroup
	closeOnce  sync.Once
	closeStore bool
}

// buildStack opens the store in dir and starts every server. It does not
// need a testing.TB, so the crash test's child process uses it too.
func buildStack(dir string, o stackOpts) (*stack, error) {
	sink := newLogSink()
	log := slog.New(sink)
	o.Store.Logger = log
	var st store.Store
	var err error
	if o.OpenStore != nil {
		st, err = o.OpenStore()
	} else {
		st, err = embedded.Open(context.Background(), dir, o.Store)
	}
	if err != nil {
		return nil, err
	}
	s := &stack{Dir: dir, Store: st, Log: sink, closeStore: true}
	s.Auth = &auth.Authenticator{Store: st, Throttle: o.Throttle, Trusted: o.Trusted, Logger: log}
	s.Lim = &listen.Limiter{MaxTotal: o.MaxConns, MaxPerIP: o.MaxPerIP, Trusted: o.Trusted, Logger: log}

	io := imapd.Options{Store: st, Auth: s.Auth, TLSConfig: o.TLS, Logger: log, LoginDelay: -1}
	if o.IMAP != nil {
		o.IMAP(&io)
	}
	po := pop3d.Options{Store: st, Auth: s.Auth, TLSConfig: o.TLS, Logger: log}
	if o.POP3 != nil {
		o.POP3(&po)
	}
	so := smtpd.Options{
		Store: st, Auth: s.Auth, TLSConfig: o.TLS, Logger: log, Limiter: s.Lim,
		Domains: []string{"localhost", "example.org"}, Resolver: noDNS{},
		SpoolDir: dir,
	}
	if o.SMTP != nil {
		o.SMTP(&so)
	}
	lo := so
	lo.Mode = smtpd.ModeLMTP
	s.IMAP, s.POP3 = imapd.New(io), pop3d.New(po)
	s.MX, s.LMTP = smtpd.New(so), smtpd.New(lo)

	addrs := o.Addrs
	for i := range addrs {
		if addrs[i] == "" {
			addrs[i] = "127.0.0.1:0"
		}
	}
	var raw [4]net.Listener
	for i, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range raw[:i] {
				l.Close()
			}
			st.Close()
			return nil, err
		}
		raw[i] = ln
		s.lns = append(s.lns, ln)
	}
	s.IMAPAddr, s.POP3Addr = raw[0].Addr().String(), raw[1].Addr().String()
	s.SMTPAddr, s.LMTPAddr = raw[2].Addr().String(), raw[3].Addr().String()
	serve := func(f func(net.Listener) error, ln net.Listener) {
		s.serveDone.Add(1)
		go func() {
			defer s.serveDone.Done()
			_ = f(ln)
		}()
	}
	serve(s.IMAP.Serve, s.Lim.Listener(raw[0], "imap", func(c net.Conn, why listen.Reason) {
		fmt.Fprintf(c, "* BYE [UNAVAILABLE] %s, try again later\r\n", why)
	}))
	serve(s.POP3.Serve, s.Lim.Listener(raw[1], "pop3", func(c net.Conn, why listen.Reason) {
		fmt.Fprintf(c, "-ERR [SYS/TEMP] %s, try again later\r\n", why)
	}))
	serve(s.MX.Serve, raw[2])
	serve(s.LMTP.Serve, raw[3])
	if o.TLS != nil {
		// Implicit TLS ports, wrapped as cmd/skrytka wraps them.
		for i, f := range []func(net.Listener) error{s.IMAP.Serve, s.POP3.Serve} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				s.Close()
				return nil, err
			}
			s.lns = append(s.lns, ln)
			if i == 0 {
				s.IMAPSAddr = ln.Addr().String()
			} else {
				s.POP3SAddr = ln.Addr().String()
			}
			serve(f, tls.NewListener(s.Lim.Listener(ln, []string{"imaps", "pop3s"}[i], nil), o.TLS))
		}
	}
	return s, nil
}

// Close stops every server and closes the store.
func (s *stack) Close() {
	s.closeOnce.Do(func() {
		s.IMAP.Close()
		s.POP3.Close()
		s.MX.Close()
		s.LMTP.Close()
		for _, ln := range s.lns {
			ln.Close()
		}
		s.serveDone.Wait()
		if s.closeStore {
			s.Store.Close()
		}
	})
}

// startStack runs a stack for the test in a fresh directory (or dir) and
// fails the test at the end if any server recovered a panic.
func startStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	return startStackIn(t, t.TempDir(), o)
}

func startStackIn(t testing.TB, dir string, o stackOpts) *stack {
	t.Helper()
	s, err := buildStack(dir, o)
	if err != nil {
		t.Fatalf("start servers: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		if n := s.Log.panics.Load() + s.MX.Panics() + s.LMTP.Panics(); n > 0 {
			t.Errorf("servers recovered %d panics: %q", n, s.Log.lastErrors())
		}
	})
	return s
}

// addUser creates an account with testPass (under a cheap hash; see
// createUser).
func (s *stack) addUser(t testing.TB, address string) store.Account {
	t.Helper()
	a, err := createUser(s.Store, address)
	if err != nil {
		t.Fatalf("create %s: %v", address, err)
	}
	return a
}

// addUserArgon creates an account whose password hash has the production
// argon2id cost, for tests where the cost of a check matters.
func (s *stack) addUserArgon(t testing.TB, address string) store.Account {
	t.Helper()
	h, err := passHash()
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Store.CreateAccount(context.Background(), address, h)
	if err != nil {
		t.Fatalf("create %s: %v", address, err)
	}
	return a
}

// createUser creates an account with testPass under a cheap hash: most
// tests are about protocols and storage, and a production-cost check per
// login (about 0.1 s, several times that under the race detector) would
// dominate them.
func createUser(st store.Store, address string) (store.Account, error) {
	return st.CreateAccount(context.Background(), address, cheapHash(testPass))
}

// cheapHash is an argon2id PHC string with 64 KiB and one pass;
// VerifyPassword honours the parameters a hash records.
func cheapHash(password string) string {
	salt := []byte("test-salt-16byte")
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	b64 := base64.RawStdEncoding
	h := fmt.Sprintf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s", argon2.Version, b64.EncodeToString(salt), b64.EncodeToString(key))
	if !auth.VerifyPassword(h, password) {
		panic("cheap hash does not verify")
	}
	return h
}

// appendMsg stores body in the named mailbox of acct directly.
func appendMsg(t testing.TB, st store.Store, acct store.Account, mailbox, body string) store.UID {
	t.Helper()
	ctx := context.Background()
	mb, err := st.Mailbox(ctx, acct.ID, mailbox)
	if err != nil {
		t.Fatalf("mailbox %s: %v", mailbox, err)
	}
	staged, err := st.Stage(ctx, strings.NewReader(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Append(ctx, acct.ID, mb.ID, []store.AppendMessage{{Body: staged}})
	if err != nil {
		t.Fatal(err)
	}
	return res.UIDs[0]
}

// wire is a small protocol client that returns errors instead of failing
// a test, for goroutines and for servers that may die under it.
type wire struct {
	c       net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

func dialWire(addr string, timeout time.Duration) (*wire, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &wire{c: c, r: bufio.NewReaderSize(c, 16<<10), timeout: timeout}, nil
}

func (w *wire) Close() error { return w.c.Close() }

// line reads one CRLF-terminated line without its CRLF.
func (w *wire) line() (string, error) {
	w.c.SetReadDeadline(time.Now().Add(w.timeout))
	s, err := w.r.ReadString('\n')
	if err != nil {
		return s, err
	}
	if !strings.HasSuffix(s, "\r\n") {
		return s, fmt.Errorf("line without CRLF: %q", s)
	}
	return s[:len(s)-2], nil
}

// send writes raw bytes.
func (w *wire) send(s string) error {
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := io.WriteString(w.c, s)
	return err
}

// until reads lines until one starts with prefix; it returns that line.
func (w *wire) until(prefix string) (string, []string, error) {
	var all []string
	for {
		s, err := w.line()
		if err != nil {
			return "", all, err
		}
		if strings.HasPrefix(s, prefix) {
			return s, all, nil
		}
		all = append(all, s)
	}
}

// reply reads an SMTP/LMTP reply (possibly multi-line) and returns its
// code and last line.
func (w *wire) reply() (int, string, error) {
	for {
		s, err := w.line()
		if err != nil {
			return 0, s, err
		}
		if len(s) < 4 {
			return 0, s, fmt.Errorf("short reply %q", s)
		}
		if s[3] == '-' {
			continue
		}
		var code int
		if _, err := fmt.Sscanf(s[:3], "%d", &code); err != nil {
			return 0, s, fmt.Errorf("bad reply %q", s)
		}
		return code, s, nil
	}
}

// smtpCmd sends one command line and reads its reply.
func (w *wire) smtpCmd(line string) (int, string, error) {
	if err := w.send(line + "\r\n"); err != nil {
		return 0, "", err
	}
	return w.reply()
}

var errReply = errors.New("unexpected reply")

// imapLogin reads the greeting and logs in.
func imapLogin(addr, user string, timeout time.Duration) (*wire, error) {
	w, err := dialWire(addr, timeout)
	if err != nil {
		return nil, err
	}
	if g, err := w.line(); err != nil || !strings.HasPrefix(g, "* OK") {
		w.Close()
		return nil, fmt.Errorf("greeting %q: %v", g, err)
	}
	if err := w.send(fmt.Sprintf("l LOGIN %s \"%s\"\r\n", user, testPass)); err != nil {
		w.Close()
		return nil, err
	}
	s, _, err := w.until("l ")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("login: %w", err)
	}
	if !strings.HasPrefix(s, "l OK") {
		w.Close()
		return nil, fmt.Errorf("login %q: %w", s, errReply)
	}
	return w, nil
}

// pop3Login reads the greeting and logs in with USER/PASS.
func pop3Login(addr, user string, timeout time.Duration) (*wire, error) {
	w, err := dialWire(addr, timeout)
	if err != nil {
		return nil, err
	}
	for _, step := range []string{"", "USER " + user, "PASS " + testPass} {
		if step != "" {
			if err := w.send(step + "\r\n"); err != nil {
				w.Close()
				return nil, err
			}
		}
		s, err := w.line()
		if err != nil || !strings.HasPrefix(s, "+OK") {
			w.Close()
			return nil, fmt.Errorf("pop3 %q: %q %v %w", step, s, err, errReply)
		}
	}
	return w, nil
}

// multiline reads a POP3 multi-line response body (after +OK) up to ".".
func (w *wire) multiline() ([]string, error) {
	var out []string
	for {
		s, err := w.line()
		if err != nil {
			return out, err
		}
		if s == "." {
			return out, nil
		}
		out = append(out, strings.TrimPrefix(s, "."))
	}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 16<<10) }

// forBackends runs f on the embedded store and, where PostgreSQL server
// binaries exist (required in CI), on a fresh PostgreSQL database.
func forBackends(t *testing.T, f func(t *testing.T, o stackOpts)) {
	t.Run("embedded", func(t *testing.T) { f(t, stackOpts{}) })
	t.Run("postgres", func(t *testing.T) {
		dsn := testharness.PG(t).NewDatabase(t)
		f(t, stackOpts{OpenStore: func() (store.Store, error) {
			return postgres.Open(context.Background(), dsn, postgres.Options{})
		}})
	})
}
