package imapd

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateTranscripts = flag.Bool("update-transcripts", false, "rewrite the S: lines of testdata/transcripts/*.txt from the server's answers")

// TestTranscripts replays testdata/transcripts/*.txt: "C:" lines are sent,
// "S:" lines are what the server must answer, in order. In S: lines
// "{*}" matches any text (UIDVALIDITY, dates, modseqs). With
// -update-transcripts the S: lines are rewritten from the actual answers
// (placeholders then need to be put back by hand).
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "transcripts", "*.txt"))
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ts := newTestServer(t)
			ts.appendMsg(t, "INBOX", "From: Ann <ann@example.org>\r\nSubject: first\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nOne.\r\n", storeFlags())
			ts.appendMsg(t, "INBOX", "From: Bob <bob@example.org>\r\nSubject: second\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n\r\nTwo.\r\n", storeFlags())
			rc := ts.dial(t)
			var out []string
			lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			for i := 0; i < len(lines); i++ {
				l := lines[i]
				switch {
				case strings.HasPrefix(l, "C: "):
					out = append(out, l)
					rc.send(strings.ReplaceAll(l[3:], `\r\n`, "\r\n") + "\r\n")
					if !*updateTranscripts {
						continue
					}
					// Read until this command's tagged reply (or a
					// continuation request), whatever the file says.
					tag := strings.SplitN(l[3:], " ", 2)[0]
					for {
						got := rc.line()
						out = append(out, "S: "+placeholders(escapeCRLF(got)))
						if strings.HasPrefix(got, tag+" ") || strings.HasPrefix(got, "+ ") {
							break
						}
					}
					for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "S: ") {
						i++
					}
				case strings.HasPrefix(l, "S: "):
					got := escapeCRLF(rc.line())
					if !globMatch(l[3:], got) {
						t.Fatalf("%s:%d: got\n  %q\nwant\n  %q", file, i+1, got, l[3:])
					}
					out = append(out, l)
				default:
					out = append(out, l)
				}
			}
			if *updateTranscripts {
				if err := os.WriteFile(file, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// escapeCRLF shows the line breaks inside literals as \r\n.
func escapeCRLF(s string) string { return strings.ReplaceAll(s, "\r\n", `\r\n`) }

var variableRE = regexp.MustCompile(`(UIDVALIDITY|COPYUID|APPENDUID) \d+`)

// placeholders replaces values that change from run to run with {*}.
func placeholders(s string) string { return variableRE.ReplaceAllString(s, "$1 {*}") }

// globMatch matches s against pattern where "{*}" stands for any text.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "{*}")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}
