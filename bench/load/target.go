// Package load holds the benchmark workloads: clients for IMAP (go-imap's
// imapclient), POP3 (a minimal client of our own), SMTP and LMTP (go-smtp's
// client) that drive any server reachable on loopback, time what they do and
// check what they read.
//
// Every workload checks correctness as it goes (message bytes equal what the
// corpus generator produced, counts and search results equal what the
// generator predicts); a wrong answer is an error, never a slow number.
// Speed is only reported, never asserted.
//
// It depends on bench/corpus and the client libraries, and on nothing of
// Skrytka's server code: the same binary measures Skrytka and Dovecot.
package load

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Target says where a server listens and who may log in. A zero port means
// the server has no such listener and workloads that need it are skipped.
type Target struct {
	Name     string // label in results, e.g. "skrytka" or "dovecot"
	Host     string // default 127.0.0.1
	IMAP     int
	POP3     int
	SMTP     int
	LMTP     int
	Domain   string // users are UserPrefix+N+"@"+Domain
	Password string
	// UserPrefix names the ordinary test users: prefix1..prefixN.
	UserPrefix string
	// PIDs are the server's root processes; memory is summed over them
	// and all their descendants (Dovecot forks per connection).
	PIDs []int
	// DialTimeout bounds each connection attempt. Zero means 10 s.
	DialTimeout time.Duration
}

// User returns the address of ordinary user n (1-based).
func (t *Target) User(n int) string {
	return t.UserPrefix + strconv.Itoa(n) + "@" + t.Domain
}

// Named returns the address of a special-purpose user (e.g. "big", "sink3").
func (t *Target) Named(local string) string { return local + "@" + t.Domain }

func (t *Target) addr(port int) string {
	h := t.Host
	if h == "" {
		h = "127.0.0.1"
	}
	return net.JoinHostPort(h, strconv.Itoa(port))
}

func (t *Target) dial(port int) (net.Conn, error) {
	if port == 0 {
		return nil, fmt.Errorf("%s: no port configured", t.Name)
	}
	d := t.DialTimeout
	if d == 0 {
		d = 10 * time.Second
	}
	return net.DialTimeout("tcp", t.addr(port), d)
}

// ParsePIDs parses "123,456".
func ParsePIDs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("bad pid %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}
