package queue

import (
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// FuzzEnvelope: whatever addresses reach the queue, the envelope block
// written for them reads back to the same envelope (after clean), and
// parsing arbitrary bytes never panics.
func FuzzEnvelope(f *testing.F) {
	f.Add("alice@skrytka.test", "bob@example.net", "carol@example.org", 3)
	f.Add("", "x@y", "", 0)
	f.Add("a\r\nX-Skrytka-Queue-To: <evil@x>", "b>@c", "<d>", -1)
	f.Fuzz(func(t *testing.T, from, to1, to2 string, attempts int) {
		to := []string{to1}
		if to2 != "" {
			to = append(to, to2)
		}
		env := envelope{From: from, To: to, Arrival: time.Unix(1e9, 0), Attempts: attempts, Next: time.Unix(2e9, 0),
			ID: store.UID(uint32(attempts))}
		block := env.marshal()
		got, off, err := parseEnvelope(strings.NewReader(block + "Subject: x\r\n\r\nbody"))
		if clean(to1) == "" && (to2 == "" || clean(to2) == "") {
			return // an empty recipient list is not written by Enqueue
		}
		if err != nil {
			t.Fatalf("parse of our own block failed: %v\n%q", err, block)
		}
		if off != int64(len(block)) {
			t.Fatalf("offset %d, block %d", off, len(block))
		}
		if got.From != clean(from) || got.Attempts != attempts || got.ID != env.ID || !got.Next.Equal(env.Next) || !got.Arrival.Equal(env.Arrival) {
			t.Fatalf("round trip: %+v -> %+v", env, got)
		}
		if len(got.To) != len(to) {
			t.Fatalf("recipients: %q -> %q", to, got.To)
		}
		// Arbitrary input: no panic.
		parseEnvelope(strings.NewReader(from + to1 + to2))
	})
}

func TestEnvelopeQuotedBrackets(t *testing.T) {
	env := envelope{From: `"a>b"@x.test`, To: []string{`"<c>"@example.net`}, Arrival: time.Unix(1, 0), Next: time.Unix(1, 0)}
	got, _, err := parseEnvelope(strings.NewReader(env.marshal() + "\r\n"))
	if err != nil || got.From != env.From || got.To[0] != env.To[0] {
		t.Fatalf("%+v %v", got, err)
	}
}
