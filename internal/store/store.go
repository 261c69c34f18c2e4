// Package store is the contract between Skrytka's protocol front ends
// (imapd, pop3d, smtpd) and its storage backends (embedded, postgres).
//
// It defines the domain types (Account, Mailbox, Message, UID, ModSeq,
// Flags), the Store interface, the sentinel errors and the change-feed
// contract. It imports no database driver and knows nothing of any wire
// protocol: it never sees a tag, a sequence number, a reply code or a
// response code. Sequence numbers and POP3 message numbers belong to a
// session and live in the front ends.
//
// Invariants every backend keeps (checked by package storetest):
//   - A UID is strictly increasing per mailbox and never reused, also after
//     expunge and across restarts. UIDNext only grows.
//   - Every change to a message (append, flag change, expunge) gets a ModSeq
//     greater than every earlier ModSeq of its mailbox; HighestModSeq is the
//     largest. Expunged UIDs are remembered with their ModSeq (tombstones) so
//     that Changes can report them (QRESYNC VANISHED).
//   - A call that accepts mail (Append, Deliver, Copy, Move) returns nil only
//     once the data is durable: the body fsynced, then the metadata committed
//     synchronously. Bodies are immutable; copy and move share them.
//   - Message bytes are stored with CRLF line endings (bare LF is converted
//     on the way in), so Size is what IMAP RFC822.SIZE and POP3 LIST report.
//   - Changes are published to subscribers only after they commit.
//   - Mailbox names are UTF-8, "/" separates hierarchy levels, and "INBOX"
//     (any case) is stored and returned as "INBOX".
package store

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/skrytka/skrytka/internal/mailparse"
)

// Sentinel errors. Backends translate driver errors into these; callers test
// with errors.Is.
var (
	ErrNotFound      = errors.New("store: not found")
	ErrExists        = errors.New("store: already exists")
	ErrInvalidName   = errors.New("store: invalid mailbox name")
	ErrNoSelect      = errors.New("store: mailbox cannot hold messages") // a \Noselect placeholder
	ErrHasChildren   = errors.New("store: mailbox has children")
	ErrOverQuota     = errors.New("store: over quota")
	ErrTooLarge      = errors.New("store: message too large")
	ErrLocked        = errors.New("store: maildrop locked by another session")
	ErrSpecialUse    = errors.New("store: special-use attribute not supported or already in use")
	ErrUnavailable   = errors.New("store: temporarily unavailable") // backend down: retry later
	ErrClosed        = errors.New("store: closed")
	ErrBadFlag       = errors.New("store: invalid flag or keyword")
	ErrCannotRename  = errors.New("store: cannot rename mailbox there")
	ErrInboxSpecial  = errors.New("store: INBOX cannot be deleted")
	ErrTooManyItems  = errors.New("store: limit on mailboxes or keywords reached")
	ErrNotStagedHere = errors.New("store: staged body belongs to another store")
)

// InboxName is the canonical name of every account's inbox.
const InboxName = "INBOX"

// Separator separates hierarchy levels in mailbox names.
const Separator = "/"

// Limits enforced by every backend.
const (
	MaxMailboxNameBytes = 1000 // whole name, UTF-8
	MaxMailboxDepth     = 40   // levels in a name
	MaxKeywordBytes     = 100
	MaxKeywordsPerBox   = 1000 // distinct keywords ever used in one mailbox
)

type (
	AccountID int64
	MailboxID int64
	// MessageID identifies one message entry (one UID in one mailbox) for its
	// whole life, across all mailboxes and accounts, and is never reused. POP3
	// derives UIDL from it.
	MessageID int64
	// UID is an IMAP-style unique identifier within one mailbox (1-based).
	UID uint32
	// ModSeq is a per-mailbox modification sequence (RFC 7162). Never zero for
	// a stored message.
	ModSeq uint64
)

// Account is one mail user.
type Account struct {
	ID           AccountID
	Address      string // lower-case canonical address, e.g. "demo@localhost"
	PasswordHash string // PHC-format argon2id string; never logged
	QuotaBytes   int64  // 0: unlimited
	UsedBytes    int64  // sum of Size over all messages of the account
	// DownloadPolicy overrides the server-wide policy for what happens on the
	// server after a POP3-style download ("" = use the global setting).
	DownloadPolicy string
	CreatedAt      time.Time
}

// SpecialUse is an RFC 6154 attribute such as `\Sent`. Empty means none.
type SpecialUse string

const (
	SpecialNone    SpecialUse = ""
	SpecialAll     SpecialUse = `\All`
	SpecialArchive SpecialUse = `\Archive`
	SpecialDrafts  SpecialUse = `\Drafts`
	SpecialFlagged SpecialUse = `\Flagged`
	SpecialJunk    SpecialUse = `\Junk`
	SpecialSent    SpecialUse = `\Sent`
	SpecialTrash   SpecialUse = `\Trash`
)

