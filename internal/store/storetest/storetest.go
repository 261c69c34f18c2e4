// Package storetest is the conformance suite every store.Store backend must
// pass. A backend's own tests call Run (or RunBackend, which adds the reopen
// and crash tests) against real stores in temporary locations; the suite
// knows nothing of how a backend stores data.
//
// A backend hooks in like this (see embedded's store_test.go):
//
//	func TestMain(m *testing.M) {
//		storetest.RunCrashChild(openAt) // the SIGKILL test's child process
//		os.Exit(m.Run())
//	}
//
//	func TestConformance(t *testing.T) {
//		storetest.RunBackend(t, storetest.Backend{Open: ..., Reopen: ..., Crash: &storetest.Crash{...}})
//	}
//
// The suite assumes a per-subscriber change queue of at least 100 and
// under 500 changes (store.DefaultFeedQueue is 128).
//
// It depends only on package store and mailparse, and on the standard
// library's testing package. It must stay backend-neutral: anything a
// backend-specific check needs (such as looking for orphan body files)
// comes in through a Backend hook.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// Backend describes how the suite gets stores.
type Backend struct {
	// Open returns a new, empty store. The suite closes it. Required.
	Open func(t *testing.T) store.Store
	// Reopen closes s and opens the same data again. nil skips the tests
	// that need a restart.
	Reopen func(t *testing.T, s store.Store) store.Store
	// Crash, when set, enables the SIGKILL test (see crash.go).
	Crash *Crash
}

// Run runs every test that needs only fresh stores.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	RunBackend(t, Backend{Open: open})
}

