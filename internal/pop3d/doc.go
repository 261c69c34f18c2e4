// Package pop3d is Skrytka's POP3 server (RFC 1939), a download-style view
// of an account's INBOX kept in the shared store, served beside IMAP.
//
// It implements RFC 1939 (USER/PASS, STAT, LIST, RETR, DELE, NOOP, RSET,
// TOP, UIDL, QUIT with UPDATE), RFC 2449 (CAPA and response codes), RFC 3206
// (the AUTH and SYS response codes), RFC 5034 (AUTH PLAIN, with an initial
// response or a continuation) and RFC 2595 (STLS). Implicit TLS (POP3S) is
// the caller's job: it wraps the listener with tls.NewListener, and the
// server recognises a *tls.Conn.
//
// Not offered, on purpose:
//   - APOP (RFC 1939 §7) needs the plaintext password (or an MD5 of it) on
//     the server, and Skrytka stores only argon2id hashes. APOP is also MD5
//     based and offers less than a password over TLS.
//   - UTF8 (RFC 6856). A server that offers it must, for sessions that did
//     not enable it, either downgrade messages with internationalised
//     headers (RFC 6857/6858) or keep them out of the maildrop, and the
//     downgraded size would have to be what LIST and STAT report. The store
//     keeps no downgraded form, so announcing UTF8 would promise what the
//     server cannot do right. Messages are served as stored to every
//     client, as RFC 1939 servers do; user names and passwords are taken as
//     raw octets, so UTF-8 ones still work.
//
// Dependencies: the store interface (never a backend), auth, listen (to
// name the user on the connection's close log line) and the standard
// library. It must not import database/sql, a driver, or another
// front end; package deptest checks this.
//
// Invariants:
//   - The maildrop (the list of messages, their numbers, sizes and UIDLs) is
//     a snapshot taken at login; nothing that happens later in the store
//     changes it for the session.
//   - The session holds the store's maildrop lock (Store.LockMaildrop) from
//     login until the connection ends, whatever the reason.
//   - Only QUIT in the TRANSACTION state changes the store (UPDATE, RFC 1939
//     §6), and the deletions are one store operation. A dropped connection,
//     a timeout, a shutdown or a panic deletes nothing. The one exception is
//     the optional \Seen marking of retrieved messages (MarkSeenOnRetr),
//     which reflects transfers that happened and is applied even without
//     QUIT.
//   - The size in LIST/STAT is Message.Size: the stored octets, which have
//     CRLF line endings. RETR sends exactly those octets, dot-stuffed.
//   - UIDL is the store's MessageID, which is never reused.
package pop3d
