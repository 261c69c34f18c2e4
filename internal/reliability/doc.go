// Package reliability holds Skrytka's black-box and cross-protocol proofs
// of reliability and security (issue 9): crash tests that SIGKILL a server
// process in the middle of deliveries, a full-disk test, hostile-input
// tables per protocol, account isolation across every protocol and the
// store, abuse (login throttling, connection caps, slow clients) and a
// soak test that checks goroutines and heap return to their baseline.
//
// Everything here is tests; this file exists only to carry the package
// documentation. The tests talk to the real servers (imapd, pop3d, smtpd)
// over loopback sockets on the real embedded store, started in-process or
// in a child process that is killed with SIGKILL. They must not reach
// beyond loopback: DNS lookups of the MX's SPF/DKIM/DMARC checks go to a
// resolver that answers "not found" without sending a packet.
//
// Environment knobs for longer runs: SKRYTKA_CRASH_KILLS (default 20),
// SKRYTKA_SOAK (a duration, default 20s), SKRYTKA_SOAK_CONNS (default 300).
package reliability
