package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/config"
	"github.com/skrytka/skrytka/internal/imapd"
	"github.com/skrytka/skrytka/internal/listen"
	"github.com/skrytka/skrytka/internal/pop3d"
	"github.com/skrytka/skrytka/internal/queue"
	"github.com/skrytka/skrytka/internal/smtpd"
	"github.com/skrytka/skrytka/internal/store"
)

// server is what every protocol server package offers (see STYLE.md).
type server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
	Close() error
}

// deps are the shared parts every protocol server gets.
type deps struct {
	Store     store.Store
	Auth      *auth.Authenticator
	TLSConfig *tls.Config
	Limiter   *listen.Limiter
	Queue     *queue.Queue
	Logger    *slog.Logger
	Hostname  string
	Plaintext auth.PlaintextPolicy
}

// service is one protocol server and the ports it serves.
type service struct {
	name  string // "imap", "pop3", ...
	srv   server
	ports []port
}

// port is one listening address of a service.
type port struct {
	proto string // log name: "imap", "imaps", ...
	addr  string // from the config; "" means off
	tls   bool   // implicit TLS (the banner says so)
	// serve runs the server on the raw listener. nil: main counts the
	// connections with the shared Limiter, wraps TLS ports in
	// tls.NewListener, and calls srv.Serve.
	serve func(net.Listener) error
	// reject tells a refused client on a plain port that the server is
	// full, in the protocol's words (when main does the counting).
	reject listen.RejectFunc
}

func (s *service) active() []port {
	var ps []port
	for _, p := range s.ports {
		if p.addr != "" {
			ps = append(ps, p)
		}
	}
	return ps
}

func rejectLine(format string) listen.RejectFunc {
	return func(c net.Conn, why listen.Reason) { fmt.Fprintf(c, format, why) }
}

// services builds every protocol server this binary has. Adding one is a
// few explicit lines here: its Options from cfg and d, and its ports.
func services(cfg *config.Config, d deps) []*service {
	var svcs []*service

	// IMAP4rev2/rev1: internal/imapd.
	imap := imapd.New(imapd.Options{
		Store: d.Store, Auth: d.Auth, TLSConfig: d.TLSConfig, Logger: d.Logger,
		Hostname: d.Hostname, Plaintext: d.Plaintext,
		AppendLimit: int64(cfg.IMAP.AppendLimit),
	})
	svcs = append(svcs, &service{name: "imap", srv: imap, ports: []port{
		{proto: "imap", addr: cfg.IMAP.Listen, reject: rejectLine("* BYE [UNAVAILABLE] %s, try again later\r\n")},
		{proto: "imaps", addr: cfg.IMAP.TLSListen, tls: true},
	}})

	// POP3: internal/pop3d.
	pop := pop3d.New(pop3d.Options{
		Store: d.Store, Auth: d.Auth, TLSConfig: d.TLSConfig, Logger: d.Logger,
		Hostname: d.Hostname, Plaintext: d.Plaintext,
		AfterDownload:  pop3d.Policy(cfg.POP3.AfterDownload),
		MarkSeenOnRetr: cfg.POP3.MarkSeenOnRetr,
		LoginDelay:     cfg.POP3.LoginDelay.D(),
	})
	svcs = append(svcs, &service{name: "pop3", srv: pop, ports: []port{
		{proto: "pop3", addr: cfg.POP3.Listen, reject: rejectLine("-ERR [SYS/TEMP] %s, try again later\r\n")},
		{proto: "pop3s", addr: cfg.POP3.TLSListen, tls: true},
	}})

	// SMTP as the MX, and LMTP: internal/smtpd. It counts connections
	// with the shared Limiter itself and answers 421 over the caps.
	smtpOpts := smtpd.Options{
		Store: d.Store, Auth: d.Auth, PlaintextAuth: d.Plaintext, TLSConfig: d.TLSConfig,
		Logger: d.Logger, Limiter: d.Limiter, Hostname: d.Hostname,
		Domains:            cfg.Domains,
		RecipientDelimiter: cfg.SMTP.RecipientDelimiter,
		NoSubaddressing:    cfg.SMTP.RecipientDelimiter == "",
		Aliases:            smtpAliases(cfg),
		MaxMessageBytes:    int64(cfg.SMTP.MaxMessageSize),
		MaxRecipients:      cfg.SMTP.MaxRecipients,
		DMARCPolicy:        smtpd.DMARCPolicy(cfg.SMTP.DMARCPolicy),
		NoAuthChecks:       !cfg.SMTP.AuthChecks,
	}
	mx := smtpd.New(smtpOpts)
	svcs = append(svcs, &service{name: "smtp", srv: mx, ports: []port{
		{proto: "smtp", addr: cfg.SMTP.Listen, serve: mx.Serve},
	}})
	lmtpOpts := smtpOpts
	lmtpOpts.Mode = smtpd.ModeLMTP
	lmtp := smtpd.New(lmtpOpts)
	svcs = append(svcs, &service{name: "lmtp", srv: lmtp, ports: []port{
		{proto: "lmtp", addr: cfg.LMTP.Listen, serve: lmtp.Serve},
	}})

	// Submission (RFC 6409 on 587 with STARTTLS, RFC 8314 implicit TLS on
	// 465): our users' outgoing mail, local recipients delivered at once,
	// others through the outbound queue.
	subOpts := smtpOpts
	subOpts.Mode = smtpd.ModeSubmission
	subOpts.Queue = d.Queue
	sub := smtpd.New(subOpts)
	svcs = append(svcs, &service{name: "submission", srv: sub, ports: []port{
		{proto: "submission", addr: cfg.Submission.Listen, serve: sub.Serve},
		{proto: "submissions", addr: cfg.Submission.TLSListen, tls: true, serve: sub.ServeTLS},
	}})

	return svcs
}

// smtpAliases merges [smtp] aliases and catchall into smtpd's form, where
// "@domain" is a domain's catch-all.
func smtpAliases(cfg *config.Config) map[string][]string {
	m := make(map[string][]string, len(cfg.SMTP.Aliases)+len(cfg.SMTP.Catchall))
	for k, v := range cfg.SMTP.Aliases {
		m[k] = v
	}
	for dom, to := range cfg.SMTP.Catchall {
		m["@"+dom] = []string{to}
	}
	return m
}
