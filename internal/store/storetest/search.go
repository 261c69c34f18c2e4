package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/skrytka/skrytka/internal/store"
)

// searchWords are the words the generated messages are made of: common and
// rare ones, LIKE and FTS syntax characters, non-ASCII letters.
var searchWords = []string{
	"alpha", "beta", "gamma", "meridian", "quokkafjord", "100%", "a_b",
	`back\slash`, "Straße", "ÜBER", "Привет", "near", "AND", "x-ray", `"quoted"`,
}

// searchBody is the body text of generated message i: each word is in it
// when a fixed pattern over i says so, so every word has its own share of
// the messages (quokkafjord: 1 in 97).
func searchBody(i int) string {
	var ws []string
	for j, w := range searchWords {
		period := []int{2, 3, 5, 1, 97, 7, 11, 13, 4, 6, 9, 8, 10, 12, 14}[j]
		if (i+j)%period == 0 {
			ws = append(ws, w)
		}
	}
	return strings.Join(ws, " ")
}

// testSearchTextMany checks SearchText on a mailbox big enough for the
// backends' text indexes to be used (several hundred messages, in more
// than one account), against a model: case-insensitive substring
// matching of the generated text, after expunge, copy and move, and (for
// backends that index in the background) before and after the index is
// filled.
func testSearchTextMany(t *testing.T, b Backend) {
	e := newEnv(t, b)
	const n = 300
	a := e.account()
	inbox := e.mailbox(a.ID, store.InboxName)
	other, err := e.s.CreateAccount(e.ctx, "other-search@example.org", "x")
	if err != nil {
		t.Fatal(err)
	}
	otherInbox := e.mailbox(other.ID, store.InboxName)
	text := map[store.MailboxID]map[store.UID]string{inbox.ID: {}}
	var msgs []store.AppendMessage
	var bodies []string
	for i := 0; i < n; i++ {
		body := searchBody(i)
		raw := fmt.Sprintf("From: sender%d@example.org\r\nSubject: message %d\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", i%5, i, body)
		msgs = append(msgs, store.AppendMessage{Body: e.stage(raw)})
		bodies = append(bodies, body)
	}
	res, err := e.s.Append(e.ctx, a.ID, inbox.ID, msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range res.UIDs {
		text[inbox.ID][u] = bodies[i]
	}
	// The same words in another account must never show up here.
	for i := 0; i < 50; i++ {
		e.append(other.ID, otherInbox.ID, "Subject: other\r\n\r\n"+searchBody(i)+"\r\n", store.Flags{})
	}

	needles := []string{
		"meridian", "MERIDIAN", "eridia", "quokkafjord", "QuokkaFjord", "alpha beta",
		"pha bet", "100%", "0%", "%", "a_b", "_", `back\slash`, `\`, "x", "ph", "ß",
		"straße", "über", "привет", "ПРИВЕТ", "near", "and", "x-ray",
		`"quoted"`, `"`, "nothing-like-this", "meridian quokkafjord",
	}
	// Needles that occur in no header of these messages, for TEXT.
	bodyOnly := []string{"meridian", "eridia", "quokkafjord", "straße", "über", "привет", "a_b", "100%", `back\slash`, `"quoted"`, "x-ray"}
	check := func(stage string) {
		t.Helper()
		for mbox, msgs := range text {
			for _, needle := range needles {
				var want []store.UID
				for u, body := range msgs {
					if strings.Contains(strings.ToLower(body), strings.ToLower(needle)) {
						want = append(want, u)
					}
				}
				slices.Sort(want)
				got, err := e.s.SearchText(e.ctx, a.ID, mbox, nil, store.TextBody, needle)
				if err != nil {
					t.Fatalf("%s: SearchText(%q): %v", stage, needle, err)
				}
				if !equalUIDs(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("%s: mailbox %d, BODY %q: got %d UIDs %v, want %d %v", stage, mbox, needle, len(got), head(got), len(want), head(want))
				}
				if !slices.Contains(bodyOnly, needle) {
					continue // might be in a header too
				}
				got, err = e.s.SearchText(e.ctx, a.ID, mbox, nil, store.TextAll, needle)
				if err != nil {
					t.Fatalf("%s: SearchText(%q): %v", stage, needle, err)
				}
				if !equalUIDs(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("%s: mailbox %d, TEXT %q: got %d UIDs %v, want %d %v", stage, mbox, needle, len(got), head(got), len(want), head(want))
				}
			}
			// Header scope: the sender's address.
			var want []store.UID
			for u := range msgs {
				want = append(want, u)
			}
			slices.Sort(want)
			got, err := e.s.SearchText(e.ctx, a.ID, mbox, nil, store.TextHeader, "@EXAMPLE.org")
			if err != nil {
				t.Fatal(err)
			}
			if !equalUIDs(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%s: mailbox %d, header: got %d UIDs, want %d", stage, mbox, len(got), len(want))
			}
		}
	}
	check("appended")

	// Expunge every tenth, copy every third to one mailbox, move every
	// fourth (of the rest) to another.
	var gone, cp, mv []store.UID
	for u := range text[inbox.ID] {
		switch {
		case u%10 == 0:
			gone = append(gone, u)
		case u%3 == 0:
			cp = append(cp, u)
		case u%4 == 1:
			mv = append(mv, u)
		}
	}
	slices.Sort(gone)
	slices.Sort(cp)
	slices.Sort(mv)
	if _, err := e.s.Expunge(e.ctx, a.ID, inbox.ID, store.UIDSetOf(gone...)); err != nil {
		t.Fatal(err)
	}
	for _, u := range gone {
		delete(text[inbox.ID], u)
	}
	copies := e.create(a.ID, "Copies")
	moved := e.create(a.ID, "Moved")
	text[copies.ID], text[moved.ID] = map[store.UID]string{}, map[store.UID]string{}
	cr, err := e.s.Copy(e.ctx, a.ID, inbox.ID, copies.ID, store.UIDSetOf(cp...))
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range cr.SrcUIDs {
		text[copies.ID][cr.DstUIDs[i]] = text[inbox.ID][u]
	}
	mr, err := e.s.Move(e.ctx, a.ID, inbox.ID, moved.ID, store.UIDSetOf(mv...))
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range mr.SrcUIDs {
		text[moved.ID][mr.DstUIDs[i]] = text[inbox.ID][u]
		delete(text[inbox.ID], u)
	}
	check("after expunge, copy, move")

	if ix, ok := e.s.(interface{ IndexText(context.Context) error }); ok {
		if err := ix.IndexText(e.ctx); err != nil {
			t.Fatal(err)
		}
		check("indexed")
	}
	e.reopen()
	check("reopened")
}

func head(u []store.UID) []store.UID {
	if len(u) > 8 {
		return u[:8]
	}
	return u
}
