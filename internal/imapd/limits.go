package imapd

import "time"

// Default limits and timeouts. Each can be overridden through Options; a
// zero field in Options means "use the default below".
const (
	// DefaultMaxLineBytes caps one command line (not counting literals).
	// RFC 7162 §4 asks servers to accept at least 8 KiB.
	DefaultMaxLineBytes = 64 << 10
	// DefaultMaxLiteralBytes caps one literal outside APPEND.
	DefaultMaxLiteralBytes = 64 << 10
	// DefaultMaxCommandLiteralBytes caps the sum of the literals of one
	// command outside APPEND.
	DefaultMaxCommandLiteralBytes = 256 << 10
	// DefaultAppendLimit caps one APPEND message (advertised as APPENDLIMIT,
	// RFC 7889).
	DefaultAppendLimit = 50 << 20
	// DefaultMaxNesting caps parenthesised list nesting in a command.
	DefaultMaxNesting = 16
	// DefaultMaxBadCommands closes a connection after this many BAD
	// replies in a row.
	DefaultMaxBadCommands = 20

	// DefaultPreAuthTimeout: waiting for a command before login.
	DefaultPreAuthTimeout = 60 * time.Second
	// DefaultIdleTimeout: waiting for a command (or DONE) once
	// authenticated. RFC 9051 §5.4 requires at least 30 minutes.
	DefaultIdleTimeout = 31 * time.Minute
	// DefaultCommandTimeout: finishing a command line once its first byte
	// arrived.
	DefaultCommandTimeout = 60 * time.Second
	// DefaultLiteralTimeout: receiving one literal (APPEND bodies can be
	// large).
	DefaultLiteralTimeout = 10 * time.Minute
	// DefaultWriteTimeout: a single write to the client; a client that does
	// not read for this long is disconnected.
	DefaultWriteTimeout = 2 * time.Minute

	// fetchBatch is how many messages one store call loads for FETCH,
	// SEARCH and STORE; the client is written to only between store calls.
	fetchBatch = 512
	// fetchBatchSmall is the batch when no parsed metadata is loaded.
	fetchBatchSmall = 4096
	// maxLiteralsPerCommand caps the literals of one command, so that a
	// client cannot keep one command going forever with empty literals.
	maxLiteralsPerCommand = 1000
	// maxLoginFailures ends a connection after that many failed logins
	// (auth.Authenticator throttles across connections as well).
	maxLoginFailures = 5
	// maxAppendMessages caps the messages of one MULTIAPPEND.
	maxAppendMessages = 1000
	// maxSearchKeys caps the number of keys in one SEARCH program.
	maxSearchKeys = 1000
)
