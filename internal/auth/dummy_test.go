package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

// The hash checked for unknown accounts must be one VerifyPassword really
// computes (same parameters as a real hash, decodable salt and key), or
// unknown accounts would answer faster than known ones.
func TestDummyHashCostsLikeARealOne(t *testing.T) {
	real, err := HashPassword("x")
	if err != nil {
		t.Fatal(err)
	}
	d, r := strings.Split(dummyHash, "$"), strings.Split(real, "$")
	if len(d) != 6 || d[1] != r[1] || d[2] != r[2] || d[3] != r[3] {
		t.Fatalf("dummy %q, real %q", dummyHash, real)
	}
	for _, part := range d[4:] {
		if _, err := base64.RawStdEncoding.DecodeString(part); err != nil {
			t.Fatalf("dummy hash part %q: %v", part, err)
		}
	}
	key, _ := base64.RawStdEncoding.DecodeString(d[5])
	realKey, _ := base64.RawStdEncoding.DecodeString(r[5])
	if len(key) != len(realKey) {
		t.Fatalf("key length %d, want %d", len(key), len(realKey))
	}
	if VerifyPassword(dummyHash, "skrytka-dummy-password") {
		t.Fatal("a password matched the dummy hash")
	}
}
