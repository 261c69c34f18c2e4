package imapd

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/skrytka/skrytka/internal/store"
)

func dialClient(t *testing.T, ts *testServer, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(ts.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func appendClient(t *testing.T, c *imapclient.Client, mailbox, msg string, opts *imap.AppendOptions) *imap.AppendData {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), opts)
	if _, err := cmd.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestGoIMAPClientFlow(t *testing.T) {
	ts := newTestServer(t)
	c := dialClient(t, ts, nil)
	if !c.Caps().Has(imap.CapIMAP4rev2) || !c.Caps().Has(imap.CapMove) {
		t.Fatalf("caps %v", c.Caps())
	}
	if err := c.Create("Projects/Ärger", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	data := appendClient(t, c, "Projects/Ärger", mimeMsg, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged}})
	if data.UID != 1 || data.UIDValidity == 0 {
		t.Fatalf("append data %+v", data)
	}
	boxes, err := c.List("", "Projects/*", nil).Collect()
	if err != nil || len(boxes) != 1 || boxes[0].Mailbox != "Projects/Ärger" {
		t.Fatalf("list %v %v", boxes, err)
	}
	sel, err := c.Select("Projects/Ärger", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("select %+v %v", sel, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, RFC822Size: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{{Part: []int{1}, Peek: true}},
		BinarySection: []*imap.FetchItemBinarySection{{Part: []int{2}, Peek: true}},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch %v %v", msgs, err)
	}
	m := msgs[0]
	if m.Envelope == nil || m.Envelope.Subject != "Grüße" || m.Envelope.From[0].Addr() != "alice@example.org" {
		t.Fatalf("envelope %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 2 || mp.Subtype != "mixed" {
		t.Fatalf("bodystructure %#v", m.BodyStructure)
	}
	var body, bin []byte
	for _, b := range m.BodySection {
		body = b.Bytes
	}
	for _, b := range m.BinarySection {
		bin = b.Bytes
	}
	if string(body) != "Hello world" || string(bin) != "\x00\x01\x02\x03\x04" {
		t.Fatalf("sections %q %q", body, bin)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	sd, err := c.Search(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}, Body: []string{"world"}}, nil).Wait()
	if err != nil || len(sd.AllSeqNums()) != 1 {
		t.Fatalf("search %+v %v", sd, err)
	}
	cp, err := c.Copy(imap.SeqSetNum(1), "INBOX").Wait()
	if err != nil || cp.UIDValidity == 0 {
		t.Fatalf("copy %+v %v", cp, err)
	}
	if _, err := c.Move(imap.SeqSetNum(1), "Archive").Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true, Size: true}).Wait()
	if err != nil || *st.NumMessages != 1 || st.Size == nil || *st.Size != int64(len(mimeMsg)) {
		t.Fatalf("status %+v %v", st, err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestGoIMAPClientIdle(t *testing.T) {
	ts := newTestServer(t)
	got := make(chan uint32, 10)
	c := dialClient(t, ts, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				got <- *d.NumMessages
			}
		},
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	other := dialClient(t, ts, nil)
	appendClient(t, other, "INBOX", "Subject: ping\r\n\r\nping\r\n", nil)
	select {
	case n := <-got:
		if n != 1 {
			t.Fatalf("EXISTS %d", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EXISTS during IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if !c.Caps().Has(imap.CapIdle) {
		t.Fatal("IDLE not advertised")
	}
}

// TestGoIMAPClientSortQuota: go-imap's client reads our SORT, UID SORT,
// GETQUOTAROOT and GETQUOTA answers and the capabilities that announce
// them.
func TestGoIMAPClientSortQuota(t *testing.T) {
	ts := newTestServer(t)
	for i, subj := range []string{"Re: beta", "alpha", "[x] Gamma"} {
		ts.appendMsg(t, "INBOX", "Subject: "+subj+"\r\n\r\n"+strings.Repeat("z", 100*(3-i))+"\r\n", store.Flags{})
	}
	if err := ts.st.SetQuota(context.Background(), ts.acct.ID, 1<<20); err != nil {
		t.Fatal(err)
	}
	c := dialClient(t, ts, nil)
	caps := c.Caps()
	if !caps.Has(imap.CapSort) || !caps.Has(imap.CapQuota) || !slices.Contains(caps.QuotaResourceTypes(), imap.QuotaResourceStorage) {
		t.Fatalf("caps %v", caps)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	nums, err := c.Sort(&imapclient.SortOptions{SearchCriteria: &imap.SearchCriteria{},
		SortCriteria: []imapclient.SortCriterion{{Key: imapclient.SortKeySubject}}}).Wait()
	if err != nil || !slices.Equal(nums, []uint32{2, 1, 3}) {
		t.Fatalf("SORT (SUBJECT) = %v, %v", nums, err)
	}
	nums, err = c.UIDSort(&imapclient.SortOptions{SearchCriteria: &imap.SearchCriteria{},
		SortCriteria: []imapclient.SortCriterion{{Key: imapclient.SortKeySize, Reverse: true}}}).Wait()
	if err != nil || !slices.Equal(nums, []uint32{1, 2, 3}) {
		t.Fatalf("UID SORT (REVERSE SIZE) = %v, %v", nums, err)
	}
	qs, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil || len(qs) != 1 || qs[0].Root != "" || qs[0].Resources[imap.QuotaResourceStorage].Limit != 1024 ||
		qs[0].Resources[imap.QuotaResourceStorage].Usage < 1 {
		t.Fatalf("GETQUOTAROOT = %+v, %v", qs, err)
	}
	q, err := c.GetQuota("").Wait()
	if err != nil || q.Resources[imap.QuotaResourceStorage] != qs[0].Resources[imap.QuotaResourceStorage] {
		t.Fatalf("GETQUOTA = %+v, %v", q, err)
	}
}
