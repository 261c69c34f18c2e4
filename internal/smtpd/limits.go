package smtpd

import "time"

// Defaults used when an Options field is zero. Each has a test that hits it.
const (
	// DefaultMaxMessageBytes is the largest message accepted (advertised in
	// EHLO SIZE, RFC 1870), enforced while reading DATA or BDAT.
	DefaultMaxMessageBytes = 50 << 20
	// DefaultMaxRecipients is the most RCPTs per transaction; RFC 5321
	// §4.5.3.1.8 requires accepting at least 100.
	DefaultMaxRecipients = 100
	// DefaultMaxLineBytes bounds a command line and each line of DATA.
	// RFC 5321 §4.5.3.1.4-6 sets 512 octets for commands and 1000 for text
	// lines; real mail has longer lines, and go-smtp closes the connection
	// on a longer one, so we tolerate 8 times the text line limit.
	DefaultMaxLineBytes = 8000
	// DefaultCommandTimeout is how long the server waits for the next
	// command, and for each read during DATA/BDAT (RFC 5321 §4.5.3.2.7:
	// server timeout at least 5 minutes).
	DefaultCommandTimeout = 5 * time.Minute
	// DefaultCommandFinishTimeout: once a client has started sending a
	// command, it must finish it (and get our reply) within this time;
	// a client trickling bytes (slow loris) is cut off here, not after
	// CommandTimeout per byte.
	DefaultCommandFinishTimeout = 30 * time.Second
	// DefaultMinDataRate is the slowest average rate, in bytes per second,
	// at which a message may arrive once it has been arriving for
	// CommandFinishTimeout.
	DefaultMinDataRate = 1024
	// DefaultWriteTimeout bounds writing one reply to a slow reader.
	DefaultWriteTimeout = 2 * time.Minute
	// DefaultSessionTimeout caps a whole connection, however busy, so that
	// a client trickling bytes cannot hold a slot for ever.
	DefaultSessionTimeout = 30 * time.Minute
	// DefaultDeliverTimeout bounds the store work of one delivery after the
	// message has been read.
	DefaultDeliverTimeout = 2 * time.Minute
	// DefaultMaxErrors is how many rejected commands (unknown users,
	// relay attempts, bad addresses) a session may collect before it is
	// closed with 421 (RFC 5321 §7.8: slow down address harvesting). LMTP
	// sessions come from a trusted MTA and have no such cap by default.
	DefaultMaxErrors = 10
	// DefaultRecipientDelimiter separates a user from a sub-address tag
	// (RFC 5233): "user+tag@domain" is delivered to "user@domain".
	DefaultRecipientDelimiter = "+"
	// maxAliasDepth bounds alias chains (a → b → c).
	maxAliasDepth = 8
	// spoolMemBytes is how much of a message is kept in memory while it is
	// checked (SPF/DKIM/DMARC) before it spills to a temporary file.
	spoolMemBytes = 256 << 10
)
