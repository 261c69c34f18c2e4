// Package realclients proves that Skrytka works with the mail clients
// people actually run, as Debian packages them: mbsync (isync), fetchmail,
// offlineimap3, curl, neomutt and s-nail (issue 3, "What real clients
// do", and issue 4's real POP3 clients).
//
// Everything here is tests; this file only carries the documentation. Each
// test builds nothing itself: TestMain builds cmd/skrytka once, and every
// test starts its own `skrytka serve` subprocess with a config in a
// temporary directory and its own free loopback ports, adds an account
// with `skrytka user add -password-stdin` through the admin socket,
// delivers mail over LMTP, runs the client binary with its own HOME and
// config under a timeout, and then checks both sides: the server through
// go-imap's imapclient, the client's side by reading what it wrote (Maildir
// files and their flag suffixes, files an MDA wrote, curl's output).
//
// Flows covered:
//   - mbsync: two-way sync of several folders (hierarchy, a non-ASCII
//     name) with a local Maildir: the first pull, local changes pushed
//     (a new message, a flag change, a deletion, a new folder), server
//     changes pulled (an LMTP delivery, a flag set by another session, an
//     expunge), arrival dates both ways (INTERNALDATE and file mtime),
//     over STARTTLS and implicit TLS with the generated certificate.
//   - fetchmail: POP3 with and without keep, UIDL tracking with keep, and
//     IMAP (sequence numbers, expunge after each message), into an MDA;
//     what arrives equals what the server stored, apart from the Received
//     field fetchmail adds; IMAP IDLE in daemon mode, where a delivery
//     must reach fetchmail through the untagged EXISTS; and the POP3
//     after-download policies trash and keep (per account, through
//     `skrytka user policy`) with mark_seen_on_retr, as IMAP sees them.
//   - offlineimap3: a sync into a Maildir (SELECT and EXAMINE per folder,
//     AUTHENTICATE PLAIN without an initial response, ID before login),
//     then local changes pushed back.
//   - curl: IMAP LIST and a non-peek UID FETCH (which sets \Seen), POP3
//     LIST and RETR, SMTP submission with AUTH over STARTTLS and implicit
//     TLS, and the submitted mail arriving.
//   - neomutt (under script(1) for a terminal, keys pushed from its rc):
//     ENABLE UTF8=ACCEPT with a pipelined command behind it, piping a
//     message, flagging, deleting with an expunge, a UTF-8 mailbox name;
//     and with a header cache, CONDSTORE/QRESYNC resynchronisation
//     (CHANGEDSINCE, VANISHED (EARLIER)) after another session's changes.
//   - s-nail in batch mode: IMAP read (\Seen), copy and delete; POP3
//     read and DELE; sending through submission.
//   - mixed devices on one mailbox: mbsync (a laptop), curl over IMAP
//     (a phone reading) and s-nail over POP3 (a desktop deleting) each
//     see the others' changes.
//
// A client binary that is not installed makes its test skip, naming it,
// unless SKRYTKA_REQUIRE_CLIENTS=1 is set (as .ci/run does), which turns the
// skip into a failure. The tests never leave loopback: the MX is not used,
// and the queue's smarthost is a loopback port where nobody listens.
package realclients
