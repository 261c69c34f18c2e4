package imapwire

import (
	"bytes"
	"testing"

	"github.com/skrytka/skrytka/internal/mailparse"
)

// FuzzRender parses arbitrary messages and checks that ENVELOPE, BODY and
// BODYSTRUCTURE always come out as well-formed IMAP (in both string
// modes) and that every section range lies inside the message.
func FuzzRender(f *testing.F) {
	f.Add([]byte(sectionMsg))
	f.Add([]byte("To: \"a\\\"\x00\" <\xff@x>, g:;\r\nSubject: \r\n\t\r\nContent-Type: text/plain; name*0*=x''%ff\r\n\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		info, err := mailparse.Parse(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		for _, utf8OK := range []bool{false, true} {
			for _, out := range [][]byte{
				AppendEnvelope(nil, &info.Envelope, utf8OK),
				AppendBodyStructure(nil, &info.Root, true, utf8OK),
				AppendBodyStructure(nil, &info.Root, false, utf8OK),
			} {
				if bytes.IndexByte(out, 0) >= 0 {
					t.Fatalf("NUL in output %q", out)
				}
				if _, rest, err := parseSexp(string(out), false); err != nil || rest != "" {
					t.Fatalf("malformed output (%v, rest %q): %q", err, rest, out)
				}
			}
		}
		for _, path := range [][]int{nil, {1}, {2}, {1, 1}, {1, 2}, {2, 1}, {1, 1, 1}} {
			for _, spec := range []string{"", "MIME", "HEADER", "TEXT"} {
				if s, e, ok := SectionRange(info, path, spec); ok && !(0 <= s && s <= e && e <= int64(len(msg))) {
					t.Fatalf("%v %s: range [%d,%d) outside %d octets", path, spec, s, e, len(msg))
				}
			}
		}
	})
}