// DefaultMailboxes are created with every new account, besides INBOX.
var DefaultMailboxes = []struct {
	Name string
	Use  SpecialUse
}{
	{"Drafts", SpecialDrafts},
	{"Sent", SpecialSent},
	{"Archive", SpecialArchive},
	{"Junk", SpecialJunk},
	{"Trash", SpecialTrash},
}

// Mailbox is a folder and its counters, kept without scanning messages.
type Mailbox struct {
	ID            MailboxID
	Account       AccountID
	Name          string // full UTF-8 path, "/"-separated
	SpecialUse    SpecialUse
	NoSelect      bool // placeholder left when a parent with children was deleted
	UIDValidity   uint32
	UIDNext       UID
	HighestModSeq ModSeq
	Messages      uint32 // number of messages
	Unseen        uint32 // messages without \Seen
	Deleted       uint32 // messages with \Deleted
	Size          int64  // sum of message sizes (STATUS SIZE)
	// RecentUID: messages with UID >= RecentUID have not yet been claimed as
	// \Recent by any session (see ClaimRecent).
	RecentUID UID
}

// SysFlags is a bit set of system flags. \Recent is not stored: it is a
// session property (see ClaimRecent).
type SysFlags uint16

const (
	FlagSeen SysFlags = 1 << iota
	FlagAnswered
	FlagFlagged
	FlagDeleted
	FlagDraft
	// FlagDownloaded marks a message that a download-style session
	// (POP3 with the "keep" policy) has taken; such sessions hide it later.
	// It is not an IMAP flag and front ends never show it as one.
	FlagDownloaded
)

// Flags are a message's system flags and keywords. Keywords are compared
// case-insensitively; the store keeps the spelling first used in a mailbox.
type Flags struct {
	Sys      SysFlags
	Keywords []string
}

// FlagOp says how SetFlags combines the given flags with the current ones.
type FlagOp uint8

const (
	FlagsReplace FlagOp = iota // FLAGS
	FlagsAdd                   // +FLAGS
	FlagsRemove                // -FLAGS
)

// UIDRange is an inclusive range of UIDs; Start <= Stop.
type UIDRange struct{ Start, Stop UID }

// UIDSet is a set of concrete UID ranges. The store never sees "*": front
// ends resolve it first. Ranges may overlap and need not be sorted.
type UIDSet []UIDRange

// Contains reports whether uid is in the set.
func (s UIDSet) Contains(uid UID) bool {
	for _, r := range s {
		if uid >= r.Start && uid <= r.Stop {
			return true
		}
	}
	return false
}

// UIDSetOf returns a set holding exactly the given UIDs.
func UIDSetOf(uids ...UID) UIDSet {
	s := make(UIDSet, 0, len(uids))
	for _, u := range uids {
		if n := len(s); n > 0 && s[n-1].Stop+1 == u {
			s[n-1].Stop = u
			continue
		}
		s = append(s, UIDRange{u, u})
	}
	return s
}

// Message is one message entry's metadata. Bodies are read with OpenMessage.
type Message struct {
	ID           MessageID
	Mailbox      MailboxID
	UID          UID
	ModSeq       ModSeq
	Flags        Flags
	InternalDate time.Time
	Size         int64 // octets, CRLF line endings
	// Parsed is the metadata parsed once at delivery (envelope, body
	// structure with byte offsets, search headers, preview). It is filled
	// only when FetchOptions.Parsed is set.
	Parsed *mailparse.Info
}

// FetchOptions selects what Messages loads.
type FetchOptions struct {
	Parsed bool // load Message.Parsed
}

// Staged is a message body written to the store's durable staging area but
// not yet visible in any mailbox. It is consumed by Append or Deliver (which
// take ownership) or dropped with Discard. A Staged is bound to the Store
// that made it.
type Staged interface {
	Size() int64           // octets after CRLF normalisation
	Info() *mailparse.Info // parsed once, at staging
	Discard() error        // safe to call after Append/Deliver consumed it
}

// AppendMessage is one message for Append.
type AppendMessage struct {
	Body         Staged
	Flags        Flags
	InternalDate time.Time // zero: now
}

// AppendResult reports where Append put the messages (UIDPLUS APPENDUID).
type AppendResult struct {
	UIDValidity uint32
	UIDs        []UID // one per message, in order
	ModSeq      ModSeq
}

// CopyResult reports a copy or move (UIDPLUS COPYUID). SrcUIDs[i] became
// DstUIDs[i]; UIDs in the request that did not exist are absent.
type CopyResult struct {
	UIDValidity uint32 // of the destination
	SrcUIDs     []UID
	DstUIDs     []UID
}

