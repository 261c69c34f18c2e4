package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/skrytka/skrytka/internal/admin"
	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/config"
	"github.com/skrytka/skrytka/internal/listen"
)

// shutdownGrace bounds how long commands in flight may run after SIGINT or
// SIGTERM before connections are closed.
const shutdownGrace = 10 * time.Second

// startupError is a problem found while starting (a port in use, an
// unreadable certificate, a data directory that cannot be made): exit 2.
type startupError struct{ err error }

func (e *startupError) Error() string { return e.err.Error() }
func (e *startupError) Unwrap() error { return e.err }

func isStartupError(err error) bool {
	var se *startupError
	var ce *config.Error
	return errors.As(err, &se) || errors.As(err, &ce)
}

// loadConfig returns the config for -config FILE, or the defaults.
func loadConfig(file string) (config.Config, error) {
	if file == "" {
		cfg := config.Defaults()
		return cfg, cfg.Validate()
	}
	return config.Load(file)
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	file := fs.String("config", "", "configuration file (TOML)")
	demo := fs.Bool("demo", false, "set up the demo account demo@localhost and print how to use it")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("serve: unexpected argument %q", pos[0])
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)

	// The first SIGINT/SIGTERM cancels ctx: during start-up that aborts
	// it, later it starts the graceful shutdown. stopSignals restores the
	// default action, so a second signal ends the process at once.
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return &startupError{fmt.Errorf("data_dir: %w", err)}
	}
	certs, err := certSource(&cfg)
	if err != nil {
		return &startupError{err}
	}
	hupCtx, stopHUP := context.WithCancel(context.Background())
	defer stopHUP()
	certs.ReloadOnSIGHUP(hupCtx, log)
	tlsConfig := listen.ServerConfig(certs)

	st, err := openStore(ctx, &cfg, log)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		// Another server holds the embedded store in data_dir.
		return &startupError{err}
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()

	// The outbound queue: mail our users submit for other domains.
	outq, err := openQueue(ctx, &cfg, st, log)
	if err != nil {
		return err
	}
	queueCtx, stopQueue := context.WithCancel(context.Background())
	queueDone := make(chan struct{})
	go func() {
		defer close(queueDone)
		holder := fmt.Sprintf("queue %s pid %d", cfg.Hostname, os.Getpid())
		runQueue(queueCtx, st, outq, holder, time.Minute, log)
	}()
	defer func() {
		// Before the store closes: stop the queue and wait for it.
		stopQueue()
		<-queueDone
	}()

	if cfg.Storage.Backend == "sqlite" {
		// `skrytka user ...` cannot open the embedded store while we hold
		// it: serve its requests on a socket in data_dir.
		sock := &admin.SocketServer{Store: st, Domains: cfg.Domains, Queue: outq, Logger: log}
		if err := sock.ListenSocket(cfg.DataDir); err != nil {
			log.Warn("no admin socket; stop the server to manage users", "err", err)
		} else {
			defer sock.Close()
		}
	}

	var demoAcct admin.Demo
	if *demo {
		if demoAcct, err = admin.EnsureDemo(ctx, st, cfg.DataDir, cfg.Hostname); err != nil {
			if ctx.Err() != nil {
				return errors.New("interrupted during start-up")
			}
			return fmt.Errorf("demo account: %w", err)
		}
	}

	plaintext, _ := auth.ParsePlaintextPolicy(cfg.Auth.AllowPlaintext)
	authn := &auth.Authenticator{
		Store: st,
		Throttle: auth.Throttle{
			Delay:    cfg.Auth.FailureDelay.D(),
			MaxDelay: cfg.Auth.MaxFailureDelay.D(),
			Window:   cfg.Auth.FailureWindow.D(),
		},
		Trusted:   cfg.TrustedPrefixes(),
		Logger:    log,
		CacheTTL:  cfg.Auth.CacheTTL.D(),
		CacheSize: cfg.Auth.CacheSize,
	}
	limiter := &listen.Limiter{
		MaxTotal: cfg.Limits.MaxConnections,
		MaxPerIP: cfg.Limits.MaxConnectionsPerIP,
		Trusted:  cfg.TrustedPrefixes(),
		Logger:   log,
	}
	svcs := services(&cfg, deps{
		Store:     st,
		Auth:      authn,
		TLSConfig: tlsConfig,
		Limiter:   limiter,
		Queue:     outq,
		Logger:    log,
		Hostname:  cfg.Hostname,
		Plaintext: plaintext,
	})

	// Bind every port before serving any, so a port in use stops start-up
	// cleanly.
	var bound []boundListener
	closeAll := func() {
		for _, b := range bound {
			b.ln.Close()
		}
	}
	for _, s := range svcs {
		for _, p := range s.active() {
			raw, err := net.Listen("tcp", p.addr)
			if err != nil {
				closeAll()
				return &startupError{fmt.Errorf("%s listener on %s: %w", p.proto, p.addr, unwrapOpError(err))}
			}
			b := boundListener{svc: s, proto: p.proto, tls: p.tls, ln: raw, addr: raw.Addr().String(), serve: p.serve}
			if p.serve == nil {
				b.ln = limiter.Listener(raw, p.proto, p.reject)
				if p.tls {
					b.ln = tls.NewListener(b.ln, tlsConfig)
				}
				b.serve = s.srv.Serve
			}
			bound = append(bound, b)
		}
	}

	serveErr := make(chan error, len(bound))
	var wg sync.WaitGroup
	shutdownStarted := make(chan struct{})
	for _, b := range bound {
		log.Info("listening", "proto", b.proto, "addr", b.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.serve(b.ln)
			select {
			case <-shutdownStarted:
			default:
				serveErr <- fmt.Errorf("%s server on %s stopped: %v", b.proto, b.addr, err)
			}
		}()
	}
	printBanner(stdout, &cfg, bound, demoAcct, *demo)
	log.Info("skrytka started", "version", versionString(), "data_dir", cfg.DataDir, "listeners", len(bound))

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down; a second signal stops at once", "grace", shutdownGrace)
	case runErr = <-serveErr:
		log.Error("server failed, shutting down", "err", runErr)
	}
	stopSignals()
	close(shutdownStarted)

	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var swg sync.WaitGroup
	for _, s := range svcs {
		if !started(s, bound) {
			continue
		}
		swg.Add(1)
		go func() {
			defer swg.Done()
			if err := s.srv.Shutdown(sctx); err != nil {
				log.Warn("graceful shutdown incomplete; closing connections", "proto", s.name, "err", err)
				s.srv.Close()
			}
		}()
	}
	swg.Wait()
	for _, b := range bound {
		b.ln.Close()
	}
	wg.Wait()
	log.Info("stopped")
	return runErr
}

