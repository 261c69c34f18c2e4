package imapd

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

// FuzzMUTF7 checks the modified UTF-7 codec (RFC 3501 §5.1.3): no panic,
// decoding never yields what encoding would not give back, and every
// valid UTF-8 name survives encode then decode.
func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "&-", "&ZeVnLIqe-", "&AGE-", "&Jjo", "Entw&APw-rfe", "a&b", "日本語", "\x00", "&&-", "&-&-", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, err := decodeMUTF7(s); err == nil {
			if !utf8.ValidString(dec) {
				t.Fatalf("decode(%q) = %q is not UTF-8", s, dec)
			}
			if again, err := decodeMUTF7(encodeMUTF7(dec)); err != nil || again != dec {
				t.Fatalf("decode(%q) = %q, re-encoded as %q decodes to %q, %v", s, dec, encodeMUTF7(dec), again, err)
			}
		}
		if utf8.ValidString(s) && !strings.ContainsRune(s, utf8.RuneError) {
			enc := encodeMUTF7(s)
			for i := 0; i < len(enc); i++ {
				if enc[i] < 0x20 || enc[i] > 0x7e {
					t.Fatalf("encode(%q) = %q is not printable ASCII", s, enc)
				}
			}
			if dec, err := decodeMUTF7(enc); err != nil || dec != s {
				t.Fatalf("encode(%q) = %q decodes to %q, %v", s, enc, dec, err)
			}
		}
	})
}

// FuzzSeqSet feeds arbitrary bytes to the sequence-set parser: it must not
// panic, must not read past the command, and a parsed set has at most one
// range per input byte (it is never expanded), each normalising to lo <= hi.
func FuzzSeqSet(f *testing.F) {
	for _, s := range []string{"1", "1:*", "*", "$", "1:4294967295", "4294967296", "0", "1,2,3:5,*:7", "1:", ",", "1:2,", "99999999999999999999", "2:1"} {
		f.Add(s)
	}
	srv := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, s string) {
		c := srv.newConn(&bytesConn{r: bytes.NewReader([]byte(s + " rest\r\n")), out: io.Discard})
		c.d.reset()
		set := c.d.seqSet()
		if c.d.err != nil {
			return
		}
		if len(set.ranges) > len(s)+1 {
			t.Fatalf("%q: %d ranges", s, len(set.ranges))
		}
		for _, r := range set.ranges {
			if lo, hi := r.normalise(10); lo > hi {
				t.Fatalf("%q: range %v normalises to %d > %d", s, r, lo, hi)
			}
		}
	})
}

// FuzzPreAuthSession runs arbitrary input through a session that has not
// logged in: the parser, LOGIN, AUTHENTICATE with its continuations,
// STARTTLS without TLS, and the cross-protocol defence. No panic, no hang,
// output in CRLF lines.
func FuzzPreAuthSession(f *testing.F) {
	seeds := []string{
		"a CAPABILITY\r\n",
		"a LOGIN demo@localhost \"secret pass\"\r\nb SELECT INBOX\r\nc FETCH 1:* (FLAGS)\r\n",
		"a LOGIN {14}\r\ndemo@localhost {11}\r\nsecret pass\r\n",
		"a AUTHENTICATE PLAIN\r\nAGRlbW9AbG9jYWxob3N0AHNlY3JldCBwYXNz\r\n",
		"a AUTHENTICATE PLAIN AGRlbW9AbG9jYWxob3N0AHNlY3JldCBwYXNz\r\n",
		"a AUTHENTICATE PLAIN\r\n*\r\n",
		"a AUTHENTICATE PLAIN\r\n!!!\r\n",
		"a STARTTLS\r\nb NOOP\r\n",
		"a ID (\"name\" \"x\")\r\na ENABLE UTF8=ACCEPT\r\n",
		"GET / HTTP/1.1\r\n",
		"a LOGIN {99999999}\r\n",
		"a NOOP\x00\r\n",
		"a LOGOUT\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	st, err := embedded.Open(ctx, f.TempDir(), embedded.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	// A hash with tiny argon2id parameters (VerifyPassword honours what a
	// hash records) and a throttle of a nanosecond keep each execution
	// fast; the throttling itself is tested in package auth and over
	// sockets in package reliability.
	salt := []byte("fuzz-salt-16byte")
	b64 := base64.RawStdEncoding
	h := fmt.Sprintf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s", argon2.Version, b64.EncodeToString(salt),
		b64.EncodeToString(argon2.IDKey([]byte(testPass), salt, 1, 64, 1, 32)))
	if !auth.VerifyPassword(h, testPass) {
		f.Fatal("cheap hash does not verify")
	}
	if _, err := st.CreateAccount(ctx, testUser, h); err != nil {
		f.Fatal(err)
	}
	authn := &auth.Authenticator{Store: st, Throttle: auth.Throttle{Delay: time.Nanosecond, MaxDelay: time.Nanosecond, Window: time.Nanosecond}}
	srv := New(Options{Store: st, Auth: authn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LoginDelay: -1})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		var out bytes.Buffer
		c := srv.newConn(&bytesConn{r: bytes.NewReader(in), out: &out})
		done := make(chan struct{})
		go func() {
			c.serve()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("session hung on %q", in)
		}
		if n := srv.panics.Load(); n != 0 {
			t.Fatalf("panic on %q", in)
		}
		resp := out.Bytes()
		if len(resp) > 0 && !bytes.HasSuffix(resp, []byte("\r\n")) {
			t.Fatalf("response does not end in CRLF: %q", resp[max(0, len(resp)-200):])
		}
	})
}
