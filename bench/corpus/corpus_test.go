package corpus

import (
	"bytes"
	"strings"
	"testing"
)

func TestDeterministicAndVerifiable(t *testing.T) {
	for _, p := range []Profile{Realistic, Compact, Fixed4K} {
		g := &Generator{Seed: 42, Profile: p, MaxBytes: 1 << 20}
		g2 := &Generator{Seed: 42, Profile: p, MaxBytes: 1 << 20}
		for i := 0; i < 300; i++ {
			a, b := g.Message(i), g2.Message(i)
			if !bytes.Equal(a, b) {
				t.Fatalf("profile %d message %d differs between generators", p, i)
			}
			c, err := Verify(append([]byte("Delivered-To: x@y\r\nReceived: from z\r\n\tby q; now\r\n"), a...))
			if err != nil {
				t.Fatalf("profile %d message %d: %v", p, i, err)
			}
			if c.Index != i || c.Seed != 42 {
				t.Fatalf("message %d: verify says %+v", i, c)
			}
			if bytes.Count(a, []byte("\n")) != bytes.Count(a, []byte("\r\n")) || bytes.Count(a, []byte("\r")) != bytes.Count(a, []byte("\r\n")) {
				t.Fatalf("message %d has a bare LF or CR", i)
			}
			for _, line := range bytes.Split(a, []byte("\r\n")) {
				if len(line) > 998 {
					t.Fatalf("message %d has a line of %d bytes", i, len(line))
				}
			}
			if p == Fixed4K && (len(a) < 3500 || len(a) > 5000) {
				t.Fatalf("fixed4k message %d is %d bytes", i, len(a))
			}
		}
	}
}

func TestVerifyCatchesDamage(t *testing.T) {
	g := &Generator{Seed: 1}
	m := g.Message(3)
	bad := bytes.Clone(m)
	bad[len(bad)-3] ^= 1
	if _, err := Verify(bad); err == nil {
		t.Fatal("flipped byte not caught")
	}
	if _, err := Verify(m[:len(m)-2]); err == nil {
		t.Fatal("truncation not caught")
	}
	if err := g.VerifyExact(append([]byte("X: y\r\n"), m...), 3); err != nil {
		t.Fatal(err)
	}
	if err := g.VerifyExact(m, 4); err == nil {
		t.Fatal("wrong index accepted")
	}
}

func TestPlantedWords(t *testing.T) {
	for _, w := range append(append([]string{}, vocab...), foreignWords...) {
		lw := strings.ToLower(w)
		if strings.Contains(lw, RareWord) || strings.Contains(lw, CommonWord) ||
			strings.Contains(RareWord, lw) && len(lw) > 3 || strings.Contains(CommonWord, lw) && len(lw) > 3 {
			t.Fatalf("vocabulary word %q overlaps a planted word", w)
		}
	}
	g := &Generator{Seed: 9, Profile: Compact}
	rare, common := 0, 0
	for i := 0; i < 2000; i++ {
		m := g.Meta(i)
		msg := g.Message(i)
		sep := bytes.Index(msg, []byte("\r\n\r\n"))
		body := string(msg[sep:])
		if m.HasRare != strings.Contains(body, RareWord) {
			t.Fatalf("message %d: HasRare=%v but body disagrees", i, m.HasRare)
		}
		if m.HasCommon != strings.Contains(body, CommonWord) {
			t.Fatalf("message %d: HasCommon=%v but body disagrees", i, m.HasCommon)
		}
		if m.HasRare {
			rare++
		}
		if m.HasCommon {
			common++
		}
		if !strings.Contains(string(msg), "<"+SenderAddr(m.Sender)+">") {
			t.Fatalf("message %d: From address missing", i)
		}
	}
	if rare != 1 || common < 1000 || common > 1400 {
		t.Fatalf("rare=%d common=%d", rare, common)
	}
}

func TestSizeDistribution(t *testing.T) {
	g := &Generator{Seed: 5}
	var total, big int
	n := 1000
	for i := 0; i < n; i++ {
		s := g.Meta(i).Target
		total += s
		if s > 100000 {
			big++
		}
	}
	if big == 0 || big > n/5 {
		t.Fatalf("%d of %d messages over 100 KB", big, n)
	}
	t.Logf("mean target size %d bytes", total/n)
}
