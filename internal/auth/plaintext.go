package auth

import (
	"fmt"
	"net"
)

// PlaintextPolicy says when a password may travel without TLS
// (config key auth.allow_plaintext).
type PlaintextPolicy string

const (
	PlaintextNever    PlaintextPolicy = "never"
	PlaintextLoopback PlaintextPolicy = "loopback" // default
	PlaintextAlways   PlaintextPolicy = "always"
)

// ParsePlaintextPolicy validates a config value.
func ParsePlaintextPolicy(s string) (PlaintextPolicy, error) {
	switch p := PlaintextPolicy(s); p {
	case PlaintextNever, PlaintextLoopback, PlaintextAlways:
		return p, nil
	case "":
		return PlaintextLoopback, nil
	}
	return "", fmt.Errorf("must be \"never\", \"loopback\" or \"always\", not %q", s)
}

// Allowed reports whether a plaintext password exchange (IMAP LOGIN,
// AUTHENTICATE PLAIN, POP3 USER/PASS, SMTP AUTH) is allowed on a connection
// from remote; isTLS is whether the connection is encrypted.
func (p PlaintextPolicy) Allowed(remote net.Addr, isTLS bool) bool {
	if isTLS || p == PlaintextAlways {
		return true
	}
	if p == PlaintextNever {
		return false
	}
	// loopback (and the zero value)
	switch a := remote.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}
