package pop3d

import "time"

// Defaults for Options fields left zero. Each has a test that reaches it
// (limits_test.go).
const (
	// DefaultAuthTimeout is how long a client may take to send a command
	// before it has logged in.
	DefaultAuthTimeout = 60 * time.Second
	// DefaultIdleTimeout is the inactivity autologout timer after login.
	// RFC 1939 §3 asks for at least 10 minutes.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultWriteTimeout bounds each write to the client, so a client that
	// stops reading does not hold a goroutine and buffers forever.
	DefaultWriteTimeout = 2 * time.Minute
	// DefaultMaxLineBytes is the longest command line accepted, CRLF
	// included. RFC 2449 §4 limits commands to 255 octets; SASL responses
	// (RFC 5034 §4) may be longer, so we accept more.
	DefaultMaxLineBytes = 4096
	// DefaultMaxBadCommands is how many unknown, malformed or failing
	// commands (including failed logins) a connection may send before it
	// is closed.
	DefaultMaxBadCommands = 10
	// DefaultHostname is used in the greeting when Options.Hostname is "".
	DefaultHostname = "localhost"
	// DefaultExpire is the EXPIRE capability value (RFC 2449 §6.7): the
	// server never deletes messages on its own.
	DefaultExpire = "NEVER"

	// storeTimeout bounds one metadata store call (login snapshot, UPDATE).
	storeTimeout = 30 * time.Second
	// authCheckTimeout bounds a password check, including the throttling
	// wait that auth.Authenticator may impose (at most a minute).
	authCheckTimeout = 90 * time.Second
	// leaseRefreshInterval is how often a session refreshes its maildrop
	// lease while it holds it.
	leaseRefreshInterval = 30 * time.Second
	// tlsHandshakeTimeout bounds the STLS handshake.
	tlsHandshakeTimeout = 30 * time.Second
	// writeBufferBytes is the size of the buffered writer in front of a
	// logged-in connection; RETR streams through it. Before login a small
	// one (authWriteBufferBytes) keeps idle connections cheap.
	writeBufferBytes     = 32 << 10
	authWriteBufferBytes = 2 << 10
	// readBufferBytes is the size of the buffered reader of commands.
	readBufferBytes = 4 << 10
)