// FlagUpdate is the new state of one message after SetFlags.
type FlagUpdate struct {
	UID    UID
	Flags  Flags
	ModSeq ModSeq
}

// FlagResult is what SetFlags did.
type FlagResult struct {
	Updated []FlagUpdate // messages whose flags changed, in UID order
	// Modified lists UIDs skipped because their ModSeq was above
	// UnchangedSince (RFC 7162 MODIFIED).
	Modified []UID
}

// Delta is what changed in a mailbox after a ModSeq (CONDSTORE/QRESYNC, and
// the way sessions catch up after a change-feed hint).
type Delta struct {
	Mailbox  Mailbox   // status at the time of the read
	Messages []Message // current messages with ModSeq > since, in UID order (no Parsed)
	Vanished []UID     // expunged with ModSeq > since, sorted
}

// DeliveryTarget is one recipient mailbox of Deliver.
type DeliveryTarget struct {
	Account AccountID
	Mailbox string // "" means INBOX
	Flags   Flags
}

// Lease is a held exclusive maildrop lock (RFC 1939 §8). It dies with its
// holder: Release, the holder's process exiting, or, on multi-node backends,
// expiry when not refreshed.
type Lease interface {
	// Refresh extends the lease; it returns ErrLocked if the lease was lost.
	Refresh(ctx context.Context) error
	Release() error
}

// TextScope chooses what SearchText looks in.
type TextScope uint8

const (
	TextBody   TextScope = iota // the decoded body text (IMAP SEARCH BODY)
	TextHeader                  // header field values (part of SEARCH TEXT)
	TextAll                     // header and body (IMAP SEARCH TEXT)
)

// ChangeKind says what a Change is about.
type ChangeKind uint8

const (
	ChangeAppend    ChangeKind = iota + 1 // new messages: UIDs
	ChangeExpunge                         // expunged messages: UIDs
	ChangeFlags                           // flags changed: UIDs
	ChangeMailboxes                       // mailbox created, deleted, renamed or (un)subscribed
	ChangeOverflow                        // the subscriber lagged and changes were dropped: resync
)

// Change is one committed change, published to the account's subscribers.
// A Change is a hint: sessions re-read state from the store (Changes) rather
// than trusting it for content.
type Change struct {
	Kind    ChangeKind
	Account AccountID
	Mailbox MailboxID // 0 for ChangeMailboxes and ChangeOverflow
	UIDs    []UID
	ModSeq  ModSeq // the mailbox's HighestModSeq after the change
}

// Subscription receives an account's changes in commit order.
type Subscription interface {
	// C delivers changes. If the subscriber does not keep up, the queue is
	// bounded: older changes are dropped and a ChangeOverflow is delivered
	// instead. C is closed after Close.
	C() <-chan Change
	Close()
}

