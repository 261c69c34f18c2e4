package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/config"
	"github.com/skrytka/skrytka/internal/listen"
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
	Logger    *slog.Logger
	Hostname  string
	Plaintext auth.PlaintextPolicy
}

// service is one protocol server and the ports it serves.
type service struct {
	name      string // "imap", "pop3", ...
	srv       server
	plain     string // address of the plain port (STARTTLS offered); "" off
	plainName string // log name of the plain port
	tlsAddr   string // address of the implicit-TLS port; "" off
	tlsName   string
	// reject tells a client on the plain port that the server is full,
	// in the protocol's words.
	reject listen.RejectFunc
}

type listenerSpec struct {
	proto, addr string
	tls         bool
	reject      listen.RejectFunc
}

func (s *service) listeners() []listenerSpec {
	var ls []listenerSpec
	if s.plain != "" {
		ls = append(ls, listenerSpec{proto: s.plainName, addr: s.plain, reject: s.reject})
	}
	if s.tlsAddr != "" {
		// A refusal on a TLS port is a plain close: no cleartext there.
		ls = append(ls, listenerSpec{proto: s.tlsName, addr: s.tlsAddr, tls: true})
	}
	return ls
}

func (s *service) started(bound []boundListener) bool {
	for _, b := range bound {
		if b.svc == s {
			return true
		}
	}
	return false
}

func rejectLine(line string) listen.RejectFunc {
	return func(c net.Conn, why listen.Reason) { c.Write([]byte(line + string(why) + "\r\n")) }
}

// services builds every protocol server this binary has. Adding one is a
// few explicit lines here: its Options from cfg and d, its ports and its
// "too busy" reply.
func services(cfg *config.Config, d deps) []*service {
	var svcs []*service
	_ = cfg
	_ = d
	return svcs
}