// boundListener is one open port of a service.
type boundListener struct {
	svc   *service
	proto string
	tls   bool
	ln    net.Listener
	addr  string
	serve func(net.Listener) error
}

func started(s *service, bound []boundListener) bool {
	for _, b := range bound {
		if b.svc == s {
			return true
		}
	}
	return false
}

func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			return se.Err
		}
		return oe.Err
	}
	return err
}

// certSource returns the certificate files of [tls], or the self-signed
// certificate in data_dir.
func certSource(cfg *config.Config) (*listen.FileSource, error) {
	if cfg.TLS.CertFile != "" {
		return listen.LoadFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	}
	return listen.SelfSigned(cfg.DataDir, cfg.Hostname)
}

func printBanner(w io.Writer, cfg *config.Config, bound []boundListener, demo admin.Demo, isDemo bool) {
	if !isDemo {
		for _, b := range bound {
			fmt.Fprintf(w, "listening: %-12s %s\n", b.proto, b.addr)
		}
		return
	}
	fmt.Fprintf(w, "Skrytka demo server, data in %s\n\n", cfg.DataDir)
	fmt.Fprintf(w, "  account:  %s\n", demo.Address)
	note := "(kept in " + filepath.Join(cfg.DataDir, admin.DemoPasswordFile) + ")"
	if demo.Created {
		note = "(new; kept in " + filepath.Join(cfg.DataDir, admin.DemoPasswordFile) + ")"
	}
	fmt.Fprintf(w, "  password: %s  %s\n\n", demo.Password, note)
	if len(bound) == 0 {
		fmt.Fprintf(w, "No protocol server is built into this version yet; nothing is listening.\n")
	}
	for _, b := range bound {
		how := "plain, STARTTLS offered"
		if b.tls {
			how = "TLS from the first byte"
		}
		fmt.Fprintf(w, "  %-12s %-18s %s\n", b.proto, b.addr, how)
	}
	fmt.Fprintf(w, "\nTo use it from a mail client, add an account with user name %s,\n", demo.Address)
	fmt.Fprintf(w, "the password above and server 127.0.0.1:\n")
	if cfg.IMAP.Listen != "" {
		fmt.Fprintf(w, "  incoming: IMAP, port %s, STARTTLS (or IMAPS on %s)\n", portOf(cfg.IMAP.Listen), portOf(cfg.IMAP.TLSListen))
	}
	if cfg.POP3.Listen != "" {
		fmt.Fprintf(w, "        or: POP3, port %s, STARTTLS (or POP3S on %s)\n", portOf(cfg.POP3.Listen), portOf(cfg.POP3.TLSListen))
	}
	if cfg.Submission.Listen != "" {
		fmt.Fprintf(w, "  outgoing: SMTP, port %s, STARTTLS, with the same user name and password\n", portOf(cfg.Submission.Listen))
	}
	fmt.Fprintf(w, `The certificate is self-signed (valid for localhost and 127.0.0.1): accept
it when the client asks (on loopback, "no encryption" works too).
Mail to %s sent to the SMTP port %s lands in its INBOX.
For a quick look without a client:
  curl -k --user '%s:%s' 'imaps://127.0.0.1:%s/INBOX;UID=1'
Stop with Ctrl-C; running the demo again keeps the same mail and account.
`, demo.Address, portOf(cfg.SMTP.Listen), demo.Address, demo.Password, portOf(cfg.IMAP.TLSListen))
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "993"
	}
	return p
}