// RunBackend runs the whole suite.
func RunBackend(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"Accounts", testAccounts},
		{"DefaultMailboxes", testDefaultMailboxes},
		{"StageCRLF", testStageCRLF},
		{"StageTooLarge", testStageTooLarge},
		{"LargeBody", testLargeBody},
		{"UIDRules", testUIDRules},
		{"UIDsAcrossReopen", testUIDsAcrossReopen},
		{"AppendAtomic", testAppendAtomic},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"MixedConcurrency", testMixedConcurrency},
		{"Copy", testCopy},
		{"Move", testMove},
		{"Flags", testFlags},
		{"UnchangedSince", testUnchangedSince},
		{"Keywords", testKeywords},
		{"Counters", testCounters},
		{"Changes", testChanges},
		{"MessagesStreaming", testMessagesStreaming},
		{"ClaimRecent", testClaimRecent},
		{"CreateMailbox", testCreateMailbox},
		{"MailboxNames", testMailboxNames},
		{"RenameMailbox", testRenameMailbox},
		{"RenameInbox", testRenameInbox},
		{"DeleteMailbox", testDeleteMailbox},
		{"Subscriptions", testSubscriptions},
		{"Feed", testFeed},
		{"FeedOverflow", testFeedOverflow},
		{"MaildropLock", testMaildropLock},
		{"Deliver", testDeliver},
		{"Quota", testQuota},
		{"SearchText", testSearchText},
		{"SearchTextDecoded", testSearchTextDecoded},
		{"SearchTextMany", testSearchTextMany},
		{"Isolation", testIsolation},
		{"DeleteAccount", testDeleteAccount},
		{"Crash", testCrash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

// env bundles a store with helpers that fail the test on error.
type env struct {
	t   *testing.T
	s   store.Store
	ctx context.Context
	b   Backend
}

func newEnv(t *testing.T, b Backend) *env {
	t.Helper()
	s := b.Open(t)
	e := &env{t: t, s: s, ctx: context.Background(), b: b}
	t.Cleanup(func() { e.s.Close() })
	return e
}

// reopen restarts the store (skipping the test when the backend cannot).
func (e *env) reopen() {
	e.t.Helper()
	if e.b.Reopen == nil {
		e.t.Skip("backend has no Reopen")
	}
	e.s = e.b.Reopen(e.t, e.s)
}

var acctSeq int

func (e *env) account() store.Account {
	e.t.Helper()
	acctSeq++
	a, err := e.s.CreateAccount(e.ctx, fmt.Sprintf("user%d-%d@example.org", acctSeq, time.Now().UnixNano()), "hash")
	if err != nil {
		e.t.Fatalf("CreateAccount: %v", err)
	}
	return a
}

func (e *env) mailbox(acct store.AccountID, name string) store.Mailbox {
	e.t.Helper()
	m, err := e.s.Mailbox(e.ctx, acct, name)
	if err != nil {
		e.t.Fatalf("Mailbox(%q): %v", name, err)
	}
	return m
}

func (e *env) mailboxByID(acct store.AccountID, id store.MailboxID) store.Mailbox {
	e.t.Helper()
	m, err := e.s.MailboxByID(e.ctx, acct, id)
	if err != nil {
		e.t.Fatalf("MailboxByID(%d): %v", id, err)
	}
	return m
}

func (e *env) create(acct store.AccountID, name string) store.Mailbox {
	e.t.Helper()
	m, err := e.s.CreateMailbox(e.ctx, acct, name, store.SpecialNone)
	if err != nil {
		e.t.Fatalf("CreateMailbox(%q): %v", name, err)
	}
	return m
}

func (e *env) stage(body string) store.Staged {
	e.t.Helper()
	st, err := e.s.Stage(e.ctx, strings.NewReader(body), 0)
	if err != nil {
		e.t.Fatalf("Stage: %v", err)
	}
	e.t.Cleanup(func() { st.Discard() })
	return st
}

// msg returns a small well-formed message whose text contains tag.
func msg(tag string) string {
	return "From: a@example.org\r\nTo: b@example.org\r\nSubject: " + tag + "\r\nMessage-ID: <" + tag + "@example.org>\r\n\r\nBody of " + tag + ".\r\n"
}

func (e *env) append(acct store.AccountID, mbox store.MailboxID, body string, f store.Flags) store.UID {
	e.t.Helper()
	res, err := e.s.Append(e.ctx, acct, mbox, []store.AppendMessage{{Body: e.stage(body), Flags: f}})
	if err != nil {
		e.t.Fatalf("Append: %v", err)
	}
	if len(res.UIDs) != 1 {
		e.t.Fatalf("Append returned %d UIDs", len(res.UIDs))
	}
	return res.UIDs[0]
}

func (e *env) body(acct store.AccountID, mbox store.MailboxID, uid store.UID) string {
	e.t.Helper()
	r, err := e.s.OpenMessage(e.ctx, acct, mbox, uid)
	if err != nil {
		e.t.Fatalf("OpenMessage(%d): %v", uid, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatalf("read message %d: %v", uid, err)
	}
	if int64(len(b)) != r.Size() {
		e.t.Fatalf("message %d: read %d bytes, Size() %d", uid, len(b), r.Size())
	}
	return string(b)
}

func (e *env) uids(acct store.AccountID, mbox store.MailboxID) []store.UID {
	e.t.Helper()
	m, uids, err := e.s.SelectState(e.ctx, acct, mbox)
	if err != nil {
		e.t.Fatalf("SelectState: %v", err)
	}
	if int(m.Messages) != len(uids) {
		e.t.Fatalf("SelectState: Messages=%d but %d UIDs", m.Messages, len(uids))
	}
	return uids
}

func (e *env) messages(acct store.AccountID, mbox store.MailboxID, set store.UIDSet) []store.Message {
	e.t.Helper()
	var out []store.Message
	err := e.s.Messages(e.ctx, acct, mbox, set, store.FetchOptions{}, func(m *store.Message) error {
		out = append(out, *m)
		return nil
	})
	if err != nil {
		e.t.Fatalf("Messages: %v", err)
	}
	return out
}

func (e *env) message(acct store.AccountID, mbox store.MailboxID, uid store.UID) store.Message {
	e.t.Helper()
	ms := e.messages(acct, mbox, store.UIDSetOf(uid))
	if len(ms) != 1 {
		e.t.Fatalf("message %d: got %d", uid, len(ms))
	}
	return ms[0]
}

func all() store.UIDSet { return store.UIDSet{{Start: 1, Stop: ^store.UID(0)}} }

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func equalUIDs(a, b []store.UID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
