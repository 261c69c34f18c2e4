package imapd

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// countingStore is the real store with a counter on OpenMessage, to prove
// which commands read message bodies.
type countingStore struct {
	store.Store
	opens atomic.Int64
}

func (s *countingStore) OpenMessage(ctx context.Context, acct store.AccountID, mbox store.MailboxID, uid store.UID) (store.MessageReader, error) {
	s.opens.Add(1)
	return s.Store.OpenMessage(ctx, acct, mbox, uid)
}

// TestMetadataFetchReadsNoBodies: FLAGS, ENVELOPE, BODYSTRUCTURE, BODY,
// RFC822.SIZE, INTERNALDATE, SEARCH on flags/headers and STATUS are served
// from metadata; only section fetches open the message.
func TestMetadataFetchReadsNoBodies(t *testing.T) {
	var cs *countingStore
	ts := newTestServer(t, func(o *Options) {
		cs = &countingStore{Store: o.Store}
		o.Store = cs
	})
	for i := 0; i < 5; i++ {
		ts.appendMsg(t, "INBOX", mimeMsg, storeFlags())
	}
	rc := ts.login(t)
	rc.ok("a SELECT INBOX")
	u := rc.ok("b FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE INTERNALDATE MODSEQ)")
	if len(u) != 5 {
		t.Fatalf("%q", u)
	}
	rc.ok("c SEARCH FROM alice SUBJECT =?UTF-8 UNSEEN LARGER 10")
	rc.ok("d STATUS INBOX (MESSAGES SIZE UNSEEN)")
	rc.ok(`e STORE 1:* +FLAGS (\Flagged)`)
	if n := cs.opens.Load(); n != 0 {
		t.Fatalf("metadata commands opened %d message bodies", n)
	}
	u = rc.ok("f FETCH 2 (BODY.PEEK[1])")
	if !strings.Contains(u[0], "Hello world") || cs.opens.Load() != 1 {
		t.Fatalf("%q opens=%d", u, cs.opens.Load())
	}
}
