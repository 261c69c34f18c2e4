package load

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/skrytka/skrytka/bench/corpus"
)

// BigParams configure workload 5.
type BigParams struct {
	User  string // the account whose INBOX holds the big mailbox ("big@...")
	Count int    // messages loaded: corpus indices 0..Count-1 of Gen
	Gen   *corpus.Generator
}

// Expected is what the corpus says the searches must find.
type Expected struct {
	From, Common int
	Rare         []int // corpus indices
}

// Expect computes the answers for messages 0..n-1 of gen.
func Expect(gen *corpus.Generator, n int) Expected {
	var e Expected
	for i := 0; i < n; i++ {
		m := gen.Meta(i)
		if m.Sender == corpus.SearchSender {
			e.From++
		}
		if m.HasCommon {
			e.Common++
		}
		if m.HasRare {
			e.Rare = append(e.Rare, i)
		}
	}
	return e
}

// BigMailbox runs workload 5 on a mailbox of p.Count messages: warm SELECT,
// UID FETCH 1:* (FLAGS), FETCH 1:* (ENVELOPE), SEARCH FROM, SEARCH BODY for
// a rare and a common word, SORT by subject and by arrival (when offered),
// and a CONDSTORE resync (SELECT (CONDSTORE) then
// UID FETCH 1:* (FLAGS) (CHANGEDSINCE m)) after another session changed
// flags on 100 messages. Each answer is checked: counts against Count,
// search results against what the generator planted, and the rare-word hits
// by the X-Bench-Id of the messages found.
func BigMailbox(ctx context.Context, t *Target, p BigParams, exp Expected) (*Result, error) {
	res := &Result{Workload: "5-big-mailbox", Server: t.Name,
		Params: fmt.Sprintf("%d msgs (compact profile)", p.Count)}
	c, err := t.imapLogin(p.User, nil)
	if err != nil {
		return nil, err
	}
	defer imapClose(c)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil { // warms caches
		return nil, fmt.Errorf("SELECT: %w", err)
	}
	if err := c.Unselect().Wait(); err != nil {
		return nil, fmt.Errorf("UNSELECT: %w", err)
	}
	t0 := time.Now()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("SELECT: %w", err)
	}
	res.add("SELECT ms", ms(time.Since(t0)), false)
	if int(sel.NumMessages) != p.Count {
		return nil, checkf("%s: SELECT says %d messages, want %d", p.User, sel.NumMessages, p.Count)
	}

	// UID FETCH 1:* (FLAGS)
	t0 = time.Now()
	uids := make([]imap.UID, 0, p.Count)
	fc := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true})
	for m := fc.Next(); m != nil; m = fc.Next() {
		b, err := m.Collect()
		if err != nil {
			return nil, err
		}
		uids = append(uids, b.UID)
	}
	if err := fc.Close(); err != nil {
		return nil, fmt.Errorf("UID FETCH 1:* (FLAGS): %w", err)
	}
	res.add("UID FETCH 1:* FLAGS ms", ms(time.Since(t0)), false)
	if len(uids) != p.Count {
		return nil, checkf("UID FETCH 1:* (FLAGS) returned %d messages, want %d", len(uids), p.Count)
	}

	// FETCH 1:* (ENVELOPE)
	t0 = time.Now()
	n, withSubject := 0, 0
	fc = c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true})
	for m := fc.Next(); m != nil; m = fc.Next() {
		b, err := m.Collect()
		if err != nil {
			return nil, err
		}
		n++
		if b.Envelope != nil && b.Envelope.Subject != "" && len(b.Envelope.From) == 1 && strings.HasPrefix(b.Envelope.From[0].Mailbox, "p") {
			withSubject++
		}
	}
	if err := fc.Close(); err != nil {
		return nil, fmt.Errorf("FETCH 1:* (ENVELOPE): %w", err)
	}
	res.add("FETCH 1:* ENVELOPE ms", ms(time.Since(t0)), false)
	if n != p.Count || withSubject != p.Count {
		return nil, checkf("FETCH 1:* (ENVELOPE): %d messages, %d with subject and sender, want %d", n, withSubject, p.Count)
	}

	search := func(label string, crit *imap.SearchCriteria, want int) ([]uint32, error) {
		t0 := time.Now()
		d, err := c.Search(crit, nil).Wait()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		res.add(label+" ms", ms(time.Since(t0)), false)
		got := d.AllSeqNums()
		if len(got) != want {
			return nil, checkf("%s found %d messages, the corpus has %d", label, len(got), want)
		}
		return got, nil
	}
	if _, err := search("SEARCH FROM", &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: corpus.SenderAddr(corpus.SearchSender)}}}, exp.From); err != nil {
		return nil, err
	}
	rare, err := search("SEARCH BODY rare", &imap.SearchCriteria{Body: []string{corpus.RareWord}}, len(exp.Rare))
	if err != nil {
		return nil, err
	}
	if err := checkRareHits(c, rare, exp.Rare, p.Gen.Seed); err != nil {
		return nil, err
	}
	if _, err := search("SEARCH BODY common", &imap.SearchCriteria{Body: []string{corpus.CommonWord}}, exp.Common); err != nil {
		return nil, err
	}
	res.Checked = 2*p.Count + exp.From + len(exp.Rare) + exp.Common

	// SORT of the whole mailbox (RFC 5256), when offered: by subject
	// (reads every message's subject) and by arrival, newest first.
	if c.Caps().Has(imap.CapSort) {
		for _, s := range []struct {
			label string
			crit  imapclient.SortCriterion
		}{
			{"SORT SUBJECT", imapclient.SortCriterion{Key: imapclient.SortKeySubject}},
			{"SORT REVERSE ARRIVAL", imapclient.SortCriterion{Key: imapclient.SortKeyArrival, Reverse: true}},
		} {
			t0 := time.Now()
			nums, err := c.Sort(&imapclient.SortOptions{SearchCriteria: &imap.SearchCriteria{}, SortCriteria: []imapclient.SortCriterion{s.crit}}).Wait()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.label, err)
			}
			res.add(s.label+" ms", ms(time.Since(t0)), false)
			if err := checkPermutation(s.label, nums, p.Count); err != nil {
				return nil, err
			}
			res.Checked += p.Count
		}
	}

	// CONDSTORE resync after 100 flag changes made by another session.
	if !c.Caps().Has(imap.CapCondStore) {
		res.Note = "no CONDSTORE: resync not measured"
		return res, nil
	}
	d, err := condstoreResync(t, p.User, uids)
	if err != nil {
		return nil, err
	}
	res.add("CONDSTORE resync ms", ms(d), false)
	res.Checked += 100
	return res, nil
}

