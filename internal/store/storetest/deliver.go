package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

func testDeliver(t *testing.T, b Backend) {
	e := newEnv(t, b)
	x := e.account()
	y := e.account()
	full := e.account()
	lists := e.create(y.ID, "Lists")
	body := msg("deliver")
	if err := e.s.SetQuota(e.ctx, full.ID, int64(len(body))-1); err != nil {
		t.Fatal(err)
	}
	st := e.stage(body)
	targets := []store.DeliveryTarget{
		{Account: x.ID},
		{Account: y.ID, Mailbox: "Lists", Flags: store.Flags{Keywords: []string{"$List"}}},
		{Account: full.ID},
		{Account: x.ID, Mailbox: "Missing"},
		{Account: y.ID + full.ID + x.ID + 1000},
		{Account: y.ID, Mailbox: "inbox", Flags: store.Flags{Sys: store.FlagFlagged}},
	}
	errs, err := e.s.Deliver(e.ctx, st, targets)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != len(targets) {
		t.Fatalf("%d results for %d targets", len(errs), len(targets))
	}
	want := []error{nil, nil, store.ErrOverQuota, store.ErrNotFound, store.ErrNotFound, nil}
	for i := range want {
		if want[i] == nil && errs[i] != nil || want[i] != nil && !errors.Is(errs[i], want[i]) {
			t.Errorf("target %d: %v, want %v", i, errs[i], want[i])
		}
	}
	xin := e.mailbox(x.ID, "INBOX")
	if got := e.body(x.ID, xin.ID, 1); got != body {
		t.Errorf("x got %q", got)
	}
	if m := e.message(y.ID, lists.ID, 1); len(m.Flags.Keywords) != 1 || m.Flags.Keywords[0] != "$List" {
		t.Errorf("y/Lists flags %+v", m.Flags)
	}
	yin := e.mailbox(y.ID, "INBOX")
	if m := e.message(y.ID, yin.ID, 1); m.Flags.Sys != store.FlagFlagged {
		t.Errorf("y/INBOX flags %+v", m.Flags)
	}
	if m := e.mailbox(full.ID, "INBOX"); m.Messages != 0 {
		t.Errorf("over-quota account got the message")
	}
	for _, a := range []store.AccountID{x.ID, y.ID} {
		acct, _ := e.s.AccountByID(e.ctx, a)
		if a == y.ID && acct.UsedBytes != 2*int64(len(body)) || a == x.ID && acct.UsedBytes != int64(len(body)) {
			t.Errorf("account %d UsedBytes %d", a, acct.UsedBytes)
		}
	}
	// All targets failing is not a call error.
	st2 := e.stage(msg("nobody at all"))
	errs, err = e.s.Deliver(e.ctx, st2, []store.DeliveryTarget{{Account: full.ID}, {Account: x.ID, Mailbox: "Missing"}})
	if err != nil || len(errs) != 2 || !errors.Is(errs[0], store.ErrOverQuota) || !errors.Is(errs[1], store.ErrNotFound) {
		t.Errorf("all targets failing: %v %v", errs, err)
	}
	// Deleting every copy leaves the others intact (shared body).
	e.s.Expunge(e.ctx, x.ID, xin.ID, all())
	if got := e.body(y.ID, lists.ID, 1); got != body {
		t.Errorf("y's copy after x expunged: %q", got)
	}
	// A large body delivered to many.
	big := bigBody("big-deliver", 300<<10)
	st3 := e.stage(big)
	var many []store.DeliveryTarget
	for i := 0; i < 5; i++ {
		many = append(many, store.DeliveryTarget{Account: x.ID}, store.DeliveryTarget{Account: y.ID})
	}
	errs, err = e.s.Deliver(e.ctx, st3, many)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("target %d: %v", i, err)
		}
	}
	for _, u := range e.uids(x.ID, xin.ID) {
		if got := e.body(x.ID, xin.ID, u); got != big {
			t.Errorf("x UID %d: %d bytes, want the big body", u, len(got))
		}
	}
}

func testQuota(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	other := e.create(a.ID, "Other")
	m1 := msg("q1")
	e.append(a.ID, inbox.ID, m1, store.Flags{})
	acct, _ := e.s.AccountByID(e.ctx, a.ID)
	if acct.UsedBytes != int64(len(m1)) {
		t.Errorf("UsedBytes %d, want %d", acct.UsedBytes, len(m1))
	}
	// Quota exactly fits one more message of the same size.
	e.s.SetQuota(e.ctx, a.ID, 2*int64(len(m1)))
	u2 := e.append(a.ID, inbox.ID, msg("q2"), store.Flags{})
	_, err := e.s.Append(e.ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: e.stage(msg("q3"))}})
	wantErr(t, "Append over quota", err, store.ErrOverQuota)
	_, err = e.s.Copy(e.ctx, a.ID, inbox.ID, other.ID, store.UIDSetOf(1))
	wantErr(t, "Copy over quota", err, store.ErrOverQuota)
	// Move does not add bytes, so it is allowed at the limit.
	if _, err := e.s.Move(e.ctx, a.ID, inbox.ID, other.ID, store.UIDSetOf(u2)); err != nil {
		t.Errorf("Move at the quota limit: %v", err)
	}
	// Expunge frees space.
	e.s.Expunge(e.ctx, a.ID, inbox.ID, all())
	if _, err := e.s.Append(e.ctx, a.ID, inbox.ID, []store.AppendMessage{{Body: e.stage(msg("q4"))}}); err != nil {
		t.Errorf("Append after freeing space: %v", err)
	}
	// Zero means unlimited.
	e.s.SetQuota(e.ctx, a.ID, 0)
	for i := 0; i < 3; i++ {
		e.append(a.ID, inbox.ID, msg(fmt.Sprint("q", i+5)), store.Flags{})
	}
}

