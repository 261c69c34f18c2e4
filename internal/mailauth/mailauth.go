// Package mailauth checks where inbound mail comes from: SPF (RFC 7208) for
// the connecting IP and envelope sender, DKIM signatures (RFC 6376) and the
// DMARC policy (RFC 7489) of the From: domain, and it formats the outcome as
// an Authentication-Results header field (RFC 8601).
//
// It does the evaluation glue only; the protocol work is done by
// blitiri.com.ar/go/spf and github.com/emersion/go-msgauth (dkim, dmarc,
// authres). Every DNS query goes through the Resolver interface so that
// tests run offline against a Zone.
//
// It must not depend on the store or on any protocol server: smtpd calls it
// with the connection facts and the message bytes.
//
// Invariants:
//   - Check never fails: a DNS or parse problem becomes a temperror or
//     permerror result, never an error that could lose mail.
//   - Every lookup honours the context, so a slow DNS server is cut off by
//     the caller's deadline (the result is then temperror).
package mailauth

import (
	"context"
	"net"
)

// Resolver is the DNS interface used by every check. *net.Resolver
// implements it; so does Zone (an in-memory zone for tests and offline use).
// It is the same method set as blitiri.com.ar/go/spf's DNSResolver, and an
// outbound queue can use LookupMX and LookupIPAddr from it as well.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)