// checkPermutation checks that nums holds each of 1..n once.
func checkPermutation(label string, nums []uint32, n int) error {
	if len(nums) != n {
		return checkf("%s returned %d numbers, want %d", label, len(nums), n)
	}
	seen := make([]bool, n+1)
	for _, x := range nums {
		if x == 0 || int(x) > n || seen[x] {
			return checkf("%s returned %d twice or out of range", label, x)
		}
		seen[x] = true
	}
	return nil
}

func checkRareHits(c *imapclient.Client, seqs []uint32, want []int, seed uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	var set imap.SeqSet
	for _, s := range seqs {
		set.AddNum(s)
	}
	sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"X-Bench-Id"}, Peek: true}
	msgs, err := c.Fetch(set, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		return fmt.Errorf("FETCH X-Bench-Id of SEARCH hits: %w", err)
	}
	var got []int
	for _, m := range msgs {
		h := string(m.FindBodySection(sec))
		var s uint64
		var i int
		if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(h), "X-Bench-Id:")), "%d-%d", &s, &i); err != nil || s != seed {
			return checkf("SEARCH BODY hit %d has header %q", m.SeqNum, h)
		}
		got = append(got, i)
	}
	sort.Ints(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return checkf("SEARCH BODY %s found corpus messages %v, want %v", corpus.RareWord, got, want)
	}
	return nil
}

// condstoreResync changes \Flagged on 100 messages from one session, then
// times how long a second, reconnecting session takes to learn of them:
// SELECT INBOX (CONDSTORE) + UID FETCH 1:* (FLAGS) (CHANGEDSINCE m).
func condstoreResync(t *Target, user string, uids []imap.UID) (time.Duration, error) {
	// The resyncing client's state: a HIGHESTMODSEQ from an earlier session.
	c, err := t.imapLogin(user, nil)
	if err != nil {
		return 0, err
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	imapClose(c)
	if err != nil {
		return 0, fmt.Errorf("SELECT (CONDSTORE): %w", err)
	}
	if sel.HighestModSeq == 0 {
		return 0, checkf("SELECT (CONDSTORE) gave no HIGHESTMODSEQ")
	}
	since := sel.HighestModSeq

	// Another device changes flags on 100 messages spread over the mailbox.
	w, err := t.imapLogin(user, nil)
	if err != nil {
		return 0, err
	}
	if _, err := w.Select("INBOX", nil).Wait(); err != nil {
		imapClose(w)
		return 0, err
	}
	var set imap.UIDSet
	step := len(uids) / 100
	if step == 0 {
		step = 1
	}
	want := 0
	for k := 0; k < len(uids) && want < 100; k += step {
		set.AddNum(uids[k])
		want++
	}
	cur, err := w.Fetch(set, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		imapClose(w)
		return 0, err
	}
	flagged := 0
	for _, m := range cur {
		for _, f := range m.Flags {
			if f == imap.FlagFlagged {
				flagged++
			}
		}
	}
	op := imap.StoreFlagsAdd
	changes := want - flagged
	if flagged == want {
		op, changes = imap.StoreFlagsDel, want
	}
	err = w.Store(set, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
	imapClose(w)
	if err != nil {
		return 0, fmt.Errorf("STORE on 100 messages: %w", err)
	}

	r, err := t.imapLogin(user, nil)
	if err != nil {
		return 0, err
	}
	defer imapClose(r)
	t0 := time.Now()
	if _, err := r.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait(); err != nil {
		return 0, fmt.Errorf("SELECT (CONDSTORE): %w", err)
	}
	got, err := r.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, ChangedSince: since}).Collect()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("UID FETCH (CHANGEDSINCE): %w", err)
	}
	if len(got) != changes {
		return 0, checkf("CHANGEDSINCE %d returned %d messages, %d were changed", since, len(got), changes)
	}
	return d, nil
}