func testSearchText(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	bodies := []string{
		"Subject: Lunch plans\r\nFrom: carol@example.org\r\n\r\nShall we meet at the Café Royal?\r\n",
		"Subject: Report\r\n\r\nQuarterly NUMBERS attached.\r\n",
		"Subject: ÄRGER im Büro\r\n\r\nnothing here\r\n",
		"Subject: multi word\r\n\r\nthe quick brown fox jumps\r\n",
	}
	for _, body := range bodies {
		e.append(a.ID, inbox.ID, body, store.Flags{})
	}
	cases := []struct {
		scope  store.TextScope
		needle string
		want   []store.UID
	}{
		{store.TextBody, "café", []store.UID{1}},
		{store.TextBody, "CAFÉ ROYAL", []store.UID{1}},
		{store.TextBody, "numbers", []store.UID{2}},
		{store.TextBody, "lunch", nil},
		{store.TextHeader, "lunch", []store.UID{1}},
		{store.TextHeader, "ärger", []store.UID{3}},
		{store.TextAll, "report", []store.UID{2}},
		{store.TextAll, "carol@example", []store.UID{1}},
		{store.TextBody, "quick brown", []store.UID{4}},
		{store.TextBody, "brown quick", nil},
		{store.TextBody, "k b", []store.UID{4}},
		{store.TextBody, "x", []store.UID{4}},
		{store.TextBody, "", []store.UID{1, 2, 3, 4}},
		{store.TextAll, "absent-word", nil},
	}
	for _, c := range cases {
		got, err := e.s.SearchText(e.ctx, a.ID, inbox.ID, nil, c.scope, c.needle)
		if err != nil {
			t.Fatal(err)
		}
		if !equalUIDs(got, c.want) {
			t.Errorf("SearchText(%d, %q) = %v, want %v", c.scope, c.needle, got, c.want)
		}
	}
	got, err := e.s.SearchText(e.ctx, a.ID, inbox.ID, []store.UID{4, 2, 3}, store.TextAll, "e")
	if err != nil || !equalUIDs(got, []store.UID{2, 3, 4}) {
		t.Errorf("with candidates: %v %v", got, err)
	}
	// Many scattered candidates, repeated, some not in the mailbox.
	var many []store.UID
	for u := store.UID(200); u > 0; u-- {
		if u%2 == 0 || u == 3 {
			many = append(many, u, u)
		}
	}
	got, err = e.s.SearchText(e.ctx, a.ID, inbox.ID, many, store.TextAll, "e")
	if err != nil || !equalUIDs(got, []store.UID{2, 3, 4}) {
		t.Errorf("with scattered candidates: %v %v", got, err)
	}
	got, err = e.s.SearchText(e.ctx, a.ID, inbox.ID, []store.UID{}, store.TextAll, "e")
	if err != nil || len(got) != 0 {
		t.Errorf("with no candidates: %v %v", got, err)
	}
	// Expunged messages are not found.
	e.s.Expunge(e.ctx, a.ID, inbox.ID, store.UIDSetOf(1))
	if got, _ := e.s.SearchText(e.ctx, a.ID, inbox.ID, nil, store.TextBody, "café"); len(got) != 0 {
		t.Errorf("expunged message found: %v", got)
	}
}

// testSearchTextDecoded checks that text is searched decoded from transfer
// encodings and charsets (decoding is mailparse.ExtractText's job; the
// store must use it).
func testSearchTextDecoded(t *testing.T, b Backend) {
	e := newEnv(t, b)
	a := e.account()
	inbox := e.mailbox(a.ID, "INBOX")
	bodies := []string{
		"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 au lait, tr=C3=A8s bien\r\n",
		"Subject: latin1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nna\xefve caf\xe9\r\n",
		"Subject: b64\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nU2VjcmV0IHdvcmQ6IHBhbmdvbGlu\r\n",
		"Subject: mixed\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain part\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html <b>bold</b> words</p>\r\n--b--\r\n",
	}
	for _, body := range bodies {
		e.append(a.ID, inbox.ID, body, store.Flags{})
	}
	cases := []struct {
		scope  store.TextScope
		needle string
		want   []store.UID
	}{
		{store.TextBody, "café au lait", []store.UID{1}},
		{store.TextBody, "TRÈS", []store.UID{1}},
		{store.TextHeader, "grüße", []store.UID{1}},
		{store.TextBody, "naïve café", []store.UID{2}},
		{store.TextBody, "pangolin", []store.UID{3}},
		{store.TextBody, "U2VjcmV0", nil},
		{store.TextBody, "html bold words", []store.UID{4}},
		{store.TextBody, "plain part", []store.UID{4}},
		{store.TextBody, "=C3=A9", nil},
	}
	for _, c := range cases {
		got, err := e.s.SearchText(e.ctx, a.ID, inbox.ID, nil, c.scope, c.needle)
		if err != nil {
			t.Fatal(err)
		}
		if !equalUIDs(got, c.want) {
			t.Errorf("SearchText(%d, %q) = %v, want %v", c.scope, c.needle, got, c.want)
		}
	}
}
