package mailauth

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestStripResults(t *testing.T) {
	long := strings.Repeat("x", 40000)
	tests := []struct{ name, in, want string }{
		{"no header to strip",
			"From: a@b\r\nSubject: s\r\n\r\nbody\r\n",
			"From: a@b\r\nSubject: s\r\n\r\nbody\r\n"},
		{"ours removed, others kept",
			"Authentication-Results: MX.Skrytka.Test; spf=pass\r\nAuthentication-Results: other.test; spf=fail\r\nFrom: a@b\r\n\r\nbody\r\n",
			"Authentication-Results: other.test; spf=fail\r\nFrom: a@b\r\n\r\nbody\r\n"},
		{"folded field removed whole",
			"X: 1\r\nauthentication-results :\r\n (comment) mx.skrytka.test;\r\n\tdkim=pass\r\nY: 2\r\n\r\nb",
			"X: 1\r\nY: 2\r\n\r\nb"},
		{"quoted id and version",
			"Authentication-Results: \"mx.skrytka.test\" 1; none\r\n\r\n",
			"\r\n"},
		{"prefix of our name is not ours",
			"Authentication-Results: mx.skrytka.test.evil; none\r\n\r\n",
			"Authentication-Results: mx.skrytka.test.evil; none\r\n\r\n"},
		{"body untouched",
			"From: a\r\n\r\nAuthentication-Results: mx.skrytka.test; none\r\n",
			"From: a\r\n\r\nAuthentication-Results: mx.skrytka.test; none\r\n"},
		{"bare LF",
			"Authentication-Results: mx.skrytka.test; none\nFrom: a\n\nbody\n",
			"From: a\n\nbody\n"},
		{"no body, no final newline",
			"From: a\r\nAuthentication-Results: mx.skrytka.test; none",
			"From: a\r\nAuthentication-Results: mx.skrytka.test; none"},
		{"long line with the name inside passes",
			"Subject: " + long + "Authentication-Results: mx.skrytka.test; x\r\n\r\nb",
			"Subject: " + long + "Authentication-Results: mx.skrytka.test; x\r\n\r\nb"},
		{"long forged field dropped",
			"Authentication-Results: mx.skrytka.test; reason=\"" + long + "\"\r\n\t" + long + "\r\nFrom: a\r\n\r\nb",
			"From: a\r\n\r\nb"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r },
				iotest.OneByteReader,
			} {
				got, err := io.ReadAll(StripResults(wrap(strings.NewReader(tc.in)), "mx.skrytka.test"))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Errorf("got  %q\nwant %q", trunc(got), trunc([]byte(tc.want)))
				}
			}
		})
	}
}

func trunc(b []byte) string {
	if len(b) > 200 {
		return string(b[:100]) + "..." + string(b[len(b)-100:])
	}
	return string(b)
}

// FuzzStripResults checks that stripping only ever removes whole header
// fields: the output is the input with some byte ranges cut out of the
// header section, the body is untouched, and the output holds no
// Authentication-Results field of ours.
func FuzzStripResults(f *testing.F) {
	f.Add([]byte("Authentication-Results: mx.skrytka.test; spf=pass\r\nFrom: a@b\r\n\r\nbody\r\n"))
	f.Add([]byte("X: 1\r\nauthentication-results :\r\n (c) mx.skrytka.test;\r\n\tdkim=pass\r\n\r\nb"))
	f.Add([]byte("From: a\n\nAuthentication-Results: mx.skrytka.test; none\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := io.ReadAll(StripResults(bytes.NewReader(in), "mx.skrytka.test"))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > len(in) {
			t.Fatalf("output longer than input")
		}
		// out must be a subsequence of in, made of whole chunks; at least
		// check that the tail after the header section is identical.
		if i := bytes.Index(in, []byte("\n\r\n")); i >= 0 && !bytes.HasSuffix(out, in[i+3:]) {
			t.Fatalf("body changed")
		}
		// Re-stripping must be a no-op (nothing of ours left).
		again, _ := io.ReadAll(StripResults(bytes.NewReader(out), "mx.skrytka.test"))
		if !bytes.Equal(again, out) {
			t.Fatalf("second strip changed the output:\n%q\n%q", out, again)
		}
	})
}