// Store is the storage API. Every method takes a context first so that a
// dropped client or a shutdown cancels its work. Methods are safe for
// concurrent use.
type Store interface {
	// --- accounts ---

	// CreateAccount creates an account with INBOX and DefaultMailboxes.
	// ErrExists if the address is taken.
	CreateAccount(ctx context.Context, address, passwordHash string) (Account, error)
	// Account looks an account up by address (case-insensitive).
	Account(ctx context.Context, address string) (Account, error)
	AccountByID(ctx context.Context, id AccountID) (Account, error)
	Accounts(ctx context.Context) ([]Account, error)
	SetPasswordHash(ctx context.Context, id AccountID, hash string) error
	SetQuota(ctx context.Context, id AccountID, quotaBytes int64) error
	SetDownloadPolicy(ctx context.Context, id AccountID, policy string) error
	// DeleteAccount removes the account, its mailboxes and messages.
	DeleteAccount(ctx context.Context, id AccountID) error

	// --- mailboxes ---

	// Mailboxes lists every mailbox of the account (including \Noselect
	// placeholders), sorted by name.
	Mailboxes(ctx context.Context, acct AccountID) ([]Mailbox, error)
	Mailbox(ctx context.Context, acct AccountID, name string) (Mailbox, error)
	MailboxByID(ctx context.Context, acct AccountID, id MailboxID) (Mailbox, error)
	// CreateMailbox creates name and any missing parents. Creating over a
	// \Noselect placeholder turns it into a real mailbox. ErrExists,
	// ErrInvalidName, ErrSpecialUse.
	CreateMailbox(ctx context.Context, acct AccountID, name string, use SpecialUse) (Mailbox, error)
	// DeleteMailbox deletes a mailbox and its messages. A mailbox with
	// children becomes a \Noselect placeholder (its messages are expunged);
	// deleting a placeholder that still has children is ErrHasChildren.
	// INBOX cannot be deleted (ErrInboxSpecial).
	DeleteMailbox(ctx context.Context, acct AccountID, name string) error
	// RenameMailbox renames a mailbox and all its children. Renaming INBOX
	// moves all of INBOX's messages into a new mailbox and leaves INBOX empty
	// (RFC 3501 §6.3.5). Missing parents of newName are created.
	RenameMailbox(ctx context.Context, acct AccountID, oldName, newName string) error
	// SetSubscribed (un)subscribes a name; the name need not exist.
	SetSubscribed(ctx context.Context, acct AccountID, name string, subscribed bool) error
	Subscriptions(ctx context.Context, acct AccountID) ([]string, error)

	// --- messages ---

	// Stage streams a body into the durable staging area, converting bare
	// LF to CRLF, and parses it. More than maxBytes octets (0: no limit)
	// gives ErrTooLarge; the reader is then not drained.
	Stage(ctx context.Context, r io.Reader, maxBytes int64) (Staged, error)
	// Append adds messages to one mailbox atomically (all or none).
	Append(ctx context.Context, acct AccountID, mbox MailboxID, msgs []AppendMessage) (AppendResult, error)
	// Deliver adds one staged body to several recipients' mailboxes (one
	// body, many entries). The returned slice has one error per target (nil
	// on success, e.g. ErrOverQuota or ErrNotFound otherwise); the error
	// result is for a failure that delivered to nobody.
	Deliver(ctx context.Context, body Staged, targets []DeliveryTarget) ([]error, error)

	// SelectState returns a consistent snapshot of a mailbox's status and
	// all its UIDs in ascending order.
	SelectState(ctx context.Context, acct AccountID, mbox MailboxID) (Mailbox, []UID, error)
	// ClaimRecent returns the first UID that is \Recent for the calling
	// session and marks all current messages as no longer recent for later
	// sessions (RFC 3501 \Recent).
	ClaimRecent(ctx context.Context, acct AccountID, mbox MailboxID) (UID, error)
	// Messages calls fn for each existing message in uids, in UID order.
	// Messages must not be retained after fn returns unless copied.
	Messages(ctx context.Context, acct AccountID, mbox MailboxID, uids UIDSet, opts FetchOptions, fn func(*Message) error) error
	// OpenMessage opens a message's bytes for reading.
	OpenMessage(ctx context.Context, acct AccountID, mbox MailboxID, uid UID) (MessageReader, error)
	// SetFlags changes flags of the messages in uids. unchangedSince > 0
	// skips messages with a higher ModSeq (reported in Modified).
	SetFlags(ctx context.Context, acct AccountID, mbox MailboxID, uids UIDSet, op FlagOp, flags Flags, unchangedSince ModSeq) (FlagResult, error)
	// Expunge removes the messages in uids and returns the UIDs removed.
	Expunge(ctx context.Context, acct AccountID, mbox MailboxID, uids UIDSet) ([]UID, error)
	// Copy copies messages to dst (new UIDs, same bodies).
	Copy(ctx context.Context, acct AccountID, src, dst MailboxID, uids UIDSet) (CopyResult, error)
	// Move moves messages to dst atomically: new UIDs in dst, expunged in src.
	Move(ctx context.Context, acct AccountID, src, dst MailboxID, uids UIDSet) (CopyResult, error)
	// Keywords lists the keywords ever used in a mailbox, in the spelling
	// first used, sorted case-insensitively (IMAP FLAGS and PERMANENTFLAGS
	// show them so clients learn the mailbox's tags).
	Keywords(ctx context.Context, acct AccountID, mbox MailboxID) ([]string, error)
	// Changes reports what changed after since (0: everything).
	Changes(ctx context.Context, acct AccountID, mbox MailboxID, since ModSeq) (Delta, error)
	// SearchText returns, in ascending order, the UIDs among candidates whose
	// text in scope contains needle: case-insensitive substring match on
	// text decoded from the message's transfer encodings and charsets into
	// UTF-8. A nil candidates slice means every message in the mailbox.
	SearchText(ctx context.Context, acct AccountID, mbox MailboxID, candidates []UID, scope TextScope, needle string) ([]UID, error)

	// --- download-style access and live updates ---

	// LockMaildrop takes the exclusive maildrop lock of an account, or
	// returns ErrLocked when another session holds it.
	LockMaildrop(ctx context.Context, acct AccountID, holder string) (Lease, error)
	// Subscribe delivers the account's committed changes from now on.
	Subscribe(ctx context.Context, acct AccountID) (Subscription, error)

	Close() error
}

// MessageReader reads one message's bytes. It supports random access so
// front ends can serve BODY[section]<partial> straight from byte offsets.
type MessageReader interface {
	io.Reader
	io.ReaderAt
	io.Closer
	Size() int64
}
